//! HashiCorp Vault and OpenBao (`vault://`).
//!
//! ```text
//! vault://MOUNT/PATH[?version=N][#FIELD]
//! ```
//!
//! * KV version 1 and 2 mounts return the secret's `data` object as JSON
//!   text. keystead finds the mount and its version itself, so a reference
//!   never contains the `data/` that the KV v2 API puts after the mount.
//!   `?version=N` reads an older KV v2 version.
//! * Any other mount is a logical read, for example
//!   `vault://database/creds/app`. When the answer carries a lease, the
//!   value comes with it: the cache renews the lease, fetches new
//!   credentials before it runs out, and revokes it on close (see
//!   `revoke_on_close`).
//!
//! The provider logs in lazily (token, AppRole, JWT, Kubernetes or AWS
//! IAM), renews its token in the background, and logs in again when the
//! token can no longer be renewed, has expired, or is rejected.
//!
//! ```no_run
//! # async fn run() -> Result<(), keystead::Error> {
//! // With VAULT_ADDR and VAULT_TOKEN set, `Client::from_env` registers the
//! // provider by itself.
//! let client = keystead::Client::from_env()?;
//! let password = client.get("vault://secret/app#db_password").await?;
//! let database = client.get("vault://database/creds/app").await?;
//! # let _ = (password, database);
//! # Ok(())
//! # }
//! ```

mod auth;
mod http;
mod kv;
mod leased;
mod mount;

#[cfg(test)]
mod testing;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::config::{VaultAuthConfig, VaultConfig};
use crate::error::{Error, ErrorClass};
use crate::provider::{Fetched, Lease, Provider};
use crate::reference::Reference;

use self::auth::approle::{AppRoleLogin, Source};
use self::auth::jwt::JwtLogin;
use self::auth::kubernetes::KubernetesLogin;
use self::auth::token::{StaticToken, TokenSource};
use self::auth::{LoginMethod, Session, Token};
use self::http::{json_body, HttpTransport, TlsSettings, Transport, VaultRequest, VaultResponse};
use self::kv::KvRead;
use self::mount::{Engine, Mount, MountCache, VaultPath};

pub use self::auth::VaultAuthStatus;

/// The scheme this provider handles.
pub const SCHEME: &str = "vault";

/// Reads secrets from HashiCorp Vault or OpenBao.
///
/// Cloning is cheap: clones share one login session, mount cache and lease
/// bookkeeping. Keep a clone to read [`VaultProvider::auth_status`] after
/// handing one to [`crate::ClientBuilder::provider`].
#[derive(Clone)]
pub struct VaultProvider {
    inner: Arc<Inner>,
}

struct Inner {
    session: Arc<auth::Session>,
    mounts: MountCache,
    leases: leased::LeaseBook,
    clock: Arc<dyn Clock>,
    revoke_on_close: bool,
    ttl: Option<Duration>,
    address: String,
    namespace: Option<String>,
}

