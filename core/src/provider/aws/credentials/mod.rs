//! AWS credentials: where they come from, how they are held, and when they
//! are reloaded.
//!
//! The default chain tries, in order: the `AWS_ACCESS_KEY_ID` environment
//! variables, the selected profile of the shared config files, web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`), the container
//! credentials endpoint, and EC2 instance metadata (IMDSv2). The first
//! source that is configured decides: if it fails, the chain stops with its
//! error instead of falling through to a source the user did not mean.

mod container;
mod imds;
mod web_identity;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::error::{Error, ErrorClass};
use crate::provider::aws::environment::AwsEnvironment;
use crate::provider::aws::http::HttpTransport;
use crate::provider::aws::json;
use crate::provider::aws::profile::{self, Profile, ProfileSelection};
use crate::provider::aws::retry::RetryPolicy;
use crate::provider::aws::wipe;

pub(crate) use web_identity::WebIdentity;

/// How long before their expiry credentials are reloaded. Five minutes
/// leaves room for a slow STS or metadata call, retries included, to finish
/// while the old credentials still work, and is a third of the shortest
/// STS session (15 minutes).
pub(crate) const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Where a set of credentials came from, for logs and `Debug`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CredentialsSource {
    Environment,
    Profile(String),
    WebIdentity,
    Container,
    InstanceMetadata,
}

impl fmt::Display for CredentialsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsSource::Environment => f.write_str("environment variables"),
            CredentialsSource::Profile(name) => write!(f, "profile `{name}`"),
            CredentialsSource::WebIdentity => f.write_str("web identity"),
            CredentialsSource::Container => f.write_str("container credentials endpoint"),
            CredentialsSource::InstanceMetadata => f.write_str("EC2 instance metadata"),
        }
    }
}

/// One set of AWS credentials. The secret access key and session token are
/// wiped from memory on drop, and `Debug` never shows them.
pub(crate) struct Credentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
    expires_at: Option<SystemTime>,
    source: CredentialsSource,
}

impl Credentials {
    /// Takes ownership of the secret parts, so that no other copy remains.
    pub(crate) fn new(
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        expires_at: Option<SystemTime>,
        source: CredentialsSource,
    ) -> Credentials {
        Credentials {
            access_key_id,
            secret_access_key: SecretString::from(wipe::exact_text(secret_access_key)),
            session_token: session_token.map(|token| SecretString::from(wipe::exact_text(token))),
            expires_at,
            source,
        }
    }

    pub(crate) fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose_secret()
    }

    pub(crate) fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(|token| token.expose_secret())
    }

    pub(crate) fn source(&self) -> &CredentialsSource {
        &self.source
    }

    /// These credentials, with `expires_at` set to `at` when they carry no
    /// expiry of their own.
    pub(crate) fn or_expiring_at(mut self, at: SystemTime) -> Credentials {
        self.expires_at = self.expires_at.or(Some(at));
        self
    }

    /// Checks whether these credentials are still usable at `now` without
    /// a refresh: they never expire, or expire more than
    /// [`REFRESH_BEFORE_EXPIRY`] from now.
    fn is_fresh(&self, now: SystemTime) -> bool {
        match self.expires_at {
            None => true,
            Some(expiry) => expiry
                .duration_since(now)
                .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY),
        }
    }

    /// Checks whether AWS still accepts these credentials at `now`.
    fn is_unexpired(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|expiry| expiry > now)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("source", &self.source)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &format_args!("[REDACTED]"))
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| format_args!("[REDACTED]")),
            )
            .field("expires_at", &self.expires_at.map(humantime::format_rfc3339_seconds))
            .finish()
    }
}

/// Something that produces credentials: the default chain, or a fake in
/// tests.
#[async_trait]
pub(crate) trait LoadCredentials: Send + Sync + 'static {
    async fn load(&self) -> Result<Credentials, Error>;
}

/// Credentials loaded on first use and reloaded [`REFRESH_BEFORE_EXPIRY`]
/// before they expire.
///
/// Concurrent callers that find the credentials due share one load: the
/// first takes the load lock, the others wait on it and then find the
/// fresh credentials. When a reload fails while the current credentials
/// have not yet expired, the current ones are used and the failure is
/// logged, so a brief STS or metadata outage does not fail requests.
pub(crate) struct CredentialsCache {
    loader: Box<dyn LoadCredentials>,
    current: Mutex<Option<Arc<Credentials>>>,
    load_lock: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
}

