package keystead_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"keystead.dev/keystead"
)

func TestGetReadsSecretsManager(t *testing.T) {
	name := runPrefix + "get/db"
	createSecret(t, name, `{"user":"app","password":"pw-1"}`)
	client := newClient(t)

	secret, err := client.Get(context.Background(), "aws-sm://"+name)
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.Reveal(); got != `{"user":"app","password":"pw-1"}` {
		t.Errorf("Reveal = %q", got)
	}
	metadata := secret.Metadata()
	if metadata.Provider != "aws-sm" {
		t.Errorf("Provider = %q", metadata.Provider)
	}
	if metadata.Name != name {
		t.Errorf("Name = %q, want %q", metadata.Name, name)
	}
	if metadata.ARN == "" || metadata.VersionID == "" {
		t.Errorf("ARN %q and VersionID %q should both be set", metadata.ARN, metadata.VersionID)
	}
	if !slices.Contains(metadata.VersionStages, "AWSCURRENT") {
		t.Errorf("VersionStages = %v", metadata.VersionStages)
	}
	if metadata.FetchedAt.IsZero() || time.Since(metadata.FetchedAt) > time.Minute {
		t.Errorf("FetchedAt = %v", metadata.FetchedAt)
	}
}

func TestGetSelectsField(t *testing.T) {
	name := runPrefix + "field/db"
	createSecret(t, name, `{"user":"app","port":5432}`)
	client := newClient(t)

	user, err := client.Get(context.Background(), "aws-sm://"+name+"#user")
	if err != nil {
		t.Fatal(err)
	}
	if got := user.Reveal(); got != "app" {
		t.Errorf("user = %q", got)
	}
	if got := user.Metadata().Field; got != "user" {
		t.Errorf("Field = %q", got)
	}

	whole, err := client.Get(context.Background(), "aws-sm://"+name)
	if err != nil {
		t.Fatal(err)
	}
	port, err := whole.Field("port")
	if err != nil {
		t.Fatal(err)
	}
	if got := port.Reveal(); got != "5432" {
		t.Errorf("port = %q", got)
	}
	_, err = whole.Field("password")
	if !errors.Is(err, keystead.ErrFieldNotFound) {
		t.Errorf("missing field: %v", err)
	}
}

func TestBinarySecretIsNotText(t *testing.T) {
	name := runPrefix + "binary/key"
	value := []byte{0, 1, 2, 0xff, 0xfe}
	createBinarySecret(t, name, value)
	client := newClient(t)

	secret, err := client.Get(context.Background(), "aws-sm://"+name)
	if err != nil {
		t.Fatal(err)
	}
	if !secret.IsBinary() {
		t.Error("IsBinary = false")
	}
	if got := secret.Bytes(); !slices.Equal(got, value) {
		t.Errorf("Bytes = %v", got)
	}
	if got := secret.Reveal(); got != string(value) {
		t.Errorf("Reveal = %q", got)
	}
	_, err = secret.Text()
	if !errors.Is(err, keystead.ErrNotText) {
		t.Errorf("Text error = %v", err)
	}
}

func TestBytesIsACopyTheCallerCanWipe(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_WIPE", "wipe-me")
	client := newClient(t)
	secret, err := client.Get(context.Background(), "env://KEYSTEAD_GO_WIPE")
	if err != nil {
		t.Fatal(err)
	}

	copied := secret.Bytes()
	keystead.Wipe(copied)
	if !slices.Equal(copied, make([]byte, len("wipe-me"))) {
		t.Errorf("after Wipe: %v", copied)
	}
	if got := secret.Reveal(); got != "wipe-me" {
		t.Errorf("the secret changed with its copy: %q", got)
	}
}

func TestReadsSSMParameter(t *testing.T) {
	name := "/" + runPrefix + "ssm/flag"
	putParameter(t, name, "String", "on", false)
	putParameter(t, name, "String", "off", true)
	client := newClient(t)

	secret, err := client.Get(context.Background(), "aws-ssm://"+name)
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.Reveal(); got != "off" {
		t.Errorf("Reveal = %q", got)
	}
	if got := secret.Metadata().VersionNumber; got != 2 {
		t.Errorf("VersionNumber = %d", got)
	}
}

