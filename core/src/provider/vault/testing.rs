//! A scripted in-memory Vault for unit tests: each request is recorded and
//! a closure builds its response, so tests run under tokio's paused clock with no
//! network.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use secrecy::ExposeSecret;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::provider::vault::http::{Transport, VaultRequest, VaultResponse};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) token: Option<String>,
    pub(crate) body: Option<serde_json::Value>,
    pub(crate) at: Instant,
}

impl Seen {
    /// `METHOD path`, for compact assertions.
    pub(crate) fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

type Handler = Box<dyn FnMut(&Seen) -> Result<VaultResponse, Error> + Send>;

/// The scripted server.
pub(crate) struct Scripted {
    handler: Mutex<Handler>,
    seen: Mutex<Vec<Seen>>,
}

impl Scripted {
    pub(crate) fn new(handler: impl FnMut(&Seen) -> Result<VaultResponse, Error> + Send + 'static) -> Arc<Scripted> {
        Arc::new(Scripted {
            handler: Mutex::new(Box::new(handler)),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// Returns every request so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// `METHOD path` of every request so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.seen.lock().iter().map(Seen::line).collect()
    }

    /// Requests to `path`.
    pub(crate) fn count(&self, path: &str) -> usize {
        self.seen.lock().iter().filter(|seen| seen.path == path).count()
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, request: VaultRequest<'_>) -> Result<VaultResponse, Error> {
        let seen = Seen {
            method: request.method.to_string(),
            path: request.path.to_owned(),
            query: request
                .query
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
            token: request.token.map(|token| token.expose_secret().to_owned()),
            body: request.body.map(|body| serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)),
            at: Instant::now(),
        };
        self.seen.lock().push(seen.clone());
        // Lets other tasks run between requests, as a network round trip
        // would.
        tokio::task::yield_now().await;
        (self.handler.lock())(&seen)
    }
}

/// Builds a response with a JSON body.
pub(crate) fn reply(status: u16, body: serde_json::Value) -> Result<VaultResponse, Error> {
    Ok(VaultResponse {
        status,
        body: Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default()),
    })
}

/// Builds a login response.
pub(crate) fn login_reply(token: &str, ttl: u64, renewable: bool) -> Result<VaultResponse, Error> {
    reply(
        200,
        serde_json::json!({
            "auth": {"client_token": token, "lease_duration": ttl, "renewable": renewable}
        }),
    )
}

/// Returns a draw in the middle of the jitter range, so delays are exact.
pub(crate) fn half() -> f64 {
    0.5
}
