//! AWS Secrets Manager (`aws-sm://`) and SSM Parameter Store (`aws-ssm://`).
//!
//! Both providers speak the services' JSON APIs directly over reqwest and
//! rustls, signed with SigV4, instead of going through the AWS SDK for
//! Rust, which would add minutes of compile time and tens of milliseconds of
//! cold start. They share one HTTP client and one credentials cache.
//!
//! Configuration comes from the `[aws]` table ([`AwsConfig`]) and, for
//! anything it leaves unset, from the standard AWS environment variables and
//! shared config files, read the way the AWS SDKs read them:
//!
//! * region: `aws.region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, then the
//!   profile's `region`;
//! * endpoints: the per-service setting, `AWS_ENDPOINT_URL_SECRETS_MANAGER`
//!   (`_SSM`, `_STS`), `aws.endpoint_url`, `AWS_ENDPOINT_URL`, then the
//!   regional hostname (`-fips` with `AWS_USE_FIPS_ENDPOINT=true`);
//! * credentials: environment, shared files, web identity, container
//!   endpoint, then EC2 instance metadata (IMDSv2).
//!
//! Construction reads the environment and the shared config files once and
//! makes no network call. Credentials are loaded on the first request and
//! reloaded five minutes before they expire.
//!
//! ```no_run
//! # async fn run() -> Result<(), keystead::Error> {
//! use keystead::config::AwsConfig;
//! use keystead::{Provider, Reference};
//!
//! let (secrets_manager, ssm) = keystead::provider::aws::from_config(&AwsConfig::default())?;
//! let fetched = secrets_manager.fetch(&Reference::parse("aws-sm://prod/db")?).await?;
//! # let _ = (fetched, ssm);
//! # Ok(())
//! # }
//! ```

mod credentials;
mod endpoint;
mod environment;
mod http;
mod json;
mod profile;
mod region;
mod retry;
mod secrets_manager;
mod service_error;
mod sigv4;
mod ssm;
mod wipe;
mod xml;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use reqwest::Url;
use tracing::{debug, warn};

use crate::clock::{Clock, SystemClock};
use crate::config::AwsConfig;
use crate::error::Error;

use self::credentials::{CredentialsCache, DefaultChain};
use self::endpoint::{parse_endpoint, resolve_endpoint, AwsService};
use self::http::{AwsApi, HttpTransport};
use self::profile::ProfileSelection;
use self::retry::RetryPolicy;

pub use self::environment::AwsEnvironment;
pub use self::secrets_manager::SecretsManagerProvider;
pub use self::ssm::SsmProvider;

/// Builds the Secrets Manager and SSM providers from `config` and the
/// process environment, sharing one HTTP client and one credentials cache.
///
/// No network call is made. Settings that are invalid on their own (a
/// malformed endpoint URL, zero attempts, a zero timeout) fail here. Everything resolved against the
/// environment (region, endpoint URLs, the CA bundle) is resolved here too,
/// but its error is returned by the providers' first `fetch` instead, so a
/// process that never reads an AWS reference does not fail because AWS is
/// not set up.
///
/// # Errors
/// [`crate::ErrorClass::Config`] naming the invalid `aws.*` setting.
pub fn from_config(config: &AwsConfig) -> Result<(SecretsManagerProvider, SsmProvider), Error> {
    from_config_with_environment(config, AwsEnvironment::from_process())
}

/// Builds the providers like [`from_config`], reading `environment`
/// instead of the process environment. Tests and embedders that pass
/// credentials or endpoints explicitly use this.
///
/// ```
/// use keystead::config::AwsConfig;
/// use keystead::provider::aws::{self, AwsEnvironment};
/// use keystead::Provider;
///
/// let environment = AwsEnvironment::empty()
///     .with_var("AWS_REGION", "us-east-1")
///     .with_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
///     .with_var("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
/// let (secrets_manager, ssm) = aws::from_config_with_environment(&AwsConfig::default(), environment)?;
/// assert_eq!(secrets_manager.scheme(), "aws-sm");
/// assert_eq!(ssm.scheme(), "aws-ssm");
/// # Ok::<(), keystead::Error>(())
/// ```
///
/// # Errors
/// As for [`from_config`].
pub fn from_config_with_environment(
    config: &AwsConfig,
    environment: AwsEnvironment,
) -> Result<(SecretsManagerProvider, SsmProvider), Error> {
    check_settings(config)?;

    let resolved = resolve(config, environment, Arc::new(SystemClock));
    if let Err(error) = &resolved {
        debug!(error = %error, "AWS providers are not usable until AWS is configured");
    }
    let shared = Arc::new(AwsShared { resolved });
    Ok((
        SecretsManagerProvider::new(Arc::clone(&shared)),
        SsmProvider::new(shared),
    ))
}

/// State both providers share. `resolved` contains the configuration
/// error, if any, that every call returns.
pub(crate) struct AwsShared {
    resolved: Result<Resolved, Error>,
}

/// Everything resolved at construction.
pub(crate) struct Resolved {
    pub(crate) api: AwsApi,
    pub(crate) secrets_manager_endpoint: Url,
    pub(crate) ssm_endpoint: Url,
}

impl AwsShared {
    /// Returns the resolved state, or the configuration error that
    /// prevents calls.
    pub(crate) fn resolved(&self) -> Result<&Resolved, Error> {
        self.resolved.as_ref().map_err(Clone::clone)
    }

