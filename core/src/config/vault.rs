//! The `[vault]` table: how to reach HashiCorp Vault or OpenBao and how to
//! log in.
//!
//! ```toml
//! [vault]
//! address = "https://vault.internal:8200"
//! namespace = "team-a"
//! ca_cert = "/etc/vault/ca.pem"
//!
//! [vault.auth]
//! method = "approle"
//! role_id_file = "/etc/vault/role-id"
//! secret_id_file = "/etc/vault/secret-id"
//! ```
//!
//! Unset keys fall back to the standard environment variables when the
//! provider is built: `VAULT_ADDR` (then `BAO_ADDR`), `VAULT_NAMESPACE`
//! (then `BAO_NAMESPACE`), `VAULT_CACERT`, `VAULT_CAPATH`,
//! `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`, and, when no login method is
//! configured, `VAULT_TOKEN` (then `BAO_TOKEN`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::config::{duration_text, optional_duration_text};

/// Time allowed to open a connection to Vault. A server on the same
/// network accepts in milliseconds; five seconds also covers a TLS
/// handshake through a busy load balancer.
pub const DEFAULT_VAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed for one request, from sending it to reading the whole
/// response. Minting database credentials makes Vault create a user in the
/// database, which can take several seconds on a loaded server. Thirty
/// seconds is half the Vault Go client's default of sixty.
pub const DEFAULT_VAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The path at which Kubernetes mounts a pod's service account token.
pub const DEFAULT_KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Vault and OpenBao settings.
#[non_exhaustive]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// Server address, for example `https://vault.internal:8200`; falls
    /// back to `VAULT_ADDR`, then `BAO_ADDR`. With no address anywhere, the
    /// `vault://` scheme is not registered.
    pub address: Option<String>,
    /// Namespace sent as `X-Vault-Namespace` on every request; falls back
    /// to `VAULT_NAMESPACE`, then `BAO_NAMESPACE`.
    pub namespace: Option<String>,
    /// A static token. Prefer `token_file` or `VAULT_TOKEN`: a token written
    /// into a config file is easy to leak with it.
    pub token: Option<SecretText>,
    /// File holding a static token. The file is read again at each login,
    /// so a token rotated by another process is picked up.
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA certificates that sign the server's certificate;
    /// falls back to `VAULT_CACERT`. When set, only these CAs (and those of
    /// `ca_path`) are trusted, as in the Vault CLI.
    pub ca_cert: Option<PathBuf>,
    /// Folder of PEM files of trusted CA certificates; falls back to
    /// `VAULT_CAPATH`.
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate for TLS client authentication; falls back to
    /// `VAULT_CLIENT_CERT`. Needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`; falls back to `VAULT_CLIENT_KEY`.
    pub client_key: Option<PathBuf>,
    /// Turns off verification of the server's TLS certificate and host
    /// name. Anyone on the network path can then read every secret and
    /// token. Only for throwaway test servers; `VAULT_SKIP_VERIFY` is
    /// ignored on purpose, so this key is the only way to turn it on.
    pub danger_accept_invalid_certs: bool,
    /// Whether the client revokes the leases it created (dynamic database
    /// credentials and the like) when it closes or replaces them. The
    /// token needs `update` on `sys/leases/revoke` for this.
    pub revoke_on_close: bool,
    /// Time allowed to open a connection.
    #[serde(with = "duration_text")]
    pub connect_timeout: Duration,
    /// Time allowed for one request, including reading the response.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// How long a KV secret is served before it is read again; unset uses
    /// the cache's TTL. Leased secrets follow their lease instead.
    #[serde(with = "optional_duration_text")]
    pub ttl: Option<Duration>,
    /// How to log in. Unset means a static token from `token`,
    /// `token_file`, `VAULT_TOKEN` or `BAO_TOKEN`.
    pub auth: Option<VaultAuthConfig>,
}