impl CredentialsCache {
    pub(crate) fn new(loader: Box<dyn LoadCredentials>, clock: Arc<dyn Clock>) -> CredentialsCache {
        CredentialsCache {
            loader,
            current: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            clock,
        }
    }

    /// Returns usable credentials, loading them if none are cached or the
    /// cached ones are due for refresh.
    ///
    /// # Errors
    /// The loader's error, when there are no unexpired credentials to fall
    /// back on.
    pub(crate) async fn get(&self) -> Result<Arc<Credentials>, Error> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }

        let _guard = self.load_lock.lock().await;
        // Another caller may have loaded while this one waited.
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }

        match self.loader.load().await {
            Ok(loaded) => {
                info!(source = %loaded.source(), "loaded AWS credentials");
                let loaded = Arc::new(loaded);
                *self.current.lock() = Some(Arc::clone(&loaded));
                Ok(loaded)
            }
            Err(error) => {
                let now = self.clock.wall();
                let current = self.current.lock().clone();
                match current {
                    Some(current) if current.is_unexpired(now) => {
                        warn!(error = %error, "refreshing AWS credentials failed; using the current ones until they expire");
                        Ok(current)
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// Drops the cached credentials, so that the next call loads new ones
    /// (after AWS reported them expired).
    pub(crate) fn invalidate(&self) {
        *self.current.lock() = None;
    }

    /// Returns the cached credentials, fresh or not, for `Debug` output.
    pub(crate) fn peek(&self) -> Option<Arc<Credentials>> {
        self.current.lock().clone()
    }

    fn fresh(&self) -> Option<Arc<Credentials>> {
        let now = self.clock.wall();
        self.current
            .lock()
            .as_ref()
            .filter(|credentials| credentials.is_fresh(now))
            .cloned()
    }
}

impl fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsCache")
            .field("current", &self.peek())
            .finish()
    }
}

/// The default credentials chain. See the module documentation for the
/// order.
pub(crate) struct DefaultChain {
    pub(crate) environment: AwsEnvironment,
    pub(crate) profile: ProfileSelection,
    pub(crate) transport: HttpTransport,
    pub(crate) retry: RetryPolicy,
    pub(crate) sts_endpoint: Url,
    pub(crate) clock: Arc<dyn Clock>,
}

#[async_trait]
impl LoadCredentials for DefaultChain {
    async fn load(&self) -> Result<Credentials, Error> {
        if let Some(credentials) = from_environment(&self.environment)? {
            return Ok(credentials);
        }

        if let Some(profile) = profile::load(&self.environment, &self.profile, true)? {
            match from_profile(&profile, &self.profile.name)? {
                ProfileCredentials::Static(credentials) => return Ok(credentials),
                ProfileCredentials::WebIdentity(web_identity) => return self.assume(&web_identity).await,
                ProfileCredentials::None => {}
            }
        }

        if let Some(web_identity) = WebIdentity::from_environment(&self.environment)? {
            return self.assume(&web_identity).await;
        }

        if let Some(credentials) = container::load(&self.environment, &self.transport, &self.retry, self.clock.as_ref()).await? {
            return Ok(credentials);
        }

        let instance_metadata = match imds::load(&self.environment, &self.transport).await? {
            imds::Outcome::Loaded(credentials) => return Ok(credentials),
            imds::Outcome::NotAvailable(reason) => reason,
        };

        Err(Error::new(
            ErrorClass::Config,
            format!(
                "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, add keys to profile `{}` \
                 of the shared credentials file, set AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or set \
                 AWS_CONTAINER_CREDENTIALS_FULL_URI (EC2 instance metadata: {instance_metadata})",
                self.profile.name
            ),
        ))
    }
}

impl DefaultChain {
    async fn assume(&self, web_identity: &WebIdentity) -> Result<Credentials, Error> {
        web_identity
            .assume_role(&self.transport, &self.retry, &self.sts_endpoint, self.clock.as_ref())
            .await
    }
}

/// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional
/// `AWS_SESSION_TOKEN`.
///
/// # Errors
/// [`ErrorClass::Config`] when only one of the two keys is set.
fn from_environment(environment: &AwsEnvironment) -> Result<Option<Credentials>, Error> {
    let access_key_id = environment.var("AWS_ACCESS_KEY_ID");
    let secret_access_key = environment.var("AWS_SECRET_ACCESS_KEY");
    match (access_key_id, secret_access_key) {
        (None, None) => Ok(None),
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Credentials::new(
            access_key_id.to_owned(),
            secret_access_key.to_owned(),
            environment.var("AWS_SESSION_TOKEN").map(str::to_owned),
            None,
            CredentialsSource::Environment,
        ))),
        (Some(_), None) => Err(Error::config(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both or neither",
        )),
        (None, Some(_)) => Err(Error::config(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both or neither",
        )),
    }
}

