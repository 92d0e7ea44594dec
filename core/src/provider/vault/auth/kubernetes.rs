//! Kubernetes login with the pod's service account token.

use std::path::PathBuf;

use async_trait::async_trait;
use secrecy::ExposeSecret;

use crate::error::Error;
use crate::provider::vault::auth::jwt::JwtBody;
use crate::provider::vault::auth::{post_login, read_credential_file, Login, LoginMethod};
use crate::provider::vault::http::Transport;

/// Logs in to a Kubernetes auth mount. Vault checks the token with the
/// cluster's TokenReview API.
pub(crate) struct KubernetesLogin {
    mount: String,
    role: String,
    token_file: PathBuf,
}

impl KubernetesLogin {
    pub(crate) fn new(mount: String, role: String, token_file: PathBuf) -> KubernetesLogin {
        KubernetesLogin {
            mount,
            role,
            token_file,
        }
    }
}

#[async_trait]
impl LoginMethod for KubernetesLogin {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn login(&self, transport: &dyn Transport) -> Result<Login, Error> {
        // Projected service account tokens are replaced on disk before they
        // expire, so the file is read at every login.
        let jwt = read_credential_file(&self.token_file, "Kubernetes service account token")?;
        let body = JwtBody {
            role: Some(&self.role),
            jwt: jwt.expose_secret(),
        };
        post_login(transport, &self.mount, &body, "Kubernetes login").await
    }
}
