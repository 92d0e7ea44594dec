package keystead_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"keystead.dev/keystead"
)

type conformanceFile struct {
	Version int               `json:"version"`
	Cases   []conformanceCase `json:"cases"`
}

type conformanceCase struct {
	Name      string                     `json:"name"`
	Given     map[string]json.RawMessage `json:"given"`
	Reference string                     `json:"reference"`
	Expect    map[string]string          `json:"expect"`
}

func TestConformance(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("..", "conformance", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file conformanceFile
	decoder := json.NewDecoder(bytes.NewReader(text))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&file); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	if file.Version != 1 {
		t.Fatalf("cases.json version %d; this runner reads version 1", file.Version)
	}
	if len(file.Cases) == 0 {
		t.Fatal("cases.json has no cases")
	}
	for _, testCase := range file.Cases {
		t.Run(testCase.Name, func(t *testing.T) { runConformanceCase(t, testCase) })
	}
}

func runConformanceCase(t *testing.T, testCase conformanceCase) {
	directory := t.TempDir()
	prefix := runPrefix + "conformance-" + testCase.Name + "-"
	expand := strings.NewReplacer("{dir}", directory, "{prefix}", prefix).Replace

	// A key this runner does not know fails the case: this suite starts
	// every backend the case file uses (env, files, moto, OpenBao).
	for _, key := range sortedKeys(testCase.Given) {
		raw := []byte(expand(string(testCase.Given[key])))
		switch key {
		case "env":
			givenEnv(t, raw)
		case "files":
			givenFiles(t, directory, raw)
		case "aws_secrets":
			givenAWSSecrets(t, raw)
		case "aws_parameters":
			givenAWSParameters(t, raw)
		case "vault_kv":
			givenVaultKV(t, raw)
		default:
			t.Fatalf("given key %q is not supported by the Go runner", key)
		}
	}

	client := newClient(t)
	secret, err := client.Get(context.Background(), expand(testCase.Reference))
	checkExpectation(t, testCase.Expect, expand, secret, err)
}

func checkExpectation(t *testing.T, expect map[string]string, expand func(string) string, secret *keystead.Secret, err error) {
	if len(expect) != 1 {
		t.Fatalf("expect must hold exactly one key, has %v", expect)
	}
	for key, want := range expect {
		want = expand(want)
		switch key {
		case "text":
			if err != nil {
				t.Fatalf("Get failed: %v", err)
			}
			text, err := secret.Text()
			if err != nil {
				t.Fatalf("Text: %v", err)
			}
			if text != want {
				t.Errorf("text = %q, want %q", text, want)
			}
		case "bytes_base64":
			if err != nil {
				t.Fatalf("Get failed: %v", err)
			}
			wantBytes, decodeErr := base64.StdEncoding.DecodeString(want)
			if decodeErr != nil {
				t.Fatalf("bytes_base64: %v", decodeErr)
			}
			if !secret.IsBinary() {
				t.Error("the value is text, want binary")
			}
			if got := secret.Bytes(); !bytes.Equal(got, wantBytes) {
				t.Errorf("bytes = %v, want %v", got, wantBytes)
			}
		case "error":
			var failure *keystead.Error
			if !errors.As(err, &failure) {
				t.Fatalf("Get = %v, %v; want a %s error", secret, err, want)
			}
			if failure.Class.String() != want {
				t.Errorf("error class = %s, want %s (%v)", failure.Class, want, err)
			}
		default:
			t.Fatalf("expect key %q is not supported by the Go runner", key)
		}
	}
}

func givenEnv(t *testing.T, raw []byte) {
	variables := map[string]string{}
	decodeStrict(t, "env", raw, &variables)
	for name, value := range variables {
		t.Setenv(name, value)
	}
}

