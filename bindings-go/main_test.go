package keystead_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"keystead.dev/keystead"
)

// motoEndpoint is the URL of the moto server TestMain starts on loopback.
var motoEndpoint string

// openBaoAddress is the URL of the OpenBao dev server TestMain starts on
// loopback, and openBaoToken its root token.
var openBaoAddress string

const openBaoToken = "keystead-go-root"

// runPrefix makes AWS names unique to this run, so that suites in other
// languages could share one moto server.
var runPrefix string

// serverStartTimeout bounds the wait for moto and OpenBao to respond. On a
// small machine moto starts in about half a second, OpenBao in a fifth.
const serverStartTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	scratch, err := os.MkdirTemp("", "keystead-go-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot create a temporary folder:", err)
		return 1
	}
	defer os.RemoveAll(scratch)

	moto, err := startMoto(scratch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start moto:", err)
		return 1
	}
	defer moto.stop()
	openBao, err := startOpenBao(scratch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start OpenBao:", err)
		return 1
	}
	defer openBao.stop()

	random := make([]byte, 4)
	_, _ = rand.Read(random)
	runPrefix = "keystead-go-" + hex.EncodeToString(random) + "-"
	isolateAWSEnvironment(scratch)
	return m.Run()
}

// isolateAWSEnvironment points the AWS provider at moto with fixed test
// credentials, and away from the developer's own AWS files and from any
// instance metadata address.
func isolateAWSEnvironment(scratch string) {
	for _, name := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"KEYSTEAD_CONFIG", "VAULT_NAMESPACE", "BAO_ADDR", "BAO_TOKEN", "BAO_NAMESPACE"} {
		os.Unsetenv(name)
	}
	settings := map[string]string{
		"AWS_ENDPOINT_URL":            motoEndpoint,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(scratch, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(scratch, "no-aws-credentials"),
		"VAULT_ADDR":                  openBaoAddress,
		"VAULT_TOKEN":                 openBaoToken,
	}
	for name, value := range settings {
		os.Setenv(name, value)
	}
}

// localServer is a backend process the suite started on loopback.
type localServer struct {
	command *exec.Cmd
	log     *os.File
}

// startLocalServer runs a program from the repository's .venv and waits
// until healthURL responds with an HTTP status below 500.
func startLocalServer(scratch, program string, arguments []string, healthURL string) (*localServer, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	executable := filepath.Join(root, ".venv", "bin", program)
	if _, err := os.Stat(executable); err != nil {
		return nil, fmt.Errorf("%s is missing; run `bash scripts/setup.sh` from the repository root", executable)
	}
	log, err := os.Create(filepath.Join(scratch, program+".log"))
	if err != nil {
		return nil, err
	}
	command := exec.Command(executable, arguments...)
	command.Stdout = log
	command.Stderr = log
	// The .venv entry points start the real server as a child process; a
	// process group lets stop end both.
	command.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := command.Start(); err != nil {
		log.Close()
		return nil, err
	}
	server := &localServer{command: command, log: log}

	deadline := time.Now().Add(serverStartTimeout)
	for time.Now().Before(deadline) {
		response, err := http.Get(healthURL)
		if err == nil {
			response.Body.Close()
			if response.StatusCode < 500 {
				return server, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	server.stop()
	output, _ := os.ReadFile(log.Name())
	return nil, fmt.Errorf("%s did not answer on %s within %s; its output:\n%s", program, healthURL, serverStartTimeout, output)
}

func (s *localServer) stop() {
	_ = syscall.Kill(-s.command.Process.Pid, syscall.SIGKILL)
	_ = s.command.Wait()
	s.log.Close()
}

func startMoto(scratch string) (*localServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	motoEndpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	return startLocalServer(scratch, "moto_server", []string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)},
		motoEndpoint+"/moto-api/")
}

// startOpenBao starts a dev server, which keeps everything in memory and
// mounts KV v2 at secret/. It also listens on the port after its own, so
// the port is chosen with that one free too.
func startOpenBao(scratch string) (*localServer, error) {
	var port int
	for attempt := 0; ; attempt++ {
		candidate, err := freePort()
		if err != nil {
			return nil, err
		}
		next, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(candidate+1))
		if err == nil {
			next.Close()
			port = candidate
			break
		}
		if attempt == 20 {
			return nil, fmt.Errorf("found no two free consecutive loopback ports: %v", err)
		}
	}
	openBaoAddress = "http://127.0.0.1:" + strconv.Itoa(port)
	return startLocalServer(scratch, "bao", []string{"server", "-dev", "-dev-root-token-id=" + openBaoToken,
		"-dev-listen-address=127.0.0.1:" + strconv.Itoa(port)}, openBaoAddress+"/v1/sys/health")
}

