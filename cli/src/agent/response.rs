//! Building the agent's HTTP responses.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use zeroize::Zeroizing;

/// The body type of every response.
pub(crate) type Body = Full<Bytes>;

const JSON: &str = "application/json";

/// Builds a JSON response that contains a secret value. The bytes are
/// wiped when the body is dropped after sending.
// Limitation: hyper may copy a small body into its connection write buffer
// before sending; that copy is reused for later responses rather than wiped.
pub(crate) fn secret_json(status: StatusCode, body: Zeroizing<Vec<u8>>) -> Response<Body> {
    let bytes = Bytes::from_owner(WipedBytes(body));
    with_type(status, bytes, JSON)
}

/// Builds a JSON response without secrets.
pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    with_type(status, Bytes::from(body), JSON)
}

/// Builds a plain-text response.
pub(crate) fn text(status: StatusCode, body: &'static str, content_type: &'static str) -> Response<Body> {
    with_type(status, Bytes::from_static(body.as_bytes()), content_type)
}

/// Builds an error in the AWS JSON error shape, `{"__type": CODE, "message":
/// TEXT}`. The body is built by a JSON serializer, so quotes, backslashes
/// or control characters in `message` cannot break it.
pub(crate) fn aws_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    #[derive(Serialize)]
    struct AwsError<'a> {
        #[serde(rename = "__type")]
        code: &'a str,
        message: &'a str,
    }
    json(status, to_json(&AwsError { code, message }))
}

/// Builds the 405 response, which names the one allowed method.
pub(crate) fn method_not_allowed() -> Response<Body> {
    let mut response = aws_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "only GET requests are accepted",
    );
    response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
    response
}

/// Serializes a value that contains no secret.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // serde_json fails only on maps with non-string keys or failing
    // Serialize impls, which these structs do not have. The empty object
    // keeps the body valid JSON regardless.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

struct WipedBytes(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for WipedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