/// The credentials a profile provides.
enum ProfileCredentials {
    Static(Credentials),
    WebIdentity(WebIdentity),
    None,
}

/// Profile keys that select a credential source keystead does not
/// implement.
// Limitation: role chaining (`source_profile`, `credential_source`),
// `credential_process` and IAM Identity Center (`sso_*`) profiles are not
// supported. Such a profile is reported as a configuration error rather
// than silently skipped.
const UNSUPPORTED_PROFILE_KEYS: [&str; 6] = [
    "source_profile",
    "credential_source",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
];

fn from_profile(profile: &Profile, name: &str) -> Result<ProfileCredentials, Error> {
    if profile.contains("role_arn") && profile.contains("web_identity_token_file") {
        return WebIdentity::from_profile(profile, name).map(ProfileCredentials::WebIdentity);
    }
    if let Some(key) = UNSUPPORTED_PROFILE_KEYS.iter().find(|key| profile.contains(key)) {
        return Err(Error::config(format!(
            "AWS profile `{name}` sets `{key}`, which keystead does not support; \
             use static keys, web identity, or another credentials source"
        )));
    }

    match (profile.get("aws_access_key_id"), profile.get("aws_secret_access_key")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(ProfileCredentials::Static(Credentials::new(
            access_key_id.to_owned(),
            secret_access_key.to_owned(),
            profile.get("aws_session_token").map(str::to_owned),
            None,
            CredentialsSource::Profile(name.to_owned()),
        ))),
        (None, None) => Ok(ProfileCredentials::None),
        (Some(_), None) => Err(Error::config(format!(
            "AWS profile `{name}` sets aws_access_key_id but not aws_secret_access_key"
        ))),
        (None, Some(_)) => Err(Error::config(format!(
            "AWS profile `{name}` sets aws_secret_access_key but not aws_access_key_id"
        ))),
    }
}

/// The JSON document the container credentials endpoint and instance
/// metadata both return.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsDocument<'a> {
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    #[serde(borrow)]
    secret_access_key: Option<&'a RawValue>,
    #[serde(borrow)]
    token: Option<&'a RawValue>,
    expiration: Option<String>,
}

/// Parses a credentials document. The secret parts go from the response
/// body straight into their final storage.
///
/// # Errors
/// [`ErrorClass::AccessDenied`] when the document reports a `Code` other
/// than `Success`; [`ErrorClass::Internal`] when it is malformed. Messages
/// never contain the document.
fn parse_credentials_document(body: &[u8], source: CredentialsSource, what: &str) -> Result<Credentials, Error> {
    let malformed = |problem: &str| Error::new(ErrorClass::Internal, format!("{what} returned {problem}"));
    let document: CredentialsDocument<'_> =
        serde_json::from_slice(body).map_err(|_| malformed("a response that is not a credentials document"))?;

    if let Some(code) = document.code.as_deref().filter(|code| *code != "Success") {
        let message = document.message.as_deref().unwrap_or("no message");
        return Err(Error::new(
            ErrorClass::AccessDenied,
            format!("{what} returned {code}: {message}"),
        ));
    }
    let (Some(access_key_id), Some(secret_access_key)) = (document.access_key_id, document.secret_access_key) else {
        return Err(malformed("a credentials document without AccessKeyId or SecretAccessKey"));
    };
    let secret_access_key = json::decode_string(secret_access_key, "SecretAccessKey")?;
    let session_token = document
        .token
        .map(|token| json::decode_string(token, "Token"))
        .transpose()?;
    let expires_at = document
        .expiration
        .as_deref()
        .map(|text| parse_expiration(text, what))
        .transpose()?;

    Ok(Credentials::new(access_key_id, secret_access_key, session_token, expires_at, source))
}

