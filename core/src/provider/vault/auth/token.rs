//! Static tokens: from configuration, a file, or `VAULT_TOKEN`/`BAO_TOKEN`.

use std::path::PathBuf;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::SecretString;

use crate::error::Error;
use crate::provider::vault::auth::{read_credential_env, read_credential_file, token_info, Login, LoginMethod};
use crate::provider::vault::http::{Transport, VaultRequest};

/// The source of a static token.
pub(crate) enum TokenSource {
    /// `vault.token` in the configuration.
    Literal(SecretString),
    /// A file, read again at each login so that a token rotated by another
    /// process (Vault Agent's sink, an init container) is picked up.
    File(PathBuf),
    /// An environment variable, read again at each login.
    Env(&'static str),
}

/// "Logs in" with a static token: reads it and looks it up to learn its TTL
/// and whether it is renewable.
pub(crate) struct StaticToken {
    source: TokenSource,
}

impl StaticToken {
    pub(crate) fn new(source: TokenSource) -> StaticToken {
        StaticToken { source }
    }

    fn read(&self) -> Result<SecretString, Error> {
        match &self.source {
            TokenSource::Literal(token) => Ok(token.clone()),
            TokenSource::File(path) => read_credential_file(path, "Vault token"),
            TokenSource::Env(name) => read_credential_env(name, "Vault token"),
        }
    }

    fn describe(&self) -> String {
        match &self.source {
            TokenSource::Literal(_) => "vault.token".to_owned(),
            TokenSource::File(path) => path.display().to_string(),
            TokenSource::Env(name) => (*name).to_owned(),
        }
    }
}

#[async_trait]
impl LoginMethod for StaticToken {
    fn name(&self) -> &'static str {
        "token"
    }

    async fn login(&self, transport: &dyn Transport) -> Result<Login, Error> {
        let token = self.read()?;
        let response = transport
            .send(VaultRequest::new(Method::GET, "auth/token/lookup-self").token(&token))
            .await?;
        // The lookup needs `read` on auth/token/lookup-self, which Vault's
        // default policy grants to every token.
        let info = token_info(&response).map_err(|error| {
            Error::new(
                error.class(),
                format!("the Vault token from {} was rejected: {}", self.describe(), error.message()),
            )
        })?;
        Ok(Login {
            token,
            ttl: crate::provider::vault::backend_duration(info.ttl),
            renewable: info.renewable,
        })
    }
}
