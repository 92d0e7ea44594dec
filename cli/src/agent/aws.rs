//! The paths and response shapes of the AWS Parameters and Secrets Lambda
//! extension and the AWS Secrets Manager Agent, served from the keystead
//! cache.
//!
//! * `GET /secretsmanager/get?secretId=ID[&versionId=V|&versionStage=S][&refreshNow=true]`
//! * `GET /v1/ID[?versionId=V|?versionStage=S][&refreshNow=true]` (the agent's path form)
//! * `GET /systemsmanager/parameters/get?name=NAME[&version=N|&label=L][&withDecryption=true]`
//!
//! Errors use the services' JSON error shape and codes with status 400 for
//! modeled errors, as AWS itself answers them (moto answers 404 for a
//! missing secret; callers written against AWS expect 400).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hyper::{Response, StatusCode};
use keystead::{Error, ErrorClass, Reference, Secret};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::agent::query::{self, Query};
use crate::agent::response::{self, Body};
use crate::agent::routes::AgentState;

const SECRET_QUERY_NAMES: [&str; 4] = ["secretId", "versionId", "versionStage", "refreshNow"];
const PATH_QUERY_NAMES: [&str; 3] = ["versionId", "versionStage", "refreshNow"];
const PARAMETER_QUERY_NAMES: [&str; 5] = ["name", "version", "label", "withDecryption", "refreshNow"];

/// `GET /secretsmanager/get?secretId=...`.
pub(crate) async fn secret_by_query(state: &AgentState, query: &Query) -> Response<Body> {
    if let Some(response) = reject_unknown(query, &SECRET_QUERY_NAMES, "InvalidParameterException") {
        return response;
    }
    match query.get("secretId") {
        Some(id) if !id.is_empty() => secret(state, id, query).await,
        _ => response::aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "the secretId query parameter is missing",
        ),
    }
}

/// `GET /v1/SECRET_ID`: `id` is the percent-decoded rest of the path.
pub(crate) async fn secret_by_path(state: &AgentState, id: &str, query: &Query) -> Response<Body> {
    if let Some(response) = reject_unknown(query, &PATH_QUERY_NAMES, "InvalidParameterException") {
        return response;
    }
    if id.is_empty() {
        return response::aws_error(StatusCode::BAD_REQUEST, "InvalidParameterException", "the secret id is missing from the path");
    }
    secret(state, id, query).await
}

async fn secret(state: &AgentState, id: &str, query: &Query) -> Response<Body> {
    let refresh = match query::flag("refreshNow", query.get("refreshNow")) {
        Ok(refresh) => refresh,
        Err(problem) => return response::aws_error(StatusCode::BAD_REQUEST, "InvalidParameterException", &problem),
    };
    let mut selectors = Vec::new();
    if let Some(version_id) = query.get("versionId") {
        selectors.push(("version_id", version_id));
    }
    if let Some(stage) = query.get("versionStage") {
        selectors.push(("version_stage", stage));
    }
    let reference = Reference::from_parts("aws-sm", id, &selectors).to_string();

    match state.read(&reference, refresh).await {
        Ok(secret) => secret_value_response(&secret, id),
        Err(error) => secrets_manager_error(&error),
    }
}

/// `GET /systemsmanager/parameters/get?name=...`.
///
/// SecureString values are always returned decrypted, whatever the value
/// of `withDecryption`, because keystead reads parameters with decryption
/// on.
pub(crate) async fn parameter(state: &AgentState, query: &Query) -> Response<Body> {
    if let Some(response) = reject_unknown(query, &PARAMETER_QUERY_NAMES, "ValidationException") {
        return response;
    }
    let request = match ParameterRequest::from_query(query) {
        Ok(request) => request,
        Err(problem) => return response::aws_error(StatusCode::BAD_REQUEST, "ValidationException", &problem),
    };
    let selector: Vec<(&str, &str)> = request.selector.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let reference = Reference::from_parts("aws-ssm", &request.name, &selector).to_string();

    match state.read(&reference, request.refresh).await {
        Ok(secret) => parameter_response(&secret, &request),
        Err(error) => parameter_error(&error),
    }
}

fn reject_unknown(query: &Query, allowed: &[&str], code: &str) -> Option<Response<Body>> {
    query.unknown(allowed).map(|name| {
        let message = if name == "roleArn" {
            "roleArn is not supported: the agent reads every secret with its own credentials".to_owned()
        } else {
            format!("unknown query parameter: {name}")
        };
        response::aws_error(StatusCode::BAD_REQUEST, code, &message)
    })
}

