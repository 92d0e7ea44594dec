package keystead_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"testing"

	"keystead.dev/keystead"
)

// canary is a secret value that must never appear in printed output.
const canary = "canary-go-5d2f8e-do-not-print"

func assertNoCanary(t *testing.T, what, text string) {
	t.Helper()
	if strings.Contains(text, canary) {
		t.Errorf("%s shows the secret value: %s", what, text)
	}
}

func TestSecretFormattingHidesValue(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_CANARY", canary)
	client := newClient(t)
	secret, err := client.Get(context.Background(), "env://KEYSTEAD_GO_CANARY")
	if err != nil {
		t.Fatal(err)
	}
	if secret.Reveal() != canary {
		t.Fatal("the canary was not read")
	}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10v", "%-20s"} {
		assertNoCanary(t, verb, fmt.Sprintf(verb, secret))
	}
	assertNoCanary(t, "Sprint", fmt.Sprint(secret))
	assertNoCanary(t, "Sprintln", fmt.Sprintln(secret, []*keystead.Secret{secret}))
	assertNoCanary(t, "a struct holding it", fmt.Sprintf("%+v", struct{ Token *keystead.Secret }{secret}))
	assertNoCanary(t, "String", secret.String())
	assertNoCanary(t, "GoString", secret.GoString())

	if got := fmt.Sprintf("%v|%s|%q", secret, secret, secret); got != `[REDACTED]|[REDACTED]|"[REDACTED]"` {
		t.Errorf("plain verbs = %s", got)
	}
	if got := fmt.Sprintf("%#v", secret); !strings.Contains(got, `Reference:"env://KEYSTEAD_GO_CANARY"`) {
		t.Errorf("%%#v = %s", got)
	}
	if got := fmt.Sprintf("%+v", secret); !strings.Contains(got, "Reference:env://KEYSTEAD_GO_CANARY") {
		t.Errorf("%%+v = %s", got)
	}
}

func TestSecretJSONAndLogsHideValue(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_CANARY", canary)
	client := newClient(t)
	secret, err := client.Get(context.Background(), "env://KEYSTEAD_GO_CANARY")
	if err != nil {
		t.Fatal(err)
	}

	encoded, err := json.Marshal(map[string]any{"secret": secret})
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "encoding/json", string(encoded))
	if !strings.Contains(string(encoded), `"value":"[REDACTED]"`) {
		t.Errorf("json = %s", encoded)
	}

	var output bytes.Buffer
	for _, handler := range []slog.Handler{slog.NewTextHandler(&output, nil), slog.NewJSONHandler(&output, nil)} {
		logger := slog.New(handler)
		logger.Info("loaded", "secret", secret)
		logger.Info("loaded", slog.Any("secret", secret), "metadata", secret.Metadata())
	}
	logger := log.New(&output, "", 0)
	logger.Printf("%v %+v %s", secret, secret, secret)
	logger.Println(secret)
	assertNoCanary(t, "log output", output.String())
	if !strings.Contains(output.String(), "env://KEYSTEAD_GO_CANARY") {
		t.Errorf("logs do not name the reference: %s", output.String())
	}
}

func TestErrorsHideValue(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_CANARY_JSON", `{"password":"`+canary+`","nested":{"deep":"`+canary+`"}}`)
	t.Setenv("KEYSTEAD_GO_CANARY_TEXT", canary+" is not json")
	name := runPrefix + "canary/aws"
	createSecret(t, name, `{"token":"`+canary+`"}`)
	client := newClient(t)

	var failures []error
	for _, reference := range []string{
		"env://KEYSTEAD_GO_CANARY_JSON#missing",
		"env://KEYSTEAD_GO_CANARY_JSON#password.inner",
		"env://KEYSTEAD_GO_CANARY_JSON#nested.absent",
		"env://KEYSTEAD_GO_CANARY_TEXT#field",
		"aws-sm://" + name + "#absent",
	} {
		_, err := client.Get(context.Background(), reference)
		if err == nil {
			t.Errorf("Get(%s) succeeded", reference)
			continue
		}
		failures = append(failures, err)
	}
	whole, err := client.Get(context.Background(), "env://KEYSTEAD_GO_CANARY_JSON")
	if err != nil {
		t.Fatal(err)
	}
	_, err = whole.Field("absent")
	failures = append(failures, err)
	password, err := whole.Field("password")
	if err != nil {
		t.Fatal(err)
	}
	_, err = password.Field("x")
	failures = append(failures, err)

	for _, failure := range failures {
		if failure == nil {
			t.Error("an expected failure is nil")
			continue
		}
		var typed *keystead.Error
		if !errors.As(failure, &typed) {
			t.Errorf("%T is not an *Error", failure)
			continue
		}
		for _, text := range []string{failure.Error(), typed.Message, fmt.Sprintf("%+v", failure), fmt.Sprintf("%#v", typed)} {
			assertNoCanary(t, "error text", text)
		}
	}
}