func freePort() (int, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port, nil
}

// awsCall sends one AWS JSON-protocol request to moto. moto does not check
// signatures, but reads the service name from the credential scope.
func awsCall(t testing.TB, service, target string, body map[string]any) map[string]any {
	t.Helper()
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}

	request, err := http.NewRequest(http.MethodPost, motoEndpoint+"/", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	request.Header.Set("Content-Type", "application/x-amz-json-1.1")
	request.Header.Set("X-Amz-Target", target)
	request.Header.Set("X-Amz-Date", "20250101T000000Z")
	request.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/"+service+
		"/aws4_request, SignedHeaders=host;x-amz-date, Signature=0")

	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer response.Body.Close()
	text, _ := io.ReadAll(response.Body)
	if response.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", target, response.StatusCode, text)
	}

	result := map[string]any{}
	if len(text) > 0 {
		if err := json.Unmarshal(text, &result); err != nil {
			t.Fatalf("%s: %v in %s", target, err, text)
		}
	}
	return result
}

func createSecret(t testing.TB, name, value string) {
	awsCall(t, "secretsmanager", "secretsmanager.CreateSecret", map[string]any{"Name": name, "SecretString": value})
}

func createBinarySecret(t testing.TB, name string, value []byte) {
	// The JSON protocol carries blobs as base64 text, which encoding/json
	// produces for a []byte.
	awsCall(t, "secretsmanager", "secretsmanager.CreateSecret", map[string]any{"Name": name, "SecretBinary": value})
}

func putSecretValue(t testing.TB, name, value string) {
	awsCall(t, "secretsmanager", "secretsmanager.PutSecretValue", map[string]any{"SecretId": name, "SecretString": value})
}

func putParameter(t testing.TB, name, kind, value string, overwrite bool) {
	awsCall(t, "ssm", "AmazonSSM.PutParameter", map[string]any{
		"Name": name, "Type": kind, "Value": value, "Overwrite": overwrite,
	})
}

// vaultCall sends one request to the OpenBao dev server with the root
// token. body is nil for requests without one.
func vaultCall(t testing.TB, method, path string, body any) {
	t.Helper()
	var payload io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		payload = bytes.NewReader(encoded)
	}
	request, err := http.NewRequest(method, openBaoAddress+"/v1/"+path, payload)
	if err != nil {
		t.Fatal(err)
	}
	request.Header.Set("X-Vault-Token", openBaoToken)
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer response.Body.Close()
	text, _ := io.ReadAll(response.Body)
	if response.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, response.StatusCode, text)
	}
}

// newClient creates a client with default configuration (AWS settings come
// from the environment TestMain set) and closes it when the test ends.
func newClient(t testing.TB) *keystead.Client {
	t.Helper()
	return newClientWith(t, keystead.Config{})
}

func newClientWith(t testing.TB, config keystead.Config) *keystead.Client {
	t.Helper()
	client, err := keystead.New(context.Background(), config)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// silentEndpoint starts a loopback listener that accepts connections but
// never responds, and returns its URL. It stops when the test ends.
func silentEndpoint(t testing.TB) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			connection, err := listener.Accept()
			if err != nil {
				return
			}
			accepted <- connection
		}
	}()
	t.Cleanup(func() {
		listener.Close()
		for {
			select {
			case connection := <-accepted:
				connection.Close()
			default:
				return
			}
		}
	})
	return "http://" + listener.Addr().String()
}

// hungClient is a client whose AWS calls go to a silent endpoint, with one
// attempt and a long attempt timeout, so that a read waits until its
// context or the client ends it.
func hungClient(t testing.TB) *keystead.Client {
	t.Helper()
	return newClientWith(t, keystead.Config{AWS: keystead.AWSConfig{
		EndpointURL:    silentEndpoint(t),
		MaxAttempts:    1,
		AttemptTimeout: time.Minute,
	}})
}
