package keystead_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"keystead.dev/keystead"
)

func TestVaultSettingsFromConfig(t *testing.T) {
	// Clear the environment's Vault settings, so that only Config reaches
	// the server.
	t.Setenv("VAULT_ADDR", "")
	t.Setenv("VAULT_TOKEN", "")
	path := runPrefix + "vault/db"
	vaultCall(t, http.MethodPost, "secret/data/"+path, map[string]any{"data": map[string]any{"password": "from-vault"}})
	client := newClientWith(t, keystead.Config{Vault: keystead.VaultConfig{
		Address: openBaoAddress,
		Token:   openBaoToken,
	}})

	secret, err := client.Get(context.Background(), "vault://secret/"+path+"#password")
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.Reveal(); got != "from-vault" {
		t.Errorf("Reveal = %q", got)
	}
	if got := secret.Metadata().VersionNumber; got != 1 {
		t.Errorf("VersionNumber = %d", got)
	}
}

func TestVaultAuthSettingsAreChecked(t *testing.T) {
	_, err := keystead.New(context.Background(), keystead.Config{Vault: keystead.VaultConfig{
		Address: openBaoAddress,
		Token:   "t",
		Auth:    &keystead.VaultAuth{Method: "approle", RoleID: "r", SecretIDEnv: "SECRET_ID"},
	}})
	var failure *keystead.Error
	if !errors.As(err, &failure) || failure.Class != keystead.ClassConfig {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(failure.Message, "vault.auth.method") {
		t.Errorf("message = %q", failure.Message)
	}
}

func TestConfigPrintingHidesVaultToken(t *testing.T) {
	config := keystead.Config{Vault: keystead.VaultConfig{Address: "http://127.0.0.1:1", Token: canary}}

	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", config, "token", config.Vault.Token)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "config", config, "token", config.Vault.Token)
	encoded, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		fmt.Sprintf("%v", config), fmt.Sprintf("%+v", config), fmt.Sprintf("%#v", config),
		fmt.Sprintf("%s %q %x", config.Vault.Token, config.Vault.Token, config.Vault.Token),
		string(encoded), logged.String(),
	} {
		assertNoCanary(t, "printed config", text)
	}
}