/// Reads environment variables; tests pass their own.
type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl VaultProvider {
    /// Builds the provider from `config` and the standard environment
    /// variables. Returns `None` when no address is configured anywhere, so
    /// that a process without Vault does not fail.
    ///
    /// No network call is made. Credentials (token files, secret ids, JWTs)
    /// are read at login, on the first fetch, so that a file provisioned
    /// after startup is found and a missing one is reported per reference.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when the address is not a URL, a CA or client
    /// certificate cannot be read, or the auth method needs a feature this
    /// build lacks.
    pub fn from_config(config: &VaultConfig) -> Result<Option<VaultProvider>, Error> {
        VaultProvider::from_config_with_env(config, &|name| std::env::var(name).ok())
    }

    fn from_config_with_env(config: &VaultConfig, env: EnvLookup<'_>) -> Result<Option<VaultProvider>, Error> {
        let env_either = |first: &str, second: &str| env(first).or_else(|| env(second)).filter(|value| !value.is_empty());
        let Some(address) = config
            .address
            .clone()
            .filter(|address| !address.is_empty())
            .or_else(|| env_either("VAULT_ADDR", "BAO_ADDR"))
        else {
            return Ok(None);
        };
        let namespace = config
            .namespace
            .clone()
            .or_else(|| env_either("VAULT_NAMESPACE", "BAO_NAMESPACE"))
            .filter(|namespace| !namespace.is_empty());
        let tls = TlsSettings {
            ca_cert: config
                .ca_cert
                .clone()
                .or_else(|| env_either("VAULT_CACERT", "BAO_CACERT").map(Into::into)),
            ca_path: config
                .ca_path
                .clone()
                .or_else(|| env_either("VAULT_CAPATH", "BAO_CAPATH").map(Into::into)),
            client_cert: config
                .client_cert
                .clone()
                .or_else(|| env_either("VAULT_CLIENT_CERT", "BAO_CLIENT_CERT").map(Into::into)),
            client_key: config
                .client_key
                .clone()
                .or_else(|| env_either("VAULT_CLIENT_KEY", "BAO_CLIENT_KEY").map(Into::into)),
            danger_accept_invalid_certs: config.danger_accept_invalid_certs,
        };
        if env_either("VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY").is_some() && !config.danger_accept_invalid_certs {
            tracing::warn!(
                "VAULT_SKIP_VERIFY is set and ignored: keystead always verifies Vault's certificate unless \
                 vault.danger_accept_invalid_certs is set in its configuration"
            );
        }

        let transport = HttpTransport::new(
            &address,
            namespace.as_deref(),
            &tls,
            config.connect_timeout,
            config.request_timeout,
        )?;
        let method = login_method(config, env)?;
        Ok(Some(VaultProvider::from_parts(
            Arc::new(transport),
            method,
            Arc::new(SystemClock),
            fastrand::f64,
            ProviderOptions {
                revoke_on_close: config.revoke_on_close,
                ttl: config.ttl,
                address,
                namespace,
            },
        )))
    }

    fn from_parts(
        transport: Arc<dyn Transport>,
        method: Box<dyn LoginMethod>,
        clock: Arc<dyn Clock>,
        random: fn() -> f64,
        options: ProviderOptions,
    ) -> VaultProvider {
        VaultProvider {
            inner: Arc::new(Inner {
                session: Session::new(transport, method, Arc::clone(&clock), random),
                mounts: MountCache::default(),
                leases: leased::LeaseBook::default(),
                clock,
                revoke_on_close: options.revoke_on_close,
                ttl: options.ttl,
                address: options.address,
                namespace: options.namespace,
            }),
        }
    }

    /// Returns the login session's counters and state: how many logins and
    /// token renewals happened, how long the token has left, and the last
    /// login error. Useful for a health check.
    pub fn auth_status(&self) -> VaultAuthStatus {
        self.inner.session.status()
    }
}

struct ProviderOptions {
    revoke_on_close: bool,
    ttl: Option<Duration>,
    address: String,
    namespace: Option<String>,
}