func givenFiles(t *testing.T, directory string, raw []byte) {
	files := map[string]string{}
	decodeStrict(t, "files", raw, &files)
	for name, text := range files {
		path := filepath.Join(directory, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// givenSecret is one aws_secrets entry written as an object; an entry
// written as a plain string is a SecretString.
type givenSecret struct {
	Text        *string `json:"text"`
	BytesBase64 *string `json:"bytes_base64"`
	Deleted     bool    `json:"deleted"`
}

func givenAWSSecrets(t *testing.T, raw []byte) {
	entries := map[string]json.RawMessage{}
	decodeStrict(t, "aws_secrets", raw, &entries)
	for _, name := range sortedKeys(entries) {
		var secret givenSecret
		if text, isText := plainString(entries[name]); isText {
			secret.Text = &text
		} else {
			decodeStrict(t, "aws_secrets "+name, entries[name], &secret)
		}

		request := map[string]any{"Name": name}
		switch {
		case secret.Text != nil && secret.BytesBase64 == nil:
			request["SecretString"] = *secret.Text
		case secret.BytesBase64 != nil && secret.Text == nil:
			if _, err := base64.StdEncoding.DecodeString(*secret.BytesBase64); err != nil {
				t.Fatalf("aws_secrets %s: bytes_base64: %v", name, err)
			}
			// The JSON protocol carries SecretBinary as base64 text.
			request["SecretBinary"] = *secret.BytesBase64
		default:
			t.Fatalf("aws_secrets %s: give exactly one of text and bytes_base64", name)
		}
		awsCall(t, "secretsmanager", "secretsmanager.CreateSecret", request)
		if secret.Deleted {
			// Without ForceDeleteWithoutRecovery the secret stays, marked
			// for deletion within a recovery window.
			awsCall(t, "secretsmanager", "secretsmanager.DeleteSecret", map[string]any{"SecretId": name})
		}
	}
}

// givenParameter is one aws_parameters entry written as an object; an
// entry written as a plain string is a String parameter.
type givenParameter struct {
	Value string `json:"value"`
	Type  string `json:"type"`
}

func givenAWSParameters(t *testing.T, raw []byte) {
	entries := map[string]json.RawMessage{}
	decodeStrict(t, "aws_parameters", raw, &entries)
	for _, name := range sortedKeys(entries) {
		parameter := givenParameter{Type: "String"}
		if text, isText := plainString(entries[name]); isText {
			parameter.Value = text
		} else {
			decodeStrict(t, "aws_parameters "+name, entries[name], &parameter)
		}
		putParameter(t, name, parameter.Type, parameter.Value, false)
	}
}

// givenVaultWrite is one KV v2 secret: data written first, then each of
// then as a later version, then the latest version soft-deleted.
type givenVaultWrite struct {
	Mount        string           `json:"mount"`
	Path         string           `json:"path"`
	Data         map[string]any   `json:"data"`
	Then         []map[string]any `json:"then"`
	DeleteLatest bool             `json:"delete_latest"`
}

// givenVaultKV accepts the list form the cases use ([{mount, path, data,
// then, delete_latest}]) and the object form the case file's README
// describes ({"MOUNT/PATH": data or {"data": ..., "delete_latest": true}}).
func givenVaultKV(t *testing.T, raw []byte) {
	var writes []givenVaultWrite
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		decodeStrict(t, "vault_kv", raw, &writes)
	} else {
		entries := map[string]json.RawMessage{}
		decodeStrict(t, "vault_kv", raw, &entries)
		for _, location := range sortedKeys(entries) {
			mount, path, found := strings.Cut(location, "/")
			if !found {
				t.Fatalf("vault_kv key %q is not MOUNT/PATH", location)
			}
			write := givenVaultWrite{Mount: mount, Path: path}
			var wrapper map[string]json.RawMessage
			decodeStrict(t, "vault_kv "+location, entries[location], &wrapper)
			// An object with only "data" (and "delete_latest") is the
			// wrapper form; any other object is the data itself.
			wrapperKeys := 0
			for _, key := range []string{"data", "delete_latest"} {
				if _, found := wrapper[key]; found {
					wrapperKeys++
				}
			}
			_, hasData := wrapper["data"]
			if hasData && len(wrapper) == wrapperKeys {
				decodeStrict(t, "vault_kv "+location, entries[location], &write)
			} else {
				decodeStrict(t, "vault_kv "+location, entries[location], &write.Data)
			}
			writes = append(writes, write)
		}
	}

	for _, write := range writes {
		path := write.Mount + "/data/" + write.Path
		for _, data := range append([]map[string]any{write.Data}, write.Then...) {
			vaultCall(t, http.MethodPost, path, map[string]any{"data": data})
		}
		if write.DeleteLatest {
			vaultCall(t, http.MethodDelete, path, nil)
		}
	}
}

// plainString decodes raw when it is a JSON string.
func plainString(raw json.RawMessage) (string, bool) {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return "", false
	}
	return text, true
}

func sortedKeys[V any](entries map[string]V) []string {
	keys := make([]string, 0, len(entries))
	for key := range entries {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// decodeStrict decodes one `given` entry and fails on keys this runner does
// not know, so that a new case feature is never silently ignored.
func decodeStrict(t *testing.T, key string, raw []byte, into any) {
	t.Helper()
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(into); err != nil {
		t.Fatalf("given %s: %v", key, err)
	}
}
