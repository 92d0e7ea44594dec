//! Request checks and routing.
//!
//! Every request passes, in order: no `X-Forwarded-For` header (400), the
//! token (403), GET only (405), and the body-size limit (413). `/ping` is
//! exempt from the first two, as on the AWS agent, so that health checks
//! need no token. `/metrics` needs no token, because it reports only
//! counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::HeaderName;
use hyper::{Method, Request, Response, StatusCode};
use keystead::{Client, Error, ErrorClass, Reference, Secret};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::agent::aws;
use crate::agent::config::AgentSettings;
use crate::agent::prometheus;
use crate::agent::query::{self, Query};
use crate::agent::response::{self, Body};
use crate::agent::token::TokenCheck;

/// Status codes the request counters track one by one; others are counted
/// together.
pub(crate) const COUNTED_STATUSES: [u16; 12] = [200, 400, 403, 404, 405, 413, 429, 431, 500, 503, 504, 0];

/// Everything a request handler needs.
pub(crate) struct AgentState {
    pub(crate) client: Client,
    pub(crate) token: TokenCheck,
    pub(crate) token_headers: Vec<HeaderName>,
    pub(crate) path_prefix: String,
    /// Schemes `/v1/secret?ref=` serves, lowercase.
    pub(crate) allowed_schemes: Vec<String>,
    pub(crate) request_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) counters: Counters,
}

/// Request and connection counters for `/metrics`.
#[derive(Default)]
pub(crate) struct Counters {
    responses: [AtomicU64; COUNTED_STATUSES.len()],
    pub(crate) open_connections: AtomicU64,
    pub(crate) rejected_connections: AtomicU64,
}

impl Counters {
    pub(crate) fn count_response(&self, status: StatusCode) {
        let index = COUNTED_STATUSES
            .iter()
            .position(|counted| *counted == status.as_u16())
            .unwrap_or(COUNTED_STATUSES.len() - 1);
        self.responses[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Responses per status; status 0 stands for every status not listed.
    pub(crate) fn responses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        COUNTED_STATUSES
            .iter()
            .zip(&self.responses)
            .map(|(status, count)| (*status, count.load(Ordering::Relaxed)))
    }
}

impl AgentState {
    pub(crate) fn new(client: Client, token: TokenCheck, settings: &AgentSettings) -> Result<AgentState, String> {
        let token_headers = settings
            .token_headers
            .iter()
            .map(|name| HeaderName::try_from(name.as_str()).map_err(|_| format!("`{name}` is not a valid header name")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AgentState {
            client,
            token,
            token_headers,
            path_prefix: settings.path_prefix.clone(),
            allowed_schemes: settings.allowed_schemes.clone(),
            request_timeout: settings.request_timeout,
            max_body_bytes: settings.max_body_bytes,
            counters: Counters::default(),
        })
    }

    /// Reads a reference from the cache, or loads it now when `refresh`.
    pub(crate) async fn read(&self, reference: &str, refresh: bool) -> Result<Secret, Error> {
        if refresh {
            self.client.refresh(reference).await
        } else {
            self.client.get(reference).await
        }
    }

    fn has_token(&self, request: &Request<Incoming>) -> bool {
        self.token_headers.iter().any(|name| {
            request
                .headers()
                .get_all(name)
                .iter()
                .any(|value| self.token.matches(value.as_bytes()))
        })
    }
}

/// Handles one request. Never fails, because every problem becomes an HTTP
/// response.
pub(crate) async fn handle(state: &AgentState, request: Request<Incoming>) -> Response<Body> {
    let response = match tokio::time::timeout(state.request_timeout, route(state, request)).await {
        Ok(response) => response,
        Err(_) => response::aws_error(
            StatusCode::GATEWAY_TIMEOUT,
            "RequestTimeout",
            &format!("no answer within {}", humantime::format_duration(state.request_timeout)),
        ),
    };
    state.counters.count_response(response.status());
    response
}

async fn route(state: &AgentState, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let is_ping = path == "/ping";

    if !is_ping && request.headers().contains_key("x-forwarded-for") {
        tracing::warn!(path = %path, "rejected a request with an X-Forwarded-For header");
        return response::aws_error(
            StatusCode::BAD_REQUEST,
            "ForwardedRequestRejected",
            "requests with an X-Forwarded-For header are rejected: the agent serves local processes only",
        );
    }
    if !is_ping && path != "/metrics" && !state.has_token(&request) {
        tracing::warn!(path = %path, "rejected a request without a valid token");
        return response::aws_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the request has no valid token header (X-Aws-Parameters-Secrets-Token)",
        );
    }
    if request.method() != Method::GET {
        return response::method_not_allowed();
    }

    let query = match Query::parse(request.uri().query()) {
        Ok(query) => query,
        Err(problem) => return response::aws_error(StatusCode::BAD_REQUEST, "InvalidParameterException", &problem),
    };
    if let Err(response) = check_body(state, request).await {
        return response;
    }