func TestMissingSecretIsErrNotFound(t *testing.T) {
	client := newClient(t)
	reference := "aws-sm://" + runPrefix + "absent"

	_, err := client.Get(context.Background(), reference)
	if !errors.Is(err, keystead.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, keystead.ErrAccessDenied) {
		t.Error("a not-found error also matched ErrAccessDenied")
	}
	var failure *keystead.Error
	if !errors.As(err, &failure) {
		t.Fatalf("not an *Error: %T", err)
	}
	if failure.Class != keystead.ClassNotFound {
		t.Errorf("Class = %v", failure.Class)
	}
	if failure.Reference != reference {
		t.Errorf("Reference = %q", failure.Reference)
	}
	if want := reference + ": not-found: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestInvalidReferenceIsErrInvalidReference(t *testing.T) {
	client := newClient(t)
	for _, reference := range []string{"", "prod/db", "gopher://x", "env://A B"} {
		_, err := client.Get(context.Background(), reference)
		if !errors.Is(err, keystead.ErrInvalidReference) {
			t.Errorf("Get(%q) error = %v", reference, err)
		}
	}
}

func TestRefreshFindsNewVersion(t *testing.T) {
	name := runPrefix + "refresh/token"
	createSecret(t, name, "v1")
	client := newClient(t)
	reference := "aws-sm://" + name

	first, err := client.Get(context.Background(), reference)
	if err != nil {
		t.Fatal(err)
	}
	putSecretValue(t, name, "v2")

	cached, err := client.Get(context.Background(), reference)
	if err != nil {
		t.Fatal(err)
	}
	if got := cached.Reveal(); got != "v1" {
		t.Errorf("cached read before refresh = %q", got)
	}
	refreshed, err := client.Refresh(context.Background(), reference)
	if err != nil {
		t.Fatal(err)
	}
	if got := refreshed.Reveal(); got != "v2" {
		t.Errorf("Refresh = %q", got)
	}
	if first.Metadata().VersionID == refreshed.Metadata().VersionID {
		t.Error("the version id did not change")
	}
	if got := first.Reveal(); got != "v1" {
		t.Errorf("an older Secret changed its value: %q", got)
	}
	if got := client.Metrics().Rotations; got != 1 {
		t.Errorf("Rotations = %d", got)
	}
}

func TestWarmGetReturnsSameSecretUntilNewVersion(t *testing.T) {
	name := runPrefix + "reuse/token"
	createSecret(t, name, "v1")
	client := newClient(t)
	reference := "aws-sm://" + name

	first, err := client.Get(context.Background(), reference)
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Get(context.Background(), reference)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("a warm Get of the same version returned a new *Secret")
	}

	putSecretValue(t, name, "v2")
	if _, err := client.Refresh(context.Background(), reference); err != nil {
		t.Fatal(err)
	}
	third, err := client.Get(context.Background(), reference)
	if err != nil {
		t.Fatal(err)
	}
	if third == first {
		t.Error("a new version came back as the old *Secret")
	}
	if got := third.Reveal(); got != "v2" {
		t.Errorf("new version = %q", got)
	}
	if got := first.Reveal(); got != "v1" {
		t.Errorf("old version = %q", got)
	}
}

func TestInvalidateDropsCachedValue(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_INVALIDATE", "one")
	client := newClient(t)
	reference := "env://KEYSTEAD_GO_INVALIDATE"

	if _, err := client.Get(context.Background(), reference); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEYSTEAD_GO_INVALIDATE", "two")
	removed, err := client.Invalidate(reference)
	if err != nil || !removed {
		t.Fatalf("Invalidate = %v, %v", removed, err)
	}
	removed, err = client.Invalidate(reference)
	if err != nil || removed {
		t.Errorf("second Invalidate = %v, %v", removed, err)
	}
	secret, err := client.Get(context.Background(), reference)
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.Reveal(); got != "two" {
		t.Errorf("after Invalidate = %q", got)
	}
	if _, err := client.Invalidate("no scheme"); !errors.Is(err, keystead.ErrInvalidReference) {
		t.Errorf("Invalidate of an invalid reference: %v", err)
	}
}

