//! Turning AWS error responses into keystead errors.
//!
//! AWS reports an error as a code plus a message. JSON protocols
//! (Secrets Manager, SSM) put the code in `__type`, sometimes prefixed with
//! `namespace#`, and in the `x-amzn-ErrorType` header. The Query protocol
//! (STS) and moto's signature checks put it in an XML `<Code>` element.
//! The class is chosen by code first, because status codes differ between
//! AWS and emulators (moto returns `ResourceNotFoundException` as 404, AWS
//! as 400), and by status only when the code is unknown.

use serde::Deserialize;

use crate::error::{Error, ErrorClass};
use crate::provider::aws::xml;

/// Longest AWS message text kept in an error, in characters. AWS messages
/// are one or two sentences; a longer body is usually an HTML error page
/// from a proxy.
const MAX_MESSAGE_CHARS: usize = 512;

/// An error response from an AWS service, before classification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServiceError {
    /// The error code without any namespace, for example
    /// `ResourceNotFoundException`.
    pub(crate) code: Option<String>,
    /// AWS's own message text.
    pub(crate) message: Option<String>,
    pub(crate) status: u16,
    pub(crate) request_id: Option<String>,
}

impl ServiceError {
    /// Parses an error from the status, the `x-amzn-ErrorType` header and
    /// the body (JSON or XML).
    pub(crate) fn parse(status: u16, error_type_header: Option<&str>, request_id: Option<&str>, body: &[u8]) -> ServiceError {
        let mut error = ServiceError {
            code: None,
            message: None,
            status,
            request_id: request_id.map(str::to_owned),
        };

        if let Ok(json) = serde_json::from_slice::<JsonError>(body) {
            error.code = json.error_type.as_deref().map(strip_namespace).map(str::to_owned);
            error.message = json.message.or(json.message_upper);
        } else if let Ok(text) = std::str::from_utf8(body) {
            error.code = xml::element_text(text, "Code")
                .and_then(xml::unescape)
                .map(|code| code.trim().to_owned());
            error.message = xml::element_text(text, "Message").and_then(xml::unescape);
        }

        if error.code.is_none() {
            error.code = error_type_header
                .map(|header| header.split(':').next().unwrap_or(header))
                .map(strip_namespace)
                .filter(|code| !code.is_empty())
                .map(str::to_owned);
        }
        error
    }

    /// Classifies this error.
    pub(crate) fn class(&self) -> ErrorClass {
        classify(self.code.as_deref(), self.message.as_deref().unwrap_or(""), self.status)
    }

    /// Whether the credentials that signed the request have expired, so the
    /// cached ones should be dropped.
    pub(crate) fn is_expired_token(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired")
        )
    }

    /// Builds the keystead error for a failed `operation`. Every string in
    /// `redact` (the caller's secret key and session token) is removed
    /// from AWS's message first, because some services echo the canonical
    /// request, session token included, in signature errors.
    pub(crate) fn into_error(self, operation: &str, redact: &[&str]) -> Error {
        let class = self.class();
        let code = self.code.as_deref().unwrap_or("an unrecognized error");
        let mut message = format!("{operation} failed with {code} (HTTP {})", self.status);
        if let Some(text) = self.message.as_deref() {
            let text = clean_message(text, redact);
            if !text.is_empty() {
                message.push_str(": ");
                message.push_str(&text);
            }
        }
        if let Some(request_id) = &self.request_id {
            message.push_str(&format!(" [request id {request_id}]"));
        }
        Error::new(class, message)
    }
}

/// Builds the error for one entry of a batch response (BatchGetSecretValue
/// `Errors`), which carries a code and message but no status of its own.
pub(crate) fn batch_entry_error(operation: &str, code: Option<&str>, message: Option<&str>) -> Error {
    let class = classify(code, message.unwrap_or(""), 0);
    let mut text = format!(
        "{operation} failed for this secret with {}",
        code.unwrap_or("an unrecognized error")
    );
    if let Some(message) = message.map(|message| clean_message(message, &[])).filter(|message| !message.is_empty()) {
        text.push_str(": ");
        text.push_str(&message);
    }
    Error::new(class, text)
}

#[derive(Deserialize)]
struct JsonError {
    #[serde(rename = "__type")]
    error_type: Option<String>,
    message: Option<String>,
    #[serde(rename = "Message")]
    message_upper: Option<String>,
}

/// `com.amazonaws.secretsmanager#ResourceNotFoundException` →
/// `ResourceNotFoundException`.
fn strip_namespace(code: &str) -> &str {
    code.rsplit('#').next().unwrap_or(code).trim()
}

