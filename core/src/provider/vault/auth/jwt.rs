//! JWT login with a token read from a file at each login.

use std::path::PathBuf;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::error::Error;
use crate::provider::vault::auth::{post_login, read_credential_file, Login, LoginMethod};
use crate::provider::vault::http::Transport;

/// The body of a JWT or Kubernetes login.
#[derive(Serialize)]
pub(crate) struct JwtBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<&'a str>,
    pub(crate) jwt: &'a str,
}

/// Logs in to a JWT/OIDC auth mount.
pub(crate) struct JwtLogin {
    mount: String,
    role: Option<String>,
    jwt_file: PathBuf,
}

impl JwtLogin {
    pub(crate) fn new(mount: String, role: Option<String>, jwt_file: PathBuf) -> JwtLogin {
        JwtLogin { mount, role, jwt_file }
    }
}

#[async_trait]
impl LoginMethod for JwtLogin {
    fn name(&self) -> &'static str {
        "jwt"
    }

    async fn login(&self, transport: &dyn Transport) -> Result<Login, Error> {
        let jwt = read_credential_file(&self.jwt_file, "JWT")?;
        let body = JwtBody {
            role: self.role.as_deref(),
            jwt: jwt.expose_secret(),
        };
        post_login(transport, &self.mount, &body, "JWT login").await
    }
}