func TestPrefetchJoinsFailures(t *testing.T) {
	first := runPrefix + "prefetch/one"
	second := runPrefix + "prefetch/two"
	createSecret(t, first, "1")
	createSecret(t, second, "2")
	client := newClient(t)
	missing := "aws-sm://" + runPrefix + "prefetch/absent"

	err := client.Prefetch(context.Background(), "aws-sm://"+first, "aws-sm://"+second, missing, "no scheme")
	if !errors.Is(err, keystead.ErrNotFound) {
		t.Errorf("err = %v, want a not-found failure", err)
	}
	if !errors.Is(err, keystead.ErrInvalidReference) {
		t.Errorf("err = %v, want an invalid-reference failure", err)
	}
	var failure *keystead.Error
	if !errors.As(err, &failure) || failure.Reference != missing {
		t.Errorf("first failure = %+v", failure)
	}

	before := client.Metrics()
	for _, name := range []string{first, second} {
		if _, err := client.Get(context.Background(), "aws-sm://"+name); err != nil {
			t.Fatal(err)
		}
	}
	after := client.Metrics()
	if after.Hits-before.Hits != 2 || after.Misses != before.Misses {
		t.Errorf("prefetched reads were not hits: before %+v, after %+v", before, after)
	}
	if err := client.Prefetch(context.Background()); err != nil {
		t.Errorf("empty Prefetch = %v", err)
	}
}

