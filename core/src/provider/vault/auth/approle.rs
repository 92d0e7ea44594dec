//! AppRole login, including secret ids delivered response-wrapped.

use std::path::PathBuf;

use async_trait::async_trait;
use parking_lot::Mutex;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorClass};
use crate::provider::vault::auth::{
    post_login, read_credential_env, read_credential_file, Login, LoginMethod,
};
use crate::provider::vault::http::{parse_json, Transport, VaultRequest};

/// The source of a credential.
pub(crate) enum Source {
    Literal(String),
    File(PathBuf),
    Env(String),
}

impl Source {
    fn read(&self, what: &str) -> Result<SecretString, Error> {
        match self {
            Source::Literal(text) => Ok(SecretString::from(text.clone())),
            Source::File(path) => read_credential_file(path, what),
            Source::Env(name) => read_credential_env(name, what),
        }
    }
}

/// Logs in with a role id and an optional secret id.
pub(crate) struct AppRoleLogin {
    mount: String,
    role_id: Source,
    secret_id: Option<Source>,
    wrapped: bool,
    /// The secret id unwrapped from the wrapping token with this SHA-256.
    /// A wrapping token works once, so later logins reuse the secret id
    /// until a different wrapping token is delivered.
    unwrapped: Mutex<Option<([u8; 32], SecretString)>>,
}

impl AppRoleLogin {
    pub(crate) fn new(mount: String, role_id: Source, secret_id: Option<Source>, wrapped: bool) -> AppRoleLogin {
        AppRoleLogin {
            mount,
            role_id,
            secret_id,
            wrapped,
            unwrapped: Mutex::new(None),
        }
    }

    async fn secret_id(&self, transport: &dyn Transport) -> Result<Option<SecretString>, Error> {
        let Some(source) = &self.secret_id else {
            return Ok(None);
        };
        if !self.wrapped {
            return source.read("AppRole secret id").map(Some);
        }

        let wrapping_token = source.read("AppRole wrapped secret id")?;
        let fingerprint: [u8; 32] = Sha256::digest(wrapping_token.expose_secret().as_bytes()).into();
        if let Some((seen, secret_id)) = &*self.unwrapped.lock() {
            if *seen == fingerprint {
                return Ok(Some(secret_id.clone()));
            }
        }
        let secret_id = unwrap_secret_id(transport, &wrapping_token).await?;
        *self.unwrapped.lock() = Some((fingerprint, secret_id.clone()));
        Ok(Some(secret_id))
    }
}

#[derive(Serialize)]
struct AppRoleBody<'a> {
    role_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_id: Option<&'a str>,
}

#[async_trait]
impl LoginMethod for AppRoleLogin {
    fn name(&self) -> &'static str {
        "approle"
    }

    async fn login(&self, transport: &dyn Transport) -> Result<Login, Error> {
        let role_id = self.role_id.read("AppRole role id")?;
        let secret_id = self.secret_id(transport).await?;
        let body = AppRoleBody {
            role_id: role_id.expose_secret(),
            secret_id: secret_id.as_ref().map(|secret_id| secret_id.expose_secret()),
        };
        let result = post_login(transport, &self.mount, &body, "AppRole login").await;
        if result.as_ref().is_err_and(|error| error.class() == ErrorClass::AccessDenied) {
            // The unwrapped secret id may have run out of uses or expired;
            // the next login unwraps whatever token is delivered by then.
            *self.unwrapped.lock() = None;
        }
        result
    }
}

/// Unwraps a response-wrapped secret id through `sys/wrapping/unwrap`,
/// authenticating with the wrapping token itself.
async fn unwrap_secret_id(transport: &dyn Transport, wrapping_token: &SecretString) -> Result<SecretString, Error> {
    let response = transport
        .send(VaultRequest::new(Method::POST, "sys/wrapping/unwrap").token(wrapping_token))
        .await?;
    if !response.is_success() {
        // Vault returns 400 for an unknown, expired or already used
        // wrapping token, and may return 403 for a used one.
        let class = match response.status {
            400 | 403 | 404 => ErrorClass::AccessDenied,
            _ => response.error("").class(),
        };
        return Err(response.error_with_class(
            class,
            "unwrapping the AppRole secret id (a wrapping token works once and expires; deliver a new one)",
        ));
    }
    #[derive(Deserialize)]
    struct Unwrapped<'a> {
        #[serde(borrow)]
        data: Option<UnwrappedData<'a>>,
    }
    #[derive(Deserialize)]
    struct UnwrappedData<'a> {
        #[serde(borrow)]
        secret_id: Option<&'a str>,
    }
    let unwrapped: Unwrapped<'_> = parse_json(&response.body, "sys/wrapping/unwrap")?;
    let secret_id = unwrapped
        .data
        .and_then(|data| data.secret_id)
        .filter(|secret_id| !secret_id.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorClass::Config,
                "the unwrapped response holds no secret_id; the wrapping token wraps something else",
            )
        })?;
    Ok(SecretString::from(secret_id.to_owned()))
}
