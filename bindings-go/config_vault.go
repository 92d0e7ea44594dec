package keystead

import (
	"encoding/json"
	"fmt"
	"time"
)

// VaultConfig holds HashiCorp Vault and OpenBao settings. The provider is
// registered when Address (or VAULT_ADDR / BAO_ADDR) is set. Unset fields
// fall back to the standard VAULT_* and BAO_* environment variables.
type VaultConfig struct {
	// Address of the server, for example "https://vault.internal:8200".
	Address string
	// Namespace (Vault Enterprise and OpenBao namespaces).
	Namespace string
	// Token is a static token. Prefer TokenFile or VAULT_TOKEN, which keep
	// the token out of the program's configuration.
	Token SecretText
	// TokenFile is a file holding the token.
	TokenFile string
	// CACert is a PEM file of trusted root certificates.
	CACert string
	// CAPath is a folder of PEM root certificates.
	CAPath string
	// ClientCert and ClientKey are the PEM files for TLS client
	// authentication; set both or neither.
	ClientCert string
	ClientKey  string
	// DangerAcceptInvalidCerts turns off TLS certificate checks. For tests
	// against a local server only.
	DangerAcceptInvalidCerts bool
	// KeepLeasesOnClose leaves the leases this client created alive when
	// it closes. By default they are revoked.
	KeepLeasesOnClose bool
	// ConnectTimeout is the time allowed to open a connection; the default
	// is 5 seconds.
	ConnectTimeout time.Duration
	// RequestTimeout is the time allowed for one request; the default is 30
	// seconds.
	RequestTimeout time.Duration
	// TTL for vault:// values that carry no lease; zero uses the provider
	// default.
	TTL time.Duration
	// Auth selects a login method; nil uses the token.
	Auth *VaultAuth
}

// VaultAuth selects and configures a Vault login method. Set Method and the
// fields that method uses; the core rejects fields another method needs.
type VaultAuth struct {
	// Method is "token", "approle", "jwt", "kubernetes" or "aws".
	Method string
	// Mount is the auth mount path; empty uses the method's name.
	Mount string
	// Role names the role to log in as (jwt, kubernetes, aws).
	Role string
	// RoleID or RoleIDFile gives the AppRole role id.
	RoleID     string
	RoleIDFile string
	// SecretIDFile or SecretIDEnv gives the AppRole secret id.
	// SecretIDWrapped marks it as a response-wrapping token.
	SecretIDFile    string
	SecretIDEnv     string
	SecretIDWrapped bool
	// JWTFile is the file holding the JWT (jwt).
	JWTFile string
	// TokenFile is the service account token file (kubernetes); empty uses
	// the standard path.
	TokenFile string
	// Region, STSEndpointURL and ServerID configure the aws method.
	Region         string
	STSEndpointURL string
	ServerID       string
}

// SecretText is configuration text that must not be printed, such as a
// token. fmt, encoding/json and log/slog show "[REDACTED]".
type SecretText string

// String returns "[REDACTED]".
func (SecretText) String() string { return redacted }

// GoString returns "[REDACTED]".
func (SecretText) GoString() string { return redacted }

// Format prints "[REDACTED]" for every verb.
func (SecretText) Format(state fmt.State, verb rune) { fmt.Fprint(state, redacted) }

// MarshalJSON writes "[REDACTED]".
func (SecretText) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText writes "[REDACTED]", for log/slog and encoders that use
// encoding.TextMarshaler.
func (SecretText) MarshalText() ([]byte, error) { return []byte(redacted), nil }

func (c VaultConfig) table() map[string]any {
	table := map[string]any{}
	putString(table, "address", c.Address)
	putString(table, "namespace", c.Namespace)
	putString(table, "token", string(c.Token))
	putString(table, "token_file", c.TokenFile)
	putString(table, "ca_cert", c.CACert)
	putString(table, "ca_path", c.CAPath)
	putString(table, "client_cert", c.ClientCert)
	putString(table, "client_key", c.ClientKey)
	if c.DangerAcceptInvalidCerts {
		table["danger_accept_invalid_certs"] = true
	}
	if c.KeepLeasesOnClose {
		table["revoke_on_close"] = false
	}
	putDuration(table, "connect_timeout", c.ConnectTimeout)
	putDuration(table, "request_timeout", c.RequestTimeout)
	putDuration(table, "ttl", c.TTL)
	if c.Auth != nil {
		table["auth"] = c.Auth.table()
	}
	return table
}

func (a VaultAuth) table() map[string]any {
	table := map[string]any{"method": a.Method}
	putString(table, "mount", a.Mount)
	putString(table, "role", a.Role)
	putString(table, "role_id", a.RoleID)
	putString(table, "role_id_file", a.RoleIDFile)
	putString(table, "secret_id_file", a.SecretIDFile)
	putString(table, "secret_id_env", a.SecretIDEnv)
	if a.SecretIDWrapped {
		table["secret_id_wrapped"] = true
	}
	putString(table, "jwt_file", a.JWTFile)
	putString(table, "token_file", a.TokenFile)
	putString(table, "region", a.Region)
	putString(table, "sts_endpoint_url", a.STSEndpointURL)
	putString(table, "server_id", a.ServerID)
	return table
}