/// GetSecretValue response body in the form the AWS Secrets Manager Agent
/// writes it: `SecretString` or `SecretBinary` (base64), `VersionStages`
/// when known, and `CreatedDate` as a string of epoch seconds.
#[derive(Serialize)]
struct SecretValueBody<'a> {
    #[serde(rename = "ARN")]
    arn: Option<&'a str>,
    #[serde(rename = "Name")]
    name: Option<&'a str>,
    #[serde(rename = "VersionId")]
    version_id: Option<&'a str>,
    #[serde(rename = "SecretString", skip_serializing_if = "Option::is_none")]
    secret_string: Option<&'a str>,
    #[serde(rename = "SecretBinary", skip_serializing_if = "Option::is_none")]
    secret_binary: Option<&'a str>,
    #[serde(rename = "VersionStages", skip_serializing_if = "Option::is_none")]
    version_stages: Option<&'a [String]>,
    #[serde(rename = "CreatedDate")]
    created_date: Option<String>,
}

fn secret_value_response(secret: &Secret, requested_id: &str) -> Response<Body> {
    let metadata = secret.metadata();
    let binary = secret
        .is_binary()
        .then(|| Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(secret.expose_bytes())));
    let body = SecretValueBody {
        arn: metadata.arn.as_deref(),
        name: Some(metadata.name.as_deref().unwrap_or(requested_id)),
        version_id: metadata.version_id.as_deref(),
        secret_string: secret.expose_str().ok(),
        secret_binary: binary.as_ref().map(|text| text.as_str()),
        version_stages: (!metadata.version_stages.is_empty()).then_some(metadata.version_stages.as_slice()),
        created_date: metadata.created_at.map(epoch_seconds_text),
    };
    response::secret_json(StatusCode::OK, serialize_secret(&body, secret.expose_bytes().len()))
}

/// Parsed `/systemsmanager/parameters/get` query.
struct ParameterRequest {
    name: String,
    selector: Option<(&'static str, String)>,
    refresh: bool,
}

impl ParameterRequest {
    fn from_query(query: &Query) -> Result<ParameterRequest, String> {
        let name = query.get("name").filter(|name| !name.is_empty()).ok_or("the name query parameter is missing")?;
        query::flag("withDecryption", query.get("withDecryption"))?;
        let refresh = query::flag("refreshNow", query.get("refreshNow"))?;

        let (name, suffix) = split_selector(name);
        let selector = match (query.get("version"), query.get("label"), suffix) {
            (None, None, None) => None,
            (Some(version), None, None) => Some(("version", version.to_owned())),
            (None, Some(label), None) => Some(("label", label.to_owned())),
            (None, None, Some(suffix)) if suffix.bytes().all(|byte| byte.is_ascii_digit()) => {
                Some(("version", suffix.to_owned()))
            }
            (None, None, Some(suffix)) => Some(("label", suffix.to_owned())),
            _ => return Err("give one of version, label or a :selector suffix on the name".to_owned()),
        };
        Ok(ParameterRequest {
            name: name.to_owned(),
            selector,
            refresh,
        })
    }

    /// Returns the selector as SSM writes it in `Selector`: `:3` or `:label`.
    fn selector_text(&self) -> Option<String> {
        self.selector.as_ref().map(|(_, value)| format!(":{value}"))
    }
}

/// Splits `name:selector` (SSM's own syntax for a version or label) into
/// the name and the selector. In an ARN only a colon after `parameter/`
/// starts a selector.
fn split_selector(name: &str) -> (&str, Option<&str>) {
    let search_from = if name.starts_with("arn:") {
        match name.find(":parameter/") {
            Some(index) => index + ":parameter/".len(),
            None => return (name, None),
        }
    } else {
        0
    };
    match name[search_from..].rfind(':') {
        Some(offset) => {
            let index = search_from + offset;
            (&name[..index], Some(&name[index + 1..]))
        }
        None => (name, None),
    }
}

/// GetParameter response body: `{"Parameter": {...}, "ResultMetadata": {}}`.
// Limitation: `Type` (String, StringList or SecureString) is left out,
// because keystead's metadata does not carry the parameter type.
#[derive(Serialize)]
struct ParameterBody<'a> {
    #[serde(rename = "Parameter")]
    parameter: ParameterFields<'a>,
    #[serde(rename = "ResultMetadata")]
    result_metadata: EmptyObject,
}

#[derive(Serialize)]
struct ParameterFields<'a> {
    #[serde(rename = "ARN")]
    arn: Option<&'a str>,
    #[serde(rename = "DataType")]
    data_type: &'static str,
    #[serde(rename = "LastModifiedDate")]
    last_modified_date: Option<f64>,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Selector")]
    selector: Option<String>,
    #[serde(rename = "SourceResult")]
    source_result: Option<&'static str>,
    #[serde(rename = "Value")]
    value: &'a str,
    #[serde(rename = "Version")]
    version: Option<u64>,
}

#[derive(Serialize)]
struct EmptyObject {}

