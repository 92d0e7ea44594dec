package keystead

import (
	"encoding/json"
	"fmt"
	"time"
)

// Config is a client's configuration, with the same settings as a
// keystead.toml file. Zero values mean the default, which the Rust core
// sets and documents; the defaults are named below for convenience.
type Config struct {
	// Cache is the cache policy for every reference.
	Cache CacheConfig
	// AWS holds the AWS Secrets Manager and SSM Parameter Store settings.
	AWS AWSConfig
	// File sets the TTL of file:// references.
	File ProviderConfig
	// Env sets the TTL of env:// references.
	Env ProviderConfig
	// Vault holds the HashiCorp Vault and OpenBao settings.
	Vault VaultConfig
	// Secrets holds per-reference overrides and tags.
	Secrets []SecretConfig
}

// CacheConfig is the cache policy.
type CacheConfig struct {
	// TTL is how long a value is served before it is due; the default is
	// 5 minutes. Refresh starts in the background between 75 % and 90 % of
	// it.
	TTL time.Duration
	// DisableCaching sends every read to the backend (concurrent reads of
	// one reference still share one call). It sets the TTL to zero, which
	// a zero TTL field cannot express.
	DisableCaching bool
	// MaxStale is how long past its TTL a value is still served while the
	// backend is unavailable; the default is 1 hour.
	MaxStale time.Duration
	// MaxEntries is the maximum number of cached references; the default
	// is 1024.
	MaxEntries int
	// ErrorBackoffBase is the first retry delay after a failed load; the
	// default is 1 second.
	ErrorBackoffBase time.Duration
	// ErrorBackoffMax is the longest retry delay; the default is 5 minutes.
	ErrorBackoffMax time.Duration
}

// AWSConfig holds AWS settings. Unset fields fall back to the standard AWS
// environment variables (AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE, ...)
// and shared config files.
type AWSConfig struct {
	// Region, for example "eu-west-1".
	Region string
	// Profile names a shared config profile.
	Profile string
	// EndpointURL is the endpoint for every AWS service.
	EndpointURL string
	// SecretsManagerEndpointURL overrides EndpointURL for Secrets Manager.
	SecretsManagerEndpointURL string
	// SSMEndpointURL overrides EndpointURL for SSM.
	SSMEndpointURL string
	// STSEndpointURL overrides EndpointURL for STS.
	STSEndpointURL string
	// MaxAttempts is the number of attempts per backend call, the first
	// included; the default is 3.
	MaxAttempts int
	// ConnectTimeout is the time allowed to open a connection; the default
	// is 3.1 seconds.
	ConnectTimeout time.Duration
	// AttemptTimeout is the time allowed for one attempt; the default is
	// 10 seconds.
	AttemptTimeout time.Duration
	// CABundle is a PEM file of extra trusted root certificates.
	CABundle string
}

// ProviderConfig overrides one provider's TTL.
type ProviderConfig struct {
	// TTL for this provider's references; zero uses the provider default.
	TTL time.Duration
}

// SecretConfig holds the settings of one reference.
type SecretConfig struct {
	// Reference, without a #field selector (settings apply to every field).
	Reference string
	// TTL for this reference; zero inherits the cache or provider TTL.
	TTL time.Duration
	// MaxStale for this reference; zero inherits the cache setting.
	MaxStale time.Duration
	// Tags are labels copied into every audit event about this reference.
	Tags map[string]string
}

// encode writes the configuration in the JSON form of the keystead.toml
// schema, leaving out zero values so that the core's defaults apply. It is
// not MarshalJSON, because its output holds the Vault token in clear.
func (c Config) encode() ([]byte, error) {
	document := map[string]any{}
	putTable(document, "cache", c.Cache.table())
	putTable(document, "aws", c.AWS.table())
	putTable(document, "file", c.File.table())
	putTable(document, "env", c.Env.table())
	putTable(document, "vault", c.Vault.table())
	if len(c.Secrets) > 0 {
		secrets := make([]map[string]any, 0, len(c.Secrets))
		for _, secret := range c.Secrets {
			secrets = append(secrets, secret.table())
		}
		document["secret"] = secrets
	}
	return json.Marshal(document)
}

func (c CacheConfig) table() map[string]any {
	table := map[string]any{}
	putDuration(table, "ttl", c.TTL)
	if c.DisableCaching {
		table["ttl"] = "0s"
	}
	putDuration(table, "max_stale", c.MaxStale)
	putInt(table, "max_entries", c.MaxEntries)
	putDuration(table, "error_backoff_base", c.ErrorBackoffBase)
	putDuration(table, "error_backoff_max", c.ErrorBackoffMax)
	return table
}

func (c AWSConfig) table() map[string]any {
	table := map[string]any{}
	putString(table, "region", c.Region)
	putString(table, "profile", c.Profile)
	putString(table, "endpoint_url", c.EndpointURL)
	putString(table, "secrets_manager_endpoint_url", c.SecretsManagerEndpointURL)
	putString(table, "ssm_endpoint_url", c.SSMEndpointURL)
	putString(table, "sts_endpoint_url", c.STSEndpointURL)
	putInt(table, "max_attempts", c.MaxAttempts)
	putDuration(table, "connect_timeout", c.ConnectTimeout)
	putDuration(table, "attempt_timeout", c.AttemptTimeout)
	putString(table, "ca_bundle", c.CABundle)
	return table
}

func (c ProviderConfig) table() map[string]any {
	table := map[string]any{}
	putDuration(table, "ttl", c.TTL)
	return table
}

func (c SecretConfig) table() map[string]any {
	table := map[string]any{"ref": c.Reference}
	putDuration(table, "ttl", c.TTL)
	putDuration(table, "max_stale", c.MaxStale)
	if len(c.Tags) > 0 {
		table["tags"] = c.Tags
	}
	return table
}

func putTable(document map[string]any, key string, table map[string]any) {
	if len(table) > 0 {
		document[key] = table
	}
}

func putString(table map[string]any, key, value string) {
	if value != "" {
		table[key] = value
	}
}

func putInt(table map[string]any, key string, value int) {
	if value != 0 {
		table[key] = value
	}
}

func putDuration(table map[string]any, key string, value time.Duration) {
	if value != 0 {
		table[key] = durationText(value)
	}
}

// durationText writes a duration in the largest unit that divides it
// exactly ("90s", "1500ms"), in the form the core's parser accepts. A
// negative duration keeps its sign, and the core rejects it with a
// message naming the key.
func durationText(d time.Duration) string {
	units := []struct {
		size time.Duration
		name string
	}{
		{time.Hour, "h"},
		{time.Minute, "m"},
		{time.Second, "s"},
		{time.Millisecond, "ms"},
		{time.Microsecond, "us"},
	}
	for _, unit := range units {
		if d%unit.size == 0 {
			return fmt.Sprintf("%d%s", d/unit.size, unit.name)
		}
	}
	return fmt.Sprintf("%dns", int64(d))
}