impl Default for VaultConfig {
    fn default() -> VaultConfig {
        VaultConfig {
            address: None,
            namespace: None,
            token: None,
            token_file: None,
            ca_cert: None,
            ca_path: None,
            client_cert: None,
            client_key: None,
            danger_accept_invalid_certs: false,
            revoke_on_close: true,
            connect_timeout: DEFAULT_VAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_VAULT_REQUEST_TIMEOUT,
            ttl: None,
            auth: None,
        }
    }
}

impl VaultConfig {
    /// Checks combinations that parse but cannot work, returning a message
    /// that names the offending keys.
    pub(crate) fn check(&self) -> Result<(), String> {
        let has_static_token = self.token.is_some() || self.token_file.is_some();
        match &self.auth {
            Some(VaultAuthConfig::Token) | None => {}
            Some(other) if has_static_token => {
                return Err(format!(
                    "`vault.token` and `vault.token_file` cannot be combined with `vault.auth.method = \"{}\"`; \
                     remove one of them",
                    other.method_name()
                ));
            }
            Some(_) => {}
        }
        if self.token.is_some() && self.token_file.is_some() {
            return Err("set only one of `vault.token` and `vault.token_file`".to_owned());
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err("`vault.client_cert` and `vault.client_key` must be set together".to_owned());
        }
        if self.connect_timeout.is_zero() {
            return Err("`vault.connect_timeout` must be longer than zero".to_owned());
        }
        if self.request_timeout.is_zero() {
            return Err("`vault.request_timeout` must be longer than zero".to_owned());
        }
        if let Some(auth) = &self.auth {
            auth.check()?;
        }
        Ok(())
    }
}

/// The login method keystead uses, chosen by `method`.
#[non_exhaustive]
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
pub enum VaultAuthConfig {
    /// A static token from `vault.token`, `vault.token_file`, `VAULT_TOKEN`
    /// or `BAO_TOKEN`. The token is renewed while it is renewable.
    Token,
    /// AppRole: a role id and a secret id.
    AppRole(AppRoleAuth),
    /// JWT: a token read from a file at each login, such as a projected
    /// service account token or a CI job's OIDC token.
    Jwt(JwtAuth),
    /// Kubernetes: the pod's service account token.
    Kubernetes(KubernetesAuth),
    /// AWS IAM: a signed `sts:GetCallerIdentity` request, which Vault
    /// forwards to AWS to learn who the caller is. Needs the `aws` feature.
    Aws(AwsIamAuth),
}

impl VaultAuthConfig {
    /// Returns the `method` value that selects this variant.
    pub fn method_name(&self) -> &'static str {
        match self {
            VaultAuthConfig::Token => "token",
            VaultAuthConfig::AppRole(_) => "approle",
            VaultAuthConfig::Jwt(_) => "jwt",
            VaultAuthConfig::Kubernetes(_) => "kubernetes",
            VaultAuthConfig::Aws(_) => "aws",
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            VaultAuthConfig::Token => Ok(()),
            VaultAuthConfig::AppRole(approle) => approle.check(),
            VaultAuthConfig::Jwt(jwt) => check_mount("jwt", &jwt.mount),
            VaultAuthConfig::Kubernetes(kubernetes) => {
                if kubernetes.role.is_empty() {
                    return Err("`vault.auth.role` must not be empty for the kubernetes method".to_owned());
                }
                check_mount("kubernetes", &kubernetes.mount)
            }
            VaultAuthConfig::Aws(aws) => check_mount("aws", &aws.mount),
        }
    }
}

fn check_mount(method: &str, mount: &Option<String>) -> Result<(), String> {
    match mount {
        Some(mount) if mount.trim_matches('/').is_empty() => Err(format!(
            "`vault.auth.mount` must not be empty for the {method} method; leave it out to use `{method}`"
        )),
        _ => Ok(()),
    }
}