/// Maps an AWS error code (and, for a few codes, its message) to a class.
/// Unknown codes fall back to the HTTP status.
pub(crate) fn classify(code: Option<&str>, message: &str, status: u16) -> ErrorClass {
    if let Some(code) = code {
        if let Some(class) = classify_code(code, message) {
            return class;
        }
    }
    match status {
        401 | 403 => ErrorClass::AccessDenied,
        404 => ErrorClass::NotFound,
        408 | 429 => ErrorClass::Unavailable,
        500..=599 => ErrorClass::Unavailable,
        _ => ErrorClass::Internal,
    }
}

fn classify_code(code: &str, message: &str) -> Option<ErrorClass> {
    let class = match code {
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" | "NoSuchEntity" => {
            ErrorClass::NotFound
        }

        "AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException" | "InvalidSignatureException"
        | "SignatureDoesNotMatch" | "IncompleteSignature" | "InvalidClientTokenId" | "InvalidAccessKeyId"
        | "MissingAuthenticationToken" | "MissingAuthenticationTokenException" | "ExpiredToken"
        | "ExpiredTokenException" | "RequestExpired" | "RequestTimeTooSkewed" | "NotAuthorized" | "AuthFailure"
        | "InvalidIdentityToken" | "IDPRejectedClaim" | "OptInRequired" => ErrorClass::AccessDenied,

        "DecryptionFailure" | "KMSAccessDeniedException" | "KMSDisabledException" | "KMSInvalidStateException"
        | "KMSNotFoundException" | "KMSInvalidSignatureException" | "KMSOptInRequired" | "InvalidKeyId"
        | "InvalidCiphertextException" | "IncorrectKeyException" | "DisabledException"
        | "KeyUnavailableException" => ErrorClass::DecryptionFailed,

        "Throttling" | "ThrottlingException" | "ThrottledException" | "RequestThrottledException"
        | "TooManyRequestsException" | "RequestThrottled" | "RequestLimitExceeded" | "BandwidthLimitExceeded"
        | "SlowDown" | "PriorRequestNotComplete" | "EC2ThrottledException" | "KMSThrottlingException"
        | "ProvisionedThroughputExceededException" | "TransactionInProgressException" | "InternalServiceError"
        | "InternalServiceErrorException" | "InternalServerError" | "InternalServerException" | "InternalFailure"
        | "InternalError" | "ServiceUnavailable" | "ServiceUnavailableException" | "ServiceFailure"
        | "RequestTimeout" | "RequestTimeoutException" | "IDPCommunicationError" => ErrorClass::Unavailable,

        // Secrets Manager reports a secret that is scheduled for deletion
        // only through this code's message: "You can't perform this
        // operation on the secret because it was marked for deletion."
        // (moto: "... a secret that's currently marked deleted.")
        "InvalidRequestException" if mentions_deletion(message) => ErrorClass::SecretDeleted,

        "InvalidRequestException" | "InvalidParameterException" | "InvalidParameterValue"
        | "InvalidParameterCombination" | "ValidationException" | "ValidationError" | "InvalidNextTokenException"
        | "ParameterVersionLabelLimitExceeded" | "UnsupportedParameterType" => ErrorClass::InvalidReference,

        _ => return None,
    };
    Some(class)
}

fn mentions_deletion(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("deletion") || message.contains("deleted")
}