fn login_method(config: &VaultConfig, env: EnvLookup<'_>) -> Result<Box<dyn LoginMethod>, Error> {
    let mount_or = |mount: &Option<String>, default: &str| {
        mount
            .as_deref()
            .map(|mount| mount.trim_matches('/').to_owned())
            .unwrap_or_else(|| default.to_owned())
    };
    let method: Box<dyn LoginMethod> = match &config.auth {
        None | Some(VaultAuthConfig::Token) => {
            let source = if let Some(token) = &config.token {
                Some(TokenSource::Literal(secrecy::SecretString::from(token.expose().to_owned())))
            } else if let Some(file) = &config.token_file {
                Some(TokenSource::File(file.clone()))
            } else if env("VAULT_TOKEN").is_some_and(|token| !token.is_empty()) {
                Some(TokenSource::Env("VAULT_TOKEN"))
            } else if env("BAO_TOKEN").is_some_and(|token| !token.is_empty()) {
                Some(TokenSource::Env("BAO_TOKEN"))
            } else {
                None
            };
            match source {
                Some(source) => Box::new(StaticToken::new(source)),
                None => Box::new(NoCredentials),
            }
        }
        Some(VaultAuthConfig::AppRole(approle)) => {
            let role_id = match (&approle.role_id, &approle.role_id_file) {
                (Some(role_id), _) => Source::Literal(role_id.clone()),
                (None, Some(file)) => Source::File(file.clone()),
                (None, None) => return Err(Error::config("the approle method needs vault.auth.role_id or role_id_file")),
            };
            let secret_id = match (&approle.secret_id_file, &approle.secret_id_env) {
                (Some(file), _) => Some(Source::File(file.clone())),
                (None, Some(name)) => Some(Source::Env(name.clone())),
                (None, None) => None,
            };
            Box::new(AppRoleLogin::new(
                mount_or(&approle.mount, "approle"),
                role_id,
                secret_id,
                approle.secret_id_wrapped,
            ))
        }
        Some(VaultAuthConfig::Jwt(jwt)) => Box::new(JwtLogin::new(
            mount_or(&jwt.mount, "jwt"),
            jwt.role.clone(),
            jwt.jwt_file.clone(),
        )),
        Some(VaultAuthConfig::Kubernetes(kubernetes)) => Box::new(KubernetesLogin::new(
            mount_or(&kubernetes.mount, "kubernetes"),
            kubernetes.role.clone(),
            kubernetes
                .token_file
                .clone()
                .unwrap_or_else(|| crate::config::DEFAULT_KUBERNETES_TOKEN_FILE.into()),
        )),
        Some(VaultAuthConfig::Aws(aws)) => aws_login(aws, mount_or(&aws.mount, "aws"), env)?,
    };
    Ok(method)
}

#[cfg(feature = "aws")]
fn aws_login(config: &crate::config::AwsIamAuth, mount: String, env: EnvLookup<'_>) -> Result<Box<dyn LoginMethod>, Error> {
    auth::aws::AwsIamLogin::from_config(config, mount, env).map(|login| Box::new(login) as Box<dyn LoginMethod>)
}

#[cfg(not(feature = "aws"))]
fn aws_login(_: &crate::config::AwsIamAuth, _: String, _: EnvLookup<'_>) -> Result<Box<dyn LoginMethod>, Error> {
    Err(Error::config(
        "vault.auth.method = \"aws\" needs keystead built with the `aws` feature, which provides SigV4 signing",
    ))
}

/// The method used when Vault is configured but no token or login method
/// is: every fetch reports what to set.
struct NoCredentials;

#[async_trait]
impl LoginMethod for NoCredentials {
    fn name(&self) -> &'static str {
        "token"
    }

    async fn login(&self, _: &dyn Transport) -> Result<auth::Login, Error> {
        Err(Error::new(
            ErrorClass::Config,
            "no Vault credentials: set VAULT_TOKEN (or BAO_TOKEN), vault.token_file, or a [vault.auth] method",
        ))
    }
}

impl Inner {
    /// Sends a request with the current token. On a 403 that logging in
    /// again can cure, logs in once and retries once.
    async fn send(&self, method: Method, path: &str, query: &[(&str, String)], body: Option<&[u8]>) -> Result<(VaultResponse, Arc<Token>), Error> {
        let token = self.session.token().await?;
        let response = self.send_with(&token, method.clone(), path, query, body).await?;
        if response.status != 403 {
            return Ok((response, token));
        }
        match self.session.recover_from_forbidden(&token).await {
            Ok(Some(fresh)) => {
                let response = self.send_with(&fresh, method, path, query, body).await?;
                Ok((response, fresh))
            }
            Ok(None) => Ok((response, token)),
            Err(error) => Err(Error::new(
                error.class(),
                format!("Vault rejected the token, and getting a new one failed: {}", error.message()),
            )),
        }
    }

