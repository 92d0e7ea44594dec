//! Configuration: `keystead.toml` and its defaults.
//!
//! ```toml
//! [cache]
//! ttl = "5m"            # how long a value is served before it is due
//! max_stale = "1h"      # how long past `ttl` a value is served while the backend is down
//! max_entries = 1024
//!
//! [aws]
//! region = "eu-west-1"
//! endpoint_url = "http://127.0.0.1:5000"
//!
//! [[secret]]
//! ref = "aws-sm://prod/db"
//! ttl = "30s"
//! tags = { owner = "payments", classification = "restricted" }
//! ```
//!
//! Every table and key is optional. Unknown keys are rejected with the key's
//! name, so that a typo is not silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

mod vault;

pub use vault::{
    AppRoleAuth, AwsIamAuth, JwtAuth, KubernetesAuth, SecretText, VaultAuthConfig, VaultConfig,
    DEFAULT_KUBERNETES_TOKEN_FILE, DEFAULT_VAULT_CONNECT_TIMEOUT, DEFAULT_VAULT_REQUEST_TIMEOUT,
};

/// How long a value is served before it is due for replacement when neither
/// the provider nor the configuration sets a TTL. Five minutes matches the
/// AWS Secrets Manager Agent and Lambda extension, so callers moving from
/// them see the same freshness.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// How long past its TTL a value is still served while the backend is
/// unavailable. An hour lets an application ride out a backend outage of
/// that length; authoritative errors (not found, access denied) still drop
/// the value at once.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(3600);

/// Maximum number of cached references. 1024 matches the AWS caching
/// libraries' default, which covers the applications they are used in.
pub const DEFAULT_MAX_ENTRIES: usize = 1024;

/// First delay after a failed load. Later failures double it.
pub const DEFAULT_ERROR_BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Maximum delay between retries of a failing load: long enough not to
/// hammer a throttling backend, short enough that recovery is noticed
/// within minutes.
pub const DEFAULT_ERROR_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Environment variable naming a `keystead.toml` to load by default.
pub const CONFIG_ENV: &str = "KEYSTEAD_CONFIG";

/// The whole configuration.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Cache policy for all references.
    pub cache: CacheConfig,
    /// AWS Secrets Manager and SSM Parameter Store settings.
    pub aws: AwsConfig,
    /// File provider settings.
    pub file: ProviderTtl,
    /// Environment provider settings.
    pub env: ProviderTtl,
    /// HashiCorp Vault and OpenBao settings.
    pub vault: VaultConfig,
    /// Per-reference overrides and tags.
    #[serde(rename = "secret")]
    pub secrets: Vec<SecretConfig>,
    // The `keystead run`, `keystead render` and `keystead agent` commands
    // read their own tables from the same file. The library accepts them so
    // that one keystead.toml serves both, and leaves checking them to the
    // command-line tool.
    #[serde(rename = "run")]
    command_run: serde::de::IgnoredAny,
    #[serde(rename = "render")]
    command_render: serde::de::IgnoredAny,
    #[serde(rename = "agent")]
    command_agent: serde::de::IgnoredAny,
}

/// Cache policy.
#[non_exhaustive]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long a value is served before it is due. Refresh starts in the
    /// background at a random point between 75 % and 90 % of it. Zero
    /// disables caching: every read goes to the backend (concurrent reads of
    /// one reference still share one call).
    #[serde(with = "duration_text")]
    pub ttl: Duration,
    /// How long past `ttl` a value is served while the backend is
    /// unavailable.
    #[serde(with = "duration_text")]
    pub max_stale: Duration,
    /// Maximum number of cached references; the least recently read one is
    /// evicted first.
    pub max_entries: usize,
    /// First retry delay after a failed load.
    #[serde(with = "duration_text")]
    pub error_backoff_base: Duration,
    /// Maximum retry delay after repeated failures.
    #[serde(with = "duration_text")]
    pub error_backoff_max: Duration,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            ttl: DEFAULT_TTL,
            max_stale: DEFAULT_MAX_STALE,
            max_entries: DEFAULT_MAX_ENTRIES,
            error_backoff_base: DEFAULT_ERROR_BACKOFF_BASE,
            error_backoff_max: DEFAULT_ERROR_BACKOFF_MAX,
        }
    }
}