/// Removes the redacted strings, replaces control characters (a log line
/// stays one line) and caps the length.
fn clean_message(text: &str, redact: &[&str]) -> String {
    let mut cleaned = text.to_owned();
    for secret in redact.iter().filter(|secret| !secret.is_empty()) {
        cleaned = cleaned.replace(secret, "[REDACTED]");
    }
    let mut out: String = cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if cleaned.chars().count() > MAX_MESSAGE_CHARS {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let cases = [
            (Some("ResourceNotFoundException"), "", 400, ErrorClass::NotFound),
            (Some("ResourceNotFoundException"), "", 404, ErrorClass::NotFound),
            (Some("ParameterNotFound"), "", 400, ErrorClass::NotFound),
            (Some("ParameterVersionNotFound"), "", 400, ErrorClass::NotFound),
            (Some("AccessDeniedException"), "", 400, ErrorClass::AccessDenied),
            (Some("UnrecognizedClientException"), "", 400, ErrorClass::AccessDenied),
            (Some("InvalidSignatureException"), "", 400, ErrorClass::AccessDenied),
            (Some("SignatureDoesNotMatch"), "", 403, ErrorClass::AccessDenied),
            (Some("InvalidClientTokenId"), "", 403, ErrorClass::AccessDenied),
            (Some("ExpiredTokenException"), "", 400, ErrorClass::AccessDenied),
            (Some("InvalidIdentityToken"), "", 400, ErrorClass::AccessDenied),
            (
                Some("InvalidRequestException"),
                "You can't perform this operation on the secret because it was marked for deletion.",
                400,
                ErrorClass::SecretDeleted,
            ),
            (
                Some("InvalidRequestException"),
                "You tried to perform the operation on a secret that's currently marked deleted.",
                400,
                ErrorClass::SecretDeleted,
            ),
            (Some("InvalidRequestException"), "You provided an invalid stage.", 400, ErrorClass::InvalidReference),
            (Some("DecryptionFailure"), "", 400, ErrorClass::DecryptionFailed),
            (Some("KMSAccessDeniedException"), "", 400, ErrorClass::DecryptionFailed),
            (Some("KMSDisabledException"), "", 400, ErrorClass::DecryptionFailed),
            (Some("InvalidKeyId"), "", 400, ErrorClass::DecryptionFailed),
            (Some("ThrottlingException"), "", 400, ErrorClass::Unavailable),
            (Some("TooManyRequestsException"), "", 429, ErrorClass::Unavailable),
            (Some("InternalServiceError"), "", 500, ErrorClass::Unavailable),
            (Some("InternalServerError"), "", 500, ErrorClass::Unavailable),
            (Some("InvalidParameterException"), "", 400, ErrorClass::InvalidReference),
            (Some("ValidationException"), "", 400, ErrorClass::InvalidReference),
            (Some("SomethingNew"), "", 503, ErrorClass::Unavailable),
            (Some("SomethingNew"), "", 403, ErrorClass::AccessDenied),
            (Some("SomethingNew"), "", 400, ErrorClass::Internal),
            (None, "", 429, ErrorClass::Unavailable),
            (None, "", 500, ErrorClass::Unavailable),
            (None, "", 502, ErrorClass::Unavailable),
            (None, "", 404, ErrorClass::NotFound),
            (None, "", 418, ErrorClass::Internal),
        ];
        for (code, message, status, expected) in cases {
            assert_eq!(classify(code, message, status), expected, "{code:?} {message:?} {status}");
        }
    }

    #[test]
    fn json_type_namespace_is_stripped() {
        let body = br#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#;
        let error = ServiceError::parse(400, None, Some("req-1"), body);
        assert_eq!(error.code.as_deref(), Some("ResourceNotFoundException"));
        assert_eq!(error.message.as_deref(), Some("Secrets Manager can't find the specified secret."));
        assert_eq!(error.class(), ErrorClass::NotFound);
    }

    #[test]
    fn capitalized_message_is_read() {
        let body = br#"{"__type":"ParameterNotFound","Message":"Parameter /x not found."}"#;
        let error = ServiceError::parse(400, None, None, body);
        assert_eq!(error.message.as_deref(), Some("Parameter /x not found."));
    }

    #[test]
    fn header_supplies_code_when_body_has_none() {
        let error = ServiceError::parse(
            400,
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/"),
            None,
            b"",
        );
        assert_eq!(error.code.as_deref(), Some("ThrottlingException"));
        assert_eq!(error.class(), ErrorClass::Unavailable);
    }

    #[test]
    fn xml_error_body_is_read() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"#;
        let error = ServiceError::parse(403, None, None, body);
        assert_eq!(error.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(error.class(), ErrorClass::AccessDenied);
    }

    #[test]
    fn message_names_operation_code_status_and_request_id() {
        let body = br#"{"__type":"ResourceNotFoundException","message":"not here"}"#;
        let error = ServiceError::parse(404, None, Some("abc-123"), body).into_error("GetSecretValue", &[]);
        assert_eq!(
            error.message(),
            "GetSecretValue failed with ResourceNotFoundException (HTTP 404): not here [request id abc-123]"
        );
    }

    #[test]
    fn redacted_strings_never_reach_the_message() {
        let body = br#"{"__type":"InvalidSignatureException","message":"The Canonical String for this request should have been\n'POST\n/\n\nx-amz-security-token:TOKEN-123\n'"}"#;
        let error = ServiceError::parse(400, None, None, body).into_error("GetSecretValue", &["TOKEN-123"]);
        assert!(!error.message().contains("TOKEN-123"), "{}", error.message());
        assert!(!error.message().contains('\n'), "{}", error.message());
        assert!(error.message().contains("[REDACTED]"), "{}", error.message());
    }

    #[test]
    fn batch_entry_error_is_classified_by_code() {
        let error = batch_entry_error(
            "Secrets Manager BatchGetSecretValue",
            Some("ResourceNotFoundException"),
            Some("Secrets Manager can't find the specified secret."),
        );
        assert_eq!(error.class(), ErrorClass::NotFound);
        assert_eq!(
            error.message(),
            "Secrets Manager BatchGetSecretValue failed for this secret with ResourceNotFoundException: Secrets Manager can't find the specified secret."
        );
    }

    #[test]
    fn expired_token_is_recognized() {
        let body = br#"{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}"#;
        assert!(ServiceError::parse(400, None, None, body).is_expired_token());
    }
}