/// AppRole login settings.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleAuth {
    /// Path the method is mounted at, without `auth/`; default `approle`.
    pub mount: Option<String>,
    /// The role id. Not secret on its own, but set only one of `role_id`
    /// and `role_id_file`.
    pub role_id: Option<String>,
    /// File holding the role id, read at each login.
    pub role_id_file: Option<PathBuf>,
    /// File holding the secret id (or, with `secret_id_wrapped`, a
    /// response-wrapping token that contains it), read at each login.
    pub secret_id_file: Option<PathBuf>,
    /// Environment variable holding the secret id (or wrapping token).
    pub secret_id_env: Option<String>,
    /// Whether `secret_id_file` or `secret_id_env` contains a response-wrapping
    /// token, which keystead unwraps through `sys/wrapping/unwrap`. A
    /// wrapping token works once, so the unwrapped secret id is kept in
    /// memory for later logins until the file or variable changes.
    #[serde(default)]
    pub secret_id_wrapped: bool,
}

impl AppRoleAuth {
    /// AppRole settings with a role id and a secret id file.
    pub fn new(role_id: impl Into<String>, secret_id_file: impl Into<PathBuf>) -> AppRoleAuth {
        AppRoleAuth {
            role_id: Some(role_id.into()),
            secret_id_file: Some(secret_id_file.into()),
            ..AppRoleAuth::default()
        }
    }

    fn check(&self) -> Result<(), String> {
        check_mount("approle", &self.mount)?;
        match (&self.role_id, &self.role_id_file) {
            (Some(_), Some(_)) => {
                return Err("set only one of `vault.auth.role_id` and `vault.auth.role_id_file`".to_owned())
            }
            (None, None) => {
                return Err("the approle method needs `vault.auth.role_id` or `vault.auth.role_id_file`".to_owned())
            }
            _ => {}
        }
        if self.secret_id_file.is_some() && self.secret_id_env.is_some() {
            return Err("set only one of `vault.auth.secret_id_file` and `vault.auth.secret_id_env`".to_owned());
        }
        if self.secret_id_wrapped && self.secret_id_file.is_none() && self.secret_id_env.is_none() {
            return Err(
                "`vault.auth.secret_id_wrapped` needs `vault.auth.secret_id_file` or `vault.auth.secret_id_env`"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// JWT login settings.
#[non_exhaustive]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtAuth {
    /// Path the method is mounted at, without `auth/`; default `jwt`.
    pub mount: Option<String>,
    /// The role to log in as; unset uses the mount's `default_role`.
    pub role: Option<String>,
    /// File holding the JWT, read again at each login because issuers
    /// rotate it (a projected token is replaced before it expires).
    pub jwt_file: PathBuf,
}

impl JwtAuth {
    /// JWT settings reading the token from `jwt_file`.
    pub fn new(jwt_file: impl Into<PathBuf>) -> JwtAuth {
        JwtAuth {
            mount: None,
            role: None,
            jwt_file: jwt_file.into(),
        }
    }
}

/// Kubernetes login settings.
#[non_exhaustive]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAuth {
    /// Path the method is mounted at, without `auth/`; default `kubernetes`.
    pub mount: Option<String>,
    /// The role to log in as.
    pub role: String,
    /// File holding the service account token, read at each login;
    /// default [`DEFAULT_KUBERNETES_TOKEN_FILE`].
    pub token_file: Option<PathBuf>,
}

impl KubernetesAuth {
    /// Kubernetes settings for `role` with the default token file.
    pub fn new(role: impl Into<String>) -> KubernetesAuth {
        KubernetesAuth {
            mount: None,
            role: role.into(),
            token_file: None,
        }
    }
}

/// AWS IAM login settings. Credentials come from the AWS credential chain
/// that the `aws-sm://` provider uses (environment, profile, web identity,
/// container and instance metadata), configured by the `[aws]` table.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsIamAuth {
    /// Path the method is mounted at, without `auth/`; default `aws`.
    pub mount: Option<String>,
    /// The role to log in as; unset uses the role named after the caller's
    /// IAM principal, as Vault does.
    pub role: Option<String>,
    /// Region the STS request is signed for; default `us-east-1`, which
    /// matches the global endpoint `https://sts.amazonaws.com`.
    pub region: Option<String>,
    /// STS endpoint the signed request names; default
    /// `https://sts.amazonaws.com`. Set it when Vault's `sts_endpoint` is a
    /// regional one.
    pub sts_endpoint_url: Option<String>,
    /// Value of the signed `X-Vault-AWS-IAM-Server-ID` header, when the
    /// Vault mount sets `iam_server_id_header_value` against replay.
    pub server_id: Option<String>,
}

/// A secret string from a configuration file: kept in zeroizing storage
/// and printed as `[REDACTED]`.
#[derive(Clone)]
pub struct SecretText(SecretString);

impl SecretText {
    /// Wraps text.
    pub fn new(text: impl Into<String>) -> SecretText {
        SecretText(SecretString::from(text.into()))
    }