    /// Writes the fields common to both providers' `Debug` output.
    fn debug_fields(&self, out: &mut fmt::DebugStruct<'_, '_>, endpoint: impl Fn(&Resolved) -> &Url) {
        match &self.resolved {
            Ok(resolved) => {
                out.field("region", &resolved.api.region())
                    .field("endpoint", &endpoint(resolved).as_str())
                    .field("credentials", resolved.api.credentials());
            }
            Err(error) => {
                out.field("configuration_error", &error.message());
            }
        }
    }
}

/// Checks the `[aws]` settings that can be checked without the
/// environment, so that a typo in the keystead config fails at startup.
fn check_settings(config: &AwsConfig) -> Result<(), Error> {
    let endpoints = [
        (&config.endpoint_url, "aws.endpoint_url"),
        (&config.secrets_manager_endpoint_url, "aws.secrets_manager_endpoint_url"),
        (&config.ssm_endpoint_url, "aws.ssm_endpoint_url"),
        (&config.sts_endpoint_url, "aws.sts_endpoint_url"),
    ];
    for (endpoint, key) in endpoints {
        if let Some(url) = endpoint.as_deref().filter(|url| !url.is_empty()) {
            parse_endpoint(url, key)?;
        }
    }
    if config.attempt_timeout.is_zero() {
        return Err(Error::config("invalid config: `aws.attempt_timeout` must be longer than zero"));
    }
    if config.max_attempts == 0 {
        return Err(Error::config("invalid config: `aws.max_attempts` must be at least 1"));
    }
    Ok(())
}

fn resolve(config: &AwsConfig, environment: AwsEnvironment, clock: Arc<dyn Clock>) -> Result<Resolved, Error> {
    let selection = ProfileSelection::resolve(config.profile.as_deref(), &environment);
    let region = region::resolve_region(config, &environment, &selection)?;
    let secrets_manager_endpoint = resolve_endpoint(AwsService::SecretsManager, config, &environment, &region)?;
    let ssm_endpoint = resolve_endpoint(AwsService::Ssm, config, &environment, &region)?;
    let sts_endpoint = resolve_endpoint(AwsService::Sts, config, &environment, &region)?;
    for endpoint in [&secrets_manager_endpoint, &ssm_endpoint, &sts_endpoint] {
        warn_if_plain_http(endpoint);
    }

    let ca_bundle = config
        .ca_bundle
        .clone()
        .or_else(|| environment.var("AWS_CA_BUNDLE").map(|path| environment.expand_home(path)));
    let transport = HttpTransport::new(config, ca_bundle.as_deref())?;
    let retry = RetryPolicy::standard(config.max_attempts);

    let chain = DefaultChain {
        environment,
        profile: selection,
        transport: transport.clone(),
        retry,
        sts_endpoint,
        clock: Arc::clone(&clock),
    };
    let credentials = CredentialsCache::new(Box::new(chain), Arc::clone(&clock));
    let api = AwsApi::new(transport, credentials, region, retry, clock);

    Ok(Resolved {
        api,
        secrets_manager_endpoint,
        ssm_endpoint,
    })
}

/// Plain HTTP is accepted (LocalStack and moto in a compose network use
/// it), but outside loopback it exposes session tokens and secret values
/// on the network, so it is logged.
fn warn_if_plain_http(endpoint: &Url) {
    if endpoint.scheme() != "http" {
        return;
    }
    let host = endpoint.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    if !loopback {
        warn!(endpoint = %endpoint, "AWS endpoint uses plain http; secret values will cross the network unencrypted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Provider;
    use crate::{ErrorClass, Reference};

    fn no_metadata() -> AwsEnvironment {
        AwsEnvironment::empty().with_var("AWS_EC2_METADATA_DISABLED", "true")
    }

    #[tokio::test]
    async fn missing_region_is_reported_at_first_fetch() {
        let folder = tempfile::tempdir().unwrap();
        let environment = no_metadata().with_home(folder.path());
        let (secrets_manager, ssm) = from_config_with_environment(&AwsConfig::default(), environment).unwrap();

        let error = secrets_manager
            .fetch(&Reference::parse("aws-sm://prod/db").unwrap())
            .await
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("AWS_REGION"), "{}", error.message());

        let error = ssm.fetch(&Reference::parse("aws-ssm:///app/db").unwrap()).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
    }

    #[test]
    fn invalid_endpoint_setting_fails_construction() {
        let config = AwsConfig {
            ssm_endpoint_url: Some("localhost:4566".to_owned()),
            ..AwsConfig::default()
        };
        let error = from_config_with_environment(&config, no_metadata()).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("aws.ssm_endpoint_url"), "{}", error.message());
    }

    #[test]
    fn zero_attempt_timeout_fails_construction() {
        let config = AwsConfig {
            attempt_timeout: std::time::Duration::ZERO,
            ..AwsConfig::default()
        };
        let error = from_config_with_environment(&config, no_metadata()).unwrap_err();
        assert!(error.message().contains("aws.attempt_timeout"), "{}", error.message());
    }

    #[test]
    fn debug_shows_region_endpoint_and_no_secrets() {
        let environment = no_metadata()
            .with_var("AWS_REGION", "eu-west-1")
            .with_var("AWS_ACCESS_KEY_ID", "AKIDDEBUG")
            .with_var("AWS_SECRET_ACCESS_KEY", "debug-secret-canary");
        let (secrets_manager, ssm) = from_config_with_environment(&AwsConfig::default(), environment).unwrap();
        let debug = format!("{secrets_manager:?} {ssm:?}");
        assert!(debug.contains("eu-west-1"), "{debug}");
        assert!(debug.contains("https://secretsmanager.eu-west-1.amazonaws.com/"), "{debug}");
        assert!(debug.contains("https://ssm.eu-west-1.amazonaws.com/"), "{debug}");
        assert!(!debug.contains("debug-secret-canary"), "{debug}");
    }
}