func TestMetricsCountHitsMissesAndErrors(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_METRICS", "m")
	client := newClient(t)

	for range 3 {
		if _, err := client.Get(context.Background(), "env://KEYSTEAD_GO_METRICS"); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = client.Get(context.Background(), "env://KEYSTEAD_GO_METRICS_UNSET")

	metrics := client.Metrics()
	if metrics.Misses != 2 || metrics.Hits != 2 {
		t.Errorf("Misses %d Hits %d, want 2 and 2", metrics.Misses, metrics.Hits)
	}
	if metrics.Errors[keystead.ClassNotFound] != 1 || len(metrics.Errors) != 1 {
		t.Errorf("Errors = %v", metrics.Errors)
	}
	if metrics.LoadCount != 2 || len(metrics.LoadLatency) != 11 {
		t.Errorf("LoadCount %d, %d buckets", metrics.LoadCount, len(metrics.LoadLatency))
	}
	if metrics.LoadLatency[0].UpperBound != time.Millisecond || metrics.LoadLatency[10].UpperBound != 0 {
		t.Errorf("bucket bounds %v and %v", metrics.LoadLatency[0].UpperBound, metrics.LoadLatency[10].UpperBound)
	}
	var total uint64
	for _, bucket := range metrics.LoadLatency {
		total += bucket.Count
	}
	if total != metrics.LoadCount {
		t.Errorf("buckets hold %d loads, LoadCount %d", total, metrics.LoadCount)
	}
}

func TestDisableCachingReadsEveryTime(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_NOCACHE", "a")
	client := newClientWith(t, keystead.Config{Cache: keystead.CacheConfig{DisableCaching: true}})

	for _, want := range []string{"a", "b"} {
		t.Setenv("KEYSTEAD_GO_NOCACHE", want)
		secret, err := client.Get(context.Background(), "env://KEYSTEAD_GO_NOCACHE")
		if err != nil {
			t.Fatal(err)
		}
		if got := secret.Reveal(); got != want {
			t.Errorf("Reveal = %q, want %q", got, want)
		}
	}
	if hits := client.Metrics().Hits; hits != 0 {
		t.Errorf("Hits = %d", hits)
	}
}

func TestConfigErrorsAreErrConfig(t *testing.T) {
	_, err := keystead.New(context.Background(), keystead.Config{Cache: keystead.CacheConfig{TTL: -time.Second}})
	if !errors.Is(err, keystead.ErrConfig) {
		t.Errorf("negative TTL: %v", err)
	}
	_, err = keystead.New(context.Background(), keystead.Config{Secrets: []keystead.SecretConfig{{Reference: "env://A#field"}}})
	if !errors.Is(err, keystead.ErrConfig) {
		t.Errorf("secret with a field: %v", err)
	}
	_, err = keystead.NewFromFile(filepath.Join(t.TempDir(), "absent.toml"))
	if !errors.Is(err, keystead.ErrConfig) {
		t.Errorf("missing file: %v", err)
	}
}

func TestNewFromFileReadsTOML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystead.toml")
	text := "[cache]\nttl = \"90s\"\n\n[[secret]]\nref = \"env://KEYSTEAD_GO_FROM_FILE\"\nttl = \"5s\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEYSTEAD_GO_FROM_FILE", "filed")
	client, err := keystead.NewFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	secret, err := client.Get(context.Background(), "env://KEYSTEAD_GO_FROM_FILE")
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.Reveal(); got != "filed" {
		t.Errorf("Reveal = %q", got)
	}

	broken := filepath.Join(t.TempDir(), "broken.toml")
	if err := os.WriteFile(broken, []byte("[cache]\nmax_entrys = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = keystead.NewFromFile(broken)
	var failure *keystead.Error
	if !errors.As(err, &failure) || failure.Class != keystead.ClassConfig {
		t.Fatalf("err = %v", err)
	}
	for _, part := range []string{"max_entrys", broken, "line 2"} {
		if !strings.Contains(failure.Message, part) {
			t.Errorf("message %q does not name %q", failure.Message, part)
		}
	}
}

func TestNewFromEnvUsesKeysteadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keystead.toml")
	if err := os.WriteFile(path, []byte("[cache]\nmax_entries = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEYSTEAD_CONFIG", path)
	_, err := keystead.NewFromEnv()
	if !errors.Is(err, keystead.ErrConfig) {
		t.Errorf("err = %v, want the invalid file's config error", err)
	}
}

func TestConfigSettingsReachTheCore(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_CONFIGURED", "x")
	client := newClientWith(t, keystead.Config{
		Cache: keystead.CacheConfig{TTL: 90 * time.Second, MaxStale: 2 * time.Hour, MaxEntries: 10,
			ErrorBackoffBase: 1500 * time.Millisecond, ErrorBackoffMax: time.Minute},
		AWS: keystead.AWSConfig{Region: "eu-west-1", MaxAttempts: 2, ConnectTimeout: time.Second,
			AttemptTimeout: 5 * time.Second},
		File:    keystead.ProviderConfig{TTL: time.Minute},
		Env:     keystead.ProviderConfig{TTL: 30 * time.Second},
		Secrets: []keystead.SecretConfig{{Reference: "env://KEYSTEAD_GO_CONFIGURED", TTL: time.Second, Tags: map[string]string{"owner": "go"}}},
	})
	secret, err := client.Get(context.Background(), "env://KEYSTEAD_GO_CONFIGURED")
	if err != nil {
		t.Fatal(err)
	}
	refreshAt := secret.Metadata().RefreshAt
	if refreshAt.IsZero() || time.Until(refreshAt) > time.Second {
		t.Errorf("RefreshAt = %v, want within the per-secret TTL of one second", refreshAt)
	}
}

func TestClosedClientReturnsErrClosed(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_CLOSED", "c")
	client := newClient(t)
	secret, err := client.Get(context.Background(), "env://KEYSTEAD_GO_CLOSED")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if got := secret.Reveal(); got != "c" {
		t.Errorf("a Secret read before Close = %q", got)
	}
	_, err = client.Get(context.Background(), "env://KEYSTEAD_GO_CLOSED")
	if !errors.Is(err, keystead.ErrClosed) {
		t.Errorf("Get after Close = %v", err)
	}
	if err := client.Prefetch(context.Background(), "env://KEYSTEAD_GO_CLOSED"); !errors.Is(err, keystead.ErrClosed) {
		t.Errorf("Prefetch after Close = %v", err)
	}
	if _, err := client.Subscribe("env://KEYSTEAD_GO_CLOSED", func(keystead.RotationEvent) {}); !errors.Is(err, keystead.ErrClosed) {
		t.Errorf("Subscribe after Close = %v", err)
	}
}

func TestClassNamesAreStable(t *testing.T) {
	want := map[keystead.Class]string{
		keystead.ClassInvalidReference: "invalid-reference",
		keystead.ClassNotFound:         "not-found",
		keystead.ClassInternal:         "internal",
	}
	for class, name := range want {
		if class.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(class), class.String(), name)
		}
	}
	if got := keystead.Class(99).String(); got != "Class(99)" {
		t.Errorf("unknown class = %q", got)
	}
}