    async fn send_with(
        &self,
        token: &Token,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<VaultResponse, Error> {
        let mut request = VaultRequest::new(method, path).token(&token.secret).query(query);
        if let Some(body) = body {
            request = request.body(body);
        }
        self.session.transport().send(request).await
    }

    async fn mount_of(&self, path: &str) -> Result<Mount, Error> {
        if let Some(mount) = self.mounts.find(path, self.clock.now()) {
            return Ok(mount);
        }
        let (response, _) = self.send(Method::GET, &mount::mount_lookup_path(path), &[], None).await?;
        let mount = mount::parse_mount(&response, path)?;
        tracing::debug!(mount = %mount.path, engine = ?mount.engine, "learned a Vault mount");
        self.mounts.insert(mount.clone(), self.clock.now());
        Ok(mount)
    }

    async fn fetch_path(&self, target: &VaultPath) -> Result<Fetched, Error> {
        let mount = self.mount_of(&target.path).await?;
        match &mount.engine {
            Engine::KvV2 => {
                let api_path = mount::kv2_data_path(&mount, &target.path)?;
                let query: Vec<(&str, String)> = target.version.map(|version| ("version", version.to_string())).into_iter().collect();
                let (response, _) = self.send(Method::GET, &api_path, &query, None).await?;
                self.finish_kv(&mount, kv::read_v2(&response, &target.path, target.version))
            }
            Engine::KvV1 => {
                self.reject_version(target, "KV version 1")?;
                let (response, _) = self.send(Method::GET, &mount::encode_path(&target.path), &[], None).await?;
                self.finish_kv(&mount, kv::read_v1(&response, &target.path))
            }
            Engine::Other(kind) => {
                self.reject_version(target, kind)?;
                self.fetch_leased(&target.path).await
            }
        }
    }

    fn reject_version(&self, target: &VaultPath, engine: &str) -> Result<(), Error> {
        match target.version {
            Some(_) => Err(Error::invalid_reference(format!(
                "`?version=` works only on KV version 2 mounts, and `{}` is on a {engine} mount",
                target.path
            ))),
            None => Ok(()),
        }
    }

    fn finish_kv(&self, mount: &Mount, read: Result<KvRead, Error>) -> Result<Fetched, Error> {
        match read? {
            KvRead::Value(fetched) => Ok(*fetched),
            KvRead::LayoutChanged => {
                self.mounts.forget(&mount.path);
                Err(Error::new(
                    ErrorClass::Unavailable,
                    format!(
                        "the KV mount `{}` changed version since keystead looked it up; the next attempt looks it up again",
                        mount.path
                    ),
                ))
            }
        }
    }

    async fn fetch_leased(&self, path: &str) -> Result<Fetched, Error> {
        let (response, token) = self.send(Method::GET, &mount::encode_path(path), &[], None).await?;
        let mut fetched = leased::read(&response, path, self.revoke_on_close)?;
        let now = self.clock.now();
        if let Some(lease) = &mut fetched.lease {
            let capped = self.cap_by_token(lease.duration, lease.renewable);
            lease.duration = capped;
            fetched.valid_for = Some(capped);
            self.leases.record(&lease.id, token.generation, now + capped, now);
            tracing::info!(path, lease_id = %lease.id, ttl_s = capped.as_secs(), renewable = lease.renewable, "Vault issued a lease");
        }
        Ok(fetched)
    }

    /// Caps a lease's remaining time by its token, because Vault revokes a
    /// token's leases when the token ends (OpenBao 2.7 issues a 30 s
    /// database lease under a 3 s token without shortening it).
    ///
    /// A renewable lease is capped by the token's horizon, so the cache
    /// renews it at least once per token TTL and learns of a token change.
    /// A lease that cannot be renewed is capped only by a token end that can
    /// no longer move, because each early re-fetch would mint new
    /// credentials.
    fn cap_by_token(&self, remaining: Duration, renewable: bool) -> Duration {
        let cap = if renewable {
            self.session.token_horizon()
        } else {
            self.session.fixed_token_left()
        };
        match cap {
            Some(cap) => remaining.min(cap),
            None => remaining,
        }
    }

    async fn renew(&self, lease: &Lease, increment: Duration) -> Result<Duration, Error> {
        let created_under = self.leases.generation(&lease.id);
        if let Some(generation) = created_under {
            if generation < self.session.generation() {
                self.leases.forget(&lease.id);
                return Err(older_token_error(&lease.id));
            }
        }

        let body = json_body(&RenewBody {
            lease_id: &lease.id,
            increment: (!increment.is_zero()).then_some(increment.as_secs()),
        });
        let (response, token) = self.send(Method::PUT, "sys/leases/renew", &[], Some(&body)).await?;
        if created_under.is_some_and(|generation| generation < token.generation) {
            self.leases.forget(&lease.id);
            return Err(older_token_error(&lease.id));
        }
        let remaining = match leased::renewal(&response, &lease.id) {
            Ok(remaining) => remaining,
            Err(error) => {
                if error.class() == ErrorClass::NotFound {
                    self.leases.forget(&lease.id);
                }
                return Err(error);
            }
        };
        let capped = self.cap_by_token(remaining, true);
        let now = self.clock.now();
        self.leases.extend(&lease.id, now + capped);
        tracing::debug!(lease_id = %lease.id, ttl_s = capped.as_secs(), "renewed a Vault lease");
        Ok(capped)
    }

    async fn revoke(&self, lease: &Lease) -> Result<(), Error> {
        let body = json_body(&RevokeBody { lease_id: &lease.id });
        let (response, _) = self.send(Method::PUT, "sys/leases/revoke", &[], Some(&body)).await?;
        self.leases.forget(&lease.id);
        leased::revocation(&response, &lease.id)?;
        tracing::info!(lease_id = %lease.id, "revoked a Vault lease");
        Ok(())
    }
}

fn older_token_error(lease_id: &str) -> Error {
    Error::new(
        ErrorClass::NotFound,
        format!(
            "lease `{lease_id}` was created under an earlier Vault token; Vault revokes a token's leases when the \
             token ends, so new credentials are needed"
        ),
    )
}

#[derive(Serialize)]
struct RenewBody<'a> {
    lease_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    increment: Option<u64>,
}