/// AWS settings. Anything unset falls back to the standard AWS environment
/// variables and shared config files.
#[non_exhaustive]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region; falls back to `AWS_REGION`, `AWS_DEFAULT_REGION`, then the
    /// profile's `region`.
    pub region: Option<String>,
    /// Shared config profile; falls back to `AWS_PROFILE`, then `default`.
    pub profile: Option<String>,
    /// Endpoint for every AWS service; falls back to `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Endpoint for Secrets Manager; falls back to
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, then `endpoint_url`.
    pub secrets_manager_endpoint_url: Option<String>,
    /// Endpoint for SSM; falls back to `AWS_ENDPOINT_URL_SSM`, then
    /// `endpoint_url`.
    pub ssm_endpoint_url: Option<String>,
    /// Endpoint for STS; falls back to `AWS_ENDPOINT_URL_STS`, then
    /// `endpoint_url`.
    pub sts_endpoint_url: Option<String>,
    /// Attempts per backend call, the first included. Retries inside one
    /// call back off with full jitter; the cache's own backoff applies
    /// between calls.
    pub max_attempts: u32,
    /// Time allowed to open a connection.
    #[serde(with = "duration_text")]
    pub connect_timeout: Duration,
    /// Time allowed for one attempt, from sending the request to reading
    /// the whole response.
    #[serde(with = "duration_text")]
    pub attempt_timeout: Duration,
    /// PEM file of extra trusted root certificates; falls back to
    /// `AWS_CA_BUNDLE`.
    pub ca_bundle: Option<PathBuf>,
}

impl Default for AwsConfig {
    fn default() -> AwsConfig {
        AwsConfig {
            region: None,
            profile: None,
            endpoint_url: None,
            secrets_manager_endpoint_url: None,
            ssm_endpoint_url: None,
            sts_endpoint_url: None,
            // The AWS SDKs' standard retry mode makes three attempts.
            max_attempts: 3,
            // The AWS SDKs use 3.1 s; a connection to a regional endpoint
            // that has not opened by then is not going to.
            connect_timeout: Duration::from_millis(3100),
            // Secrets Manager responds in tens of milliseconds; ten seconds
            // covers a cold KMS decrypt with a wide margin.
            attempt_timeout: Duration::from_secs(10),
            ca_bundle: None,
        }
    }
}

/// A provider's TTL override.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderTtl {
    /// TTL for this provider's references; unset uses the provider default.
    #[serde(with = "optional_duration_text")]
    pub ttl: Option<Duration>,
}

/// Settings for one reference.
#[non_exhaustive]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// The reference, without a field selector (settings apply to every
    /// field of it).
    #[serde(rename = "ref")]
    pub reference: String,
    /// TTL for this reference.
    #[serde(default, with = "optional_duration_text")]
    pub ttl: Option<Duration>,
    /// Maximum staleness for this reference.
    #[serde(default, with = "optional_duration_text")]
    pub max_stale: Option<Duration>,
    /// Owner, classification or any other labels, copied into every audit
    /// event about this reference.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl SecretConfig {
    /// Settings for `reference` with no overrides.
    pub fn new(reference: impl Into<String>) -> SecretConfig {
        SecretConfig {
            reference: reference.into(),
            ttl: None,
            max_stale: None,
            tags: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads and checks a `keystead.toml`.
    ///
    /// # Errors
    /// [`crate::ErrorClass::Config`] naming the file, and the key and line
    /// where the file is wrong.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| {
            Error::config(format!("cannot read config file {}: {error}", path.display()))
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Parses configuration text. `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, Error> {
        let config: Config = toml::from_str(text).map_err(|error| {
            let message = error.message().trim_end().to_owned();
            let location = error
                .span()
                .map(|span| line_of(text, span.start))
                .map(|line| format!(" (line {line})"))
                .unwrap_or_default();
            Error::config(format!("invalid config in {origin}{location}: {message}"))
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// Parses configuration given as JSON with the same schema as the TOML
    /// file, as the bindings receive it from a dict or an object. `origin`
    /// names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Config, Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let message = inner.to_string();
            // serde_json appends " at line L column C", which means little
            // for a dict built in code, while the key path points at the value.
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            if path.is_empty() || path == "." {
                Error::config(format!("invalid config in {origin}: {message}"))
            } else {
                Error::config(format!("invalid config in {origin}: `{path}`: {message}"))
            }
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// Loads the file named by `KEYSTEAD_CONFIG`, or the defaults when it is
    /// unset.
    pub fn from_env() -> Result<Config, Error> {
        match std::env::var_os(CONFIG_ENV) {
            Some(path) if !path.is_empty() => Config::from_file(PathBuf::from(path)),
            _ => Ok(Config::default()),
        }
    }

    /// Checks values that parse but make no sense.
    pub fn check(&self, origin: &str) -> Result<(), Error> {
        let fail = |key: &str, problem: &str| {
            Err(Error::config(format!("invalid config in {origin}: `{key}` {problem}")))
        };
        if self.cache.max_entries == 0 {
            return fail("cache.max_entries", "must be at least 1");
        }
        if self.cache.error_backoff_base.is_zero() {
            return fail("cache.error_backoff_base", "must be longer than zero");
        }
        if self.cache.error_backoff_max < self.cache.error_backoff_base {
            return fail("cache.error_backoff_max", "must not be shorter than cache.error_backoff_base");
        }
        if self.aws.max_attempts == 0 {
            return fail("aws.max_attempts", "must be at least 1");
        }
        if let Err(problem) = self.vault.check() {
            return Err(Error::config(format!("invalid config in {origin}: {problem}")));
        }
        for (index, secret) in self.secrets.iter().enumerate() {
            let reference = crate::Reference::parse(&secret.reference).map_err(|error| {
                Error::config(format!(
                    "invalid config in {origin}: `secret[{index}].ref`: {error}"
                ))
            })?;
            if reference.field().is_some() {
                return fail(
                    &format!("secret[{index}].ref"),
                    "must not have a #field; settings apply to the whole secret",
                );
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|byte| **byte == b'\n').count() + 1
}

/// Serde adapter for durations written as text such as `"90s"` or `"5m"`.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Deserializes a duration from text such as `"1h 30m"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        let duration = humantime::parse_duration(&text).map_err(|error| {
            serde::de::Error::custom(format!(
                "invalid duration `{text}`: {error}; write for example \"30s\", \"5m\" or \"1h\""
            ))
        })?;
        if duration > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "invalid duration `{text}`: longer than the maximum of 10 years"
            )));
        }
        Ok(duration)
    }

    /// Maximum duration accepted in configuration. Deadlines are computed
    /// by adding durations to the current time, and ten years is beyond any
    /// sensible cache or timeout setting while far from overflowing.
    pub const MAX_DURATION: Duration = Duration::from_secs(86_400 * 365 * 10);
}