    /// Reveals the text.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SecretText, D::Error> {
        String::deserialize(deserializer).map(SecretText::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ErrorClass;

    #[test]
    fn vault_defaults_revoke_on_close_and_timeouts() {
        let config = Config::from_toml("[vault]\naddress = \"http://127.0.0.1:8200\"\n", "k.toml").unwrap();
        assert_eq!(config.vault.address.as_deref(), Some("http://127.0.0.1:8200"));
        assert!(config.vault.revoke_on_close);
        assert_eq!(config.vault.connect_timeout, DEFAULT_VAULT_CONNECT_TIMEOUT);
        assert_eq!(config.vault.request_timeout, DEFAULT_VAULT_REQUEST_TIMEOUT);
        assert!(config.vault.auth.is_none());
    }

    #[test]
    fn approle_table_parses() {
        let text = "[vault]\nnamespace = \"ns1\"\n[vault.auth]\nmethod = \"approle\"\nrole_id = \"r-1\"\n\
                    secret_id_file = \"/run/secret-id\"\nsecret_id_wrapped = true\n";
        let config = Config::from_toml(text, "k.toml").unwrap();
        let Some(VaultAuthConfig::AppRole(approle)) = &config.vault.auth else {
            panic!("expected approle, got {:?}", config.vault.auth);
        };
        assert_eq!(approle.role_id.as_deref(), Some("r-1"));
        assert_eq!(approle.secret_id_file, Some(PathBuf::from("/run/secret-id")));
        assert!(approle.secret_id_wrapped);
        assert_eq!(config.vault.namespace.as_deref(), Some("ns1"));
    }

    #[test]
    fn unknown_method_is_named() {
        let error = Config::from_toml("[vault.auth]\nmethod = \"aproll\"\n", "k.toml").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("aproll"), "{}", error.message());
    }

    #[test]
    fn key_of_another_method_is_rejected() {
        let error = Config::from_toml(
            "[vault.auth]\nmethod = \"jwt\"\njwt_file = \"/t\"\nsecret_id_file = \"/s\"\n",
            "k.toml",
        )
        .unwrap_err();
        assert!(error.message().contains("secret_id_file"), "{}", error.message());
    }

    #[test]
    fn static_token_with_login_method_is_rejected() {
        let error = Config::from_toml(
            "[vault]\ntoken_file = \"/t\"\n[vault.auth]\nmethod = \"kubernetes\"\nrole = \"app\"\n",
            "k.toml",
        )
        .unwrap_err();
        assert!(error.message().contains("vault.token_file"), "{}", error.message());
    }

    #[test]
    fn approle_without_role_id_is_rejected() {
        let error = Config::from_toml("[vault.auth]\nmethod = \"approle\"\nsecret_id_env = \"S\"\n", "k.toml")
            .unwrap_err();
        assert!(error.message().contains("role_id"), "{}", error.message());
    }

    #[test]
    fn client_cert_needs_key() {
        let error = Config::from_toml("[vault]\nclient_cert = \"/c.pem\"\n", "k.toml").unwrap_err();
        assert!(error.message().contains("vault.client_key"), "{}", error.message());
    }

    #[test]
    fn literal_token_is_redacted_in_debug() {
        let config = Config::from_toml("[vault]\ntoken = \"s.canary-token-8d1f\"\n", "k.toml").unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("canary-token-8d1f"), "{debug}");
        assert_eq!(config.vault.token.as_ref().map(SecretText::expose), Some("s.canary-token-8d1f"));
    }
}