fn parameter_response(secret: &Secret, request: &ParameterRequest) -> Response<Body> {
    let metadata = secret.metadata();
    let Ok(value) = secret.expose_str() else {
        return response::aws_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "the parameter value is not text");
    };
    let body = ParameterBody {
        parameter: ParameterFields {
            arn: metadata.arn.as_deref(),
            // Parameter Store's default data type; `aws:ec2:image` values
            // are text too.
            data_type: "text",
            last_modified_date: metadata.created_at.map(epoch_seconds),
            name: metadata.name.as_deref().unwrap_or(&request.name),
            selector: request.selector_text(),
            source_result: None,
            value,
            version: metadata.version_number,
        },
        result_metadata: EmptyObject {},
    };
    response::secret_json(StatusCode::OK, serialize_secret(&body, value.len()))
}

/// Serializes an answer that holds a value of `value_bytes` bytes into a
/// buffer large enough that it never reallocates (JSON escaping at most
/// sextuples a byte), so no stray copy of the value is left in freed
/// memory. The buffer is wiped when dropped.
fn serialize_secret<T: Serialize>(body: &T, value_bytes: usize) -> Zeroizing<Vec<u8>> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(value_bytes.saturating_mul(6).saturating_add(2048)));
    if serde_json::to_writer(&mut *buffer, body).is_err() {
        buffer.clear();
        buffer.extend_from_slice(br#"{"__type":"InternalFailure"}"#);
    }
    buffer
}

/// Secrets Manager's error code and status for a keystead error.
pub(crate) fn secrets_manager_error(error: &Error) -> Response<Body> {
    let (status, code) = match error.class() {
        ErrorClass::NotFound => (StatusCode::BAD_REQUEST, "ResourceNotFoundException"),
        ErrorClass::AccessDenied => (StatusCode::BAD_REQUEST, "AccessDeniedException"),
        ErrorClass::SecretDeleted => (StatusCode::BAD_REQUEST, "InvalidRequestException"),
        ErrorClass::DecryptionFailed => (StatusCode::BAD_REQUEST, "DecryptionFailure"),
        ErrorClass::InvalidReference | ErrorClass::Config => (StatusCode::BAD_REQUEST, "InvalidParameterException"),
        ErrorClass::Unavailable | ErrorClass::Closed => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
    };
    response::aws_error(status, code, error.message())
}

/// Parameter Store's error code and status for a keystead error.
fn parameter_error(error: &Error) -> Response<Body> {
    let (status, code) = match error.class() {
        ErrorClass::NotFound => (StatusCode::BAD_REQUEST, "ParameterNotFound"),
        ErrorClass::AccessDenied => (StatusCode::BAD_REQUEST, "AccessDeniedException"),
        ErrorClass::DecryptionFailed => (StatusCode::BAD_REQUEST, "InvalidKeyId"),
        ErrorClass::InvalidReference | ErrorClass::Config => (StatusCode::BAD_REQUEST, "ValidationException"),
        ErrorClass::Unavailable | ErrorClass::Closed => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
    };
    response::aws_error(status, code, error.message())
}

/// Epoch seconds as the Secrets Manager Agent writes `CreatedDate`: the
/// whole seconds, and the fraction without trailing zeros when there is
/// one, in a string.
fn epoch_seconds_text(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let nanos = since.subsec_nanos();
    if nanos == 0 {
        return since.as_secs().to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}", since.as_secs(), fraction.trim_end_matches('0'))
}

fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).map(|since| since.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn created_date_text_trims_fraction() {
        let at = |secs, nanos| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(epoch_seconds_text(at(1_700_000_000, 0)), "1700000000");
        assert_eq!(epoch_seconds_text(at(1_700_000_000, 500_000_000)), "1700000000.5");
        assert_eq!(epoch_seconds_text(at(12345, 999_999_000)), "12345.999999");
    }

    #[test]
    fn selector_suffix_splits_names_and_arns() {
        assert_eq!(split_selector("/app/db:3"), ("/app/db", Some("3")));
        assert_eq!(split_selector("/app/db"), ("/app/db", None));
        assert_eq!(
            split_selector("arn:aws:ssm:us-east-1:123456789012:parameter/app/db"),
            ("arn:aws:ssm:us-east-1:123456789012:parameter/app/db", None)
        );
        assert_eq!(
            split_selector("arn:aws:ssm:us-east-1:123456789012:parameter/app/db:prod"),
            ("arn:aws:ssm:us-east-1:123456789012:parameter/app/db", Some("prod"))
        );
    }

    #[tokio::test]
    async fn error_body_stays_json_with_quotes() {
        use http_body_util::BodyExt;

        let message = "can't find \"prod/db\" \\ {\"x\": 1}\n";
        let response = secrets_manager_error(&Error::new(ErrorClass::NotFound, message));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["__type"], "ResourceNotFoundException");
        // Core escapes the control character; quotes and backslashes
        // arrive as they were and the body is still valid JSON.
        assert_eq!(parsed["message"], "can't find \"prod/db\" \\ {\"x\": 1}\\n");
    }
}