    match path.as_str() {
        "/ping" => response::text(StatusCode::OK, "healthy", "text/plain"),
        "/metrics" => prometheus::render(state),
        "/secretsmanager/get" => aws::secret_by_query(state, &query).await,
        "/systemsmanager/parameters/get" => aws::parameter(state, &query).await,
        _ if is_native(&path, &query) => native(state, &query).await,
        _ => match path.strip_prefix(state.path_prefix.as_str()) {
            Some(rest) => match percent_decode_str(rest).decode_utf8() {
                Ok(id) => aws::secret_by_path(state, &id, &query).await,
                Err(_) => response::aws_error(StatusCode::BAD_REQUEST, "InvalidParameterException", "the secret id is not UTF-8 once decoded"),
            },
            None => response::aws_error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "unknown path; the agent serves /secretsmanager/get, /systemsmanager/parameters/get, /v1/secret?ref=, /ping and /metrics",
            ),
        },
    }
}

/// Rejects bodies above the limit. A GET normally has none, so the common
/// case costs one check.
async fn check_body(state: &AgentState, request: Request<Incoming>) -> Result<(), Response<Body>> {
    let body = request.into_body();
    if body.is_end_stream() {
        return Ok(());
    }
    let too_large = || {
        response::aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &format!("the request body is larger than {} bytes", state.max_body_bytes),
        )
    };
    if body.size_hint().lower() > state.max_body_bytes as u64 {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, state.max_body_bytes).collect().await {
        Ok(_) => Ok(()),
        Err(_) => Err(too_large()),
    }
}

/// `/v1/secret?ref=...` is keystead's own form. Without `ref` the path is
/// the Secrets Manager Agent's path form for a secret named `secret`.
fn is_native(path: &str, query: &Query) -> bool {
    path == "/v1/secret" && query.get("ref").is_some()
}

/// `GET /v1/secret?ref=REFERENCE[&refreshNow=true]`: the value and its
/// metadata, as `keystead get --json` prints them.
async fn native(state: &AgentState, query: &Query) -> Response<Body> {
    if let Some(name) = query.unknown(&["ref", "refreshNow"]) {
        return native_error(None, StatusCode::BAD_REQUEST, "invalid-reference", &format!("unknown query parameter: {name}"));
    }
    let reference = query.get("ref").unwrap_or_default();
    let refresh = match query::flag("refreshNow", query.get("refreshNow")) {
        Ok(refresh) => refresh,
        Err(problem) => return native_error(Some(reference), StatusCode::BAD_REQUEST, "invalid-reference", &problem),
    };

    if let Some(rejected) = reject_scheme(state, reference) {
        return rejected;
    }

    match state.read(reference, refresh).await {
        Ok(secret) => {
            let mut body = Zeroizing::new(Vec::with_capacity(secret.expose_bytes().len().saturating_mul(6).saturating_add(2048)));
            match crate::get::write_json(&mut *body, reference, &secret) {
                Ok(()) => response::secret_json(StatusCode::OK, body),
                Err(_) => native_error(Some(reference), StatusCode::INTERNAL_SERVER_ERROR, "internal", "cannot encode the answer"),
            }
        }
        Err(error) => native_error(Some(reference), native_status(error.class()), error.class().as_str(), error.message()),
    }
}

/// Returns a 403 response when the reference's scheme is not allowed. An invalid
/// reference passes here and gets its own error from the read.
fn reject_scheme(state: &AgentState, reference: &str) -> Option<Response<Body>> {
    let parsed = Reference::parse(reference).ok()?;
    let scheme = parsed.scheme();
    if state.allowed_schemes.iter().any(|allowed| allowed == scheme) {
        return None;
    }
    let message = format!(
        "the agent does not serve {scheme}:// references; allow the scheme with `allowed_schemes` in the [agent] table or with --allow-scheme {scheme}"
    );
    Some(native_error(Some(reference), StatusCode::FORBIDDEN, ErrorClass::AccessDenied.as_str(), &message))
}

fn native_status(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::InvalidReference | ErrorClass::Config | ErrorClass::NotText | ErrorClass::InvalidJson => {
            StatusCode::BAD_REQUEST
        }
        ErrorClass::NotFound | ErrorClass::FieldNotFound | ErrorClass::SecretDeleted => StatusCode::NOT_FOUND,
        ErrorClass::AccessDenied | ErrorClass::DecryptionFailed => StatusCode::FORBIDDEN,
        ErrorClass::Unavailable | ErrorClass::Closed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// keystead's error shape: `{"error": {"class", "message", "reference"}}`,
/// with the class names of the library.
fn native_error(reference: Option<&str>, status: StatusCode, class: &str, message: &str) -> Response<Body> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        error: Fields<'a>,
    }
    #[derive(Serialize)]
    struct Fields<'a> {
        class: &'a str,
        message: &'a str,
        reference: Option<&'a str>,
    }
    let body = Envelope {
        error: Fields {
            class,
            message,
            reference,
        },
    };
    response::json(status, response::to_json(&body))
}