/// Serde adapter for optional durations written as text.
pub mod optional_duration_text {
    use std::time::Duration;

    use serde::Deserializer;

    /// Deserializes a duration from text such as `"30s"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::duration_text::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn empty_text_gives_defaults() {
        let config = Config::from_toml("", "test.toml").unwrap();
        assert_eq!(config.cache.ttl, DEFAULT_TTL);
        assert_eq!(config.cache.max_entries, DEFAULT_MAX_ENTRIES);
        assert_eq!(config.aws.max_attempts, 3);
    }

    #[test]
    fn durations_are_text() {
        let text = "[cache]\nttl = \"90s\"\nmax_stale = \"2h\"\n[[secret]]\nref = \"env://A\"\nttl = \"1m\"\ntags = { owner = \"team-a\" }\n";
        let config = Config::from_toml(text, "test.toml").unwrap();
        assert_eq!(config.cache.ttl, Duration::from_secs(90));
        assert_eq!(config.cache.max_stale, Duration::from_secs(7200));
        assert_eq!(config.secrets[0].ttl, Some(Duration::from_secs(60)));
        assert_eq!(config.secrets[0].tags["owner"], "team-a");
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let error = Config::from_toml("[cache]\nttl = \"1s\"\nmax_entrys = 5\n", "app/keystead.toml").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        let message = error.to_string();
        assert!(message.contains("max_entrys"), "{message}");
        assert!(message.contains("app/keystead.toml"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn bad_duration_is_explained() {
        let error = Config::from_toml("[cache]\nttl = \"soon\"\n", "k.toml").unwrap_err();
        assert!(error.to_string().contains("invalid duration `soon`"), "{error}");
    }

    #[test]
    fn huge_duration_is_rejected_with_its_key() {
        let error = Config::from_toml("[cache]\nttl = \"18446744073709551615s\"\n", "k.toml").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("maximum of 10 years"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn zero_entries_is_rejected() {
        let error = Config::from_toml("[cache]\nmax_entries = 0\n", "k.toml").unwrap_err();
        assert!(error.to_string().contains("cache.max_entries"), "{error}");
    }

    #[test]
    fn secret_with_field_is_rejected() {
        let error = Config::from_toml("[[secret]]\nref = \"env://A#x\"\n", "k.toml").unwrap_err();
        assert!(error.to_string().contains("secret[0].ref"), "{error}");
    }

    #[test]
    fn json_uses_the_same_schema() {
        let config = Config::from_json(r#"{"cache": {"ttl": "45s"}, "secret": [{"ref": "env://A", "ttl": "5s"}]}"#, "dict").unwrap();
        assert_eq!(config.cache.ttl, Duration::from_secs(45));
        assert_eq!(config.secrets[0].ttl, Some(Duration::from_secs(5)));
        let error = Config::from_json(r#"{"cache": {"tll": "45s"}}"#, "dict").unwrap_err();
        assert!(error.to_string().contains("tll"), "{error}");
        let error = Config::from_json(r#"{"cache": {"ttl": "soon"}}"#, "dict").unwrap_err();
        assert!(error.to_string().contains("`cache.ttl`"), "{error}");
    }

    #[test]
    fn command_tables_are_accepted() {
        let text = "[run]\nrestart = false\n[run.env]\nDB = \"env://DB\"\n[[render.template]]\nsource = \"a.j2\"\n[agent]\nport = 2773\n";
        let config = Config::from_toml(text, "k.toml").unwrap();
        assert_eq!(config.cache.ttl, DEFAULT_TTL);
    }

    #[test]
    fn missing_file_is_named() {
        let error = Config::from_file("/nonexistent/keystead.toml").unwrap_err();
        assert!(error.to_string().contains("/nonexistent/keystead.toml"), "{error}");
    }
}