#[derive(Serialize)]
struct RevokeBody<'a> {
    lease_id: &'a str,
}

#[async_trait]
impl Provider for VaultProvider {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn validate(&self, reference: &Reference) -> Result<(), Error> {
        VaultPath::parse(reference).map(|_| ())
    }

    fn default_ttl(&self) -> Option<Duration> {
        self.inner.ttl
    }

    async fn fetch(&self, reference: &Reference) -> Result<Fetched, Error> {
        let target = VaultPath::parse(reference)?;
        self.inner.fetch_path(&target).await
    }

    async fn renew(&self, lease: &Lease, increment: Duration) -> Result<Duration, Error> {
        self.inner.renew(lease, increment).await
    }

    async fn revoke(&self, lease: &Lease) -> Result<(), Error> {
        self.inner.revoke(lease).await
    }
}

impl fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.session.status();
        f.debug_struct("VaultProvider")
            .field("address", &self.inner.address)
            .field("namespace", &self.inner.namespace)
            .field("auth_method", &status.method)
            .field("revoke_on_close", &self.inner.revoke_on_close)
            .finish_non_exhaustive()
    }
}

/// Longest lease or token TTL taken from a server answer: ten years. Vault
/// caps real TTLs far below this, and a larger number (a malformed or
/// hostile answer) would overflow the deadlines computed from it.
const MAX_BACKEND_DURATION: Duration = Duration::from_secs(86_400 * 365 * 10);

/// Converts a TTL in seconds from a server answer, capped at
/// [`MAX_BACKEND_DURATION`].
pub(crate) fn backend_duration(seconds: u64) -> Duration {
    Duration::from_secs(seconds).min(MAX_BACKEND_DURATION)
}

#[cfg(test)]
mod tests;