/// Parses an ISO 8601 expiry such as `2024-05-01T12:00:00Z`.
fn parse_expiration(text: &str, what: &str) -> Result<SystemTime, Error> {
    humantime::parse_rfc3339_weak(text.trim()).map_err(|error| {
        Error::new(
            ErrorClass::Internal,
            format!("{what} returned an invalid expiration time `{text}`: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::time::Instant;

    use super::*;

    fn static_credentials(expires_at: Option<SystemTime>) -> Credentials {
        Credentials::new(
            "AKIDTEST".to_owned(),
            "secret-key-canary".to_owned(),
            Some("session-token-canary".to_owned()),
            expires_at,
            CredentialsSource::Environment,
        )
    }

    #[test]
    fn debug_redacts_secret_parts() {
        let debug = format!("{:?}", static_credentials(None));
        assert!(debug.contains("AKIDTEST"), "{debug}");
        assert!(!debug.contains("secret-key-canary"), "{debug}");
        assert!(!debug.contains("session-token-canary"), "{debug}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
    }

    #[test]
    fn environment_keys_are_read() {
        let environment = AwsEnvironment::empty()
            .with_var("AWS_ACCESS_KEY_ID", "AKIDENV")
            .with_var("AWS_SECRET_ACCESS_KEY", "envsecret")
            .with_var("AWS_SESSION_TOKEN", "envtoken");
        let credentials = from_environment(&environment).unwrap().unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDENV");
        assert_eq!(credentials.secret_access_key(), "envsecret");
        assert_eq!(credentials.session_token(), Some("envtoken"));
        assert_eq!(credentials.source(), &CredentialsSource::Environment);
    }

    #[test]
    fn half_set_environment_keys_are_rejected() {
        let environment = AwsEnvironment::empty().with_var("AWS_SECRET_ACCESS_KEY", "lonely-secret");
        let error = from_environment(&environment).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("AWS_ACCESS_KEY_ID"), "{}", error.message());
        assert!(!error.message().contains("lonely-secret"), "{}", error.message());
        assert!(from_environment(&AwsEnvironment::empty()).unwrap().is_none());
    }

    fn write_credentials_file(text: &str) -> (tempfile::TempDir, AwsEnvironment) {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("credentials");
        std::fs::write(&path, text).unwrap();
        let environment = AwsEnvironment::empty()
            .with_home(folder.path())
            .with_var("AWS_SHARED_CREDENTIALS_FILE", path.to_str().unwrap());
        (folder, environment)
    }

    fn profile_credentials(text: &str, name: &str) -> Result<ProfileCredentials, Error> {
        let (_folder, environment) = write_credentials_file(text);
        let selection = ProfileSelection::resolve(Some(name), &environment);
        let profile = profile::load(&environment, &selection, true).unwrap().unwrap();
        from_profile(&profile, name)
    }

    #[test]
    fn profile_static_keys_are_read() {
        let loaded = profile_credentials(
            "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = devsecret\naws_session_token = devtoken\n",
            "dev",
        )
        .unwrap();
        let ProfileCredentials::Static(credentials) = loaded else {
            panic!("expected static credentials");
        };
        assert_eq!(credentials.access_key_id(), "AKIDDEV");
        assert_eq!(credentials.secret_access_key(), "devsecret");
        assert_eq!(credentials.session_token(), Some("devtoken"));
        assert_eq!(credentials.source(), &CredentialsSource::Profile("dev".to_owned()));
    }

    #[test]
    fn profile_with_role_chaining_is_rejected() {
        let error = profile_credentials("[dev]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n", "dev")
            .err()
            .unwrap();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("source_profile"), "{}", error.message());
    }

    #[test]
    fn profile_with_web_identity_is_recognized() {
        let loaded = profile_credentials(
            "[dev]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /var/token\n",
            "dev",
        )
        .unwrap();
        assert!(matches!(loaded, ProfileCredentials::WebIdentity(_)));
    }

    #[test]
    fn profile_without_secret_key_is_rejected() {
        let error = profile_credentials("[dev]\naws_access_key_id = AKIDDEV\n", "dev").err().unwrap();
        assert_eq!(error.class(), ErrorClass::Config);
    }

    #[test]
    fn credentials_document_is_parsed() {
        let body = br#"{"Code":"Success","AccessKeyId":"ASIAX","SecretAccessKey":"a\/b","Token":"tok","Expiration":"2030-01-02T03:04:05Z"}"#;
        let credentials = parse_credentials_document(body, CredentialsSource::Container, "test").unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAX");
        assert_eq!(credentials.secret_access_key(), "a/b");
        assert_eq!(credentials.session_token(), Some("tok"));
        assert_eq!(
            credentials.expires_at,
            Some(humantime::parse_rfc3339("2030-01-02T03:04:05Z").unwrap())
        );
    }

    #[test]
    fn failed_credentials_document_is_access_denied() {
        let body = br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"not allowed"}"#;
        let error = parse_credentials_document(body, CredentialsSource::InstanceMetadata, "IMDS").unwrap_err();
        assert_eq!(error.class(), ErrorClass::AccessDenied);
        assert!(error.message().contains("AssumeRoleUnauthorizedAccess"), "{}", error.message());
    }

    #[test]
    fn malformed_credentials_document_hides_body() {
        let body = br#"{"AccessKeyId":"ASIAX","SecretAccessKey":"hidden-canary""#;
        let error = parse_credentials_document(body, CredentialsSource::Container, "test").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Internal);
        assert!(!error.message().contains("hidden-canary"), "{}", error.message());
    }

    /// A clock whose wall time tests set by hand.
    struct ManualClock {
        wall: Mutex<SystemTime>,
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            Instant::now()
        }

        fn wall(&self) -> SystemTime {
            *self.wall.lock()
        }

        fn sleep_until(&self, deadline: Instant) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
            Box::pin(tokio::time::sleep_until(deadline))
        }
    }

    /// A loader that counts its calls and hands out credentials valid for
    /// one hour from the clock's time, or fails while `fail` is set.
    struct CountingLoader {
        clock: Arc<ManualClock>,
        calls: Arc<AtomicU32>,
        fail: Arc<parking_lot::Mutex<bool>>,
    }

    #[async_trait]
    impl LoadCredentials for CountingLoader {
        async fn load(&self) -> Result<Credentials, Error> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if *self.fail.lock() {
                return Err(Error::new(ErrorClass::Unavailable, "STS is down"));
            }
            Ok(Credentials::new(
                format!("AKID{call}"),
                "secret".to_owned(),
                None,
                Some(self.clock.wall() + Duration::from_secs(3600)),
                CredentialsSource::Environment,
            ))
        }
    }

    struct CacheFixture {
        clock: Arc<ManualClock>,
        calls: Arc<AtomicU32>,
        fail: Arc<parking_lot::Mutex<bool>>,
        cache: Arc<CredentialsCache>,
    }

    fn cache_fixture() -> CacheFixture {
        let clock = Arc::new(ManualClock {
            wall: Mutex::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        });
        let calls = Arc::new(AtomicU32::new(0));
        let fail = Arc::new(parking_lot::Mutex::new(false));
        let loader = CountingLoader {
            clock: Arc::clone(&clock),
            calls: Arc::clone(&calls),
            fail: Arc::clone(&fail),
        };
        let cache = Arc::new(CredentialsCache::new(Box::new(loader), clock.clone()));
        CacheFixture {
            clock,
            calls,
            fail,
            cache,
        }
    }

    fn advance(clock: &ManualClock, by: Duration) {
        let mut wall = clock.wall.lock();
        *wall += by;
    }

    #[tokio::test]
    async fn cached_credentials_are_reused_until_refresh_window() {
        let fixture = cache_fixture();
        assert_eq!(fixture.cache.get().await.unwrap().access_key_id(), "AKID1");

        // 54 minutes in: six minutes left, outside the refresh window.
        advance(&fixture.clock, Duration::from_secs(54 * 60));
        assert_eq!(fixture.cache.get().await.unwrap().access_key_id(), "AKID1");
        assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);

        // 56 minutes in: four minutes left, inside the window.
        advance(&fixture.clock, Duration::from_secs(2 * 60));
        assert_eq!(fixture.cache.get().await.unwrap().access_key_id(), "AKID2");
        assert_eq!(fixture.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failed_refresh_keeps_unexpired_credentials() {
        let fixture = cache_fixture();
        fixture.cache.get().await.unwrap();
        *fixture.fail.lock() = true;

        advance(&fixture.clock, Duration::from_secs(58 * 60));
        assert_eq!(fixture.cache.get().await.unwrap().access_key_id(), "AKID1");

        advance(&fixture.clock, Duration::from_secs(3 * 60));
        let error = fixture.cache.get().await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Unavailable);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load() {
        let fixture = cache_fixture();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cache = Arc::clone(&fixture.cache);
            tasks.push(tokio::spawn(async move { cache.get().await.unwrap().access_key_id().to_owned() }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), "AKID1");
        }
        assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidate_forces_reload() {
        let fixture = cache_fixture();
        fixture.cache.get().await.unwrap();
        fixture.cache.invalidate();
        assert_eq!(fixture.cache.get().await.unwrap().access_key_id(), "AKID2");
    }
}
