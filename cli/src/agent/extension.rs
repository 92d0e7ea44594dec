//! The Lambda Extensions API: registering as an external extension and
//! waiting for its events.
//!
//! Lambda starts every executable in /opt/extensions before the function's
//! runtime, and starts the runtime once all of them have registered. The
//! agent therefore listens before it registers, so that it serves requests
//! even during the function's init phase.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderValue;

use crate::output::Failure;

/// Environment variable holding the host and port of the Lambda APIs.
pub(crate) const RUNTIME_API_VARIABLE: &str = "AWS_LAMBDA_RUNTIME_API";

const API_VERSION: &str = "2020-01-01";
const NAME_HEADER: &str = "Lambda-Extension-Name";
const IDENTIFIER_HEADER: &str = "Lambda-Extension-Identifier";
const ERROR_TYPE_HEADER: &str = "Lambda-Extension-Function-Error-Type";

/// Time allowed to reach the Extensions API; it listens on the same host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A registered extension.
pub(crate) struct Extension {
    http: reqwest::Client,
    base: String,
    identifier: HeaderValue,
}

/// An event from `event/next`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The function is being invoked.
    Invoke { request_id: String },
    /// The execution environment is shutting down; finish before
    /// `deadline` (wall clock).
    Shutdown { reason: String, deadline: Option<SystemTime> },
}

impl Extension {
    /// Registers for INVOKE and SHUTDOWN events under `name`, which Lambda
    /// requires to be the extension's file name in /opt/extensions.
    pub(crate) async fn register(name: &str) -> Result<Extension, Failure> {
        let host = std::env::var(RUNTIME_API_VARIABLE).map_err(|_| {
            Failure::usage(format!(
                "--lambda-extension needs {RUNTIME_API_VARIABLE}, which Lambda sets; it is not set"
            ))
        })?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| Failure::internal(format!("cannot build the Extensions API client: {error}")))?;
        let base = format!("http://{host}/{API_VERSION}/extension");

        let response = http
            .post(format!("{base}/register"))
            .header(NAME_HEADER, name)
            .header("Content-Type", "application/json")
            .body(r#"{"events":["INVOKE","SHUTDOWN"]}"#)
            .send()
            .await
            .map_err(|error| api_failure("register", &error.to_string()))?;
        let status = response.status();
        let identifier = response.headers().get(IDENTIFIER_HEADER).cloned();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(api_failure("register", &format!("HTTP {status}: {}", body.trim())));
        }
        let identifier = identifier
            .ok_or_else(|| api_failure("register", &format!("the answer has no {IDENTIFIER_HEADER} header")))?;
        tracing::info!(name, "registered as a Lambda extension");
        Ok(Extension { http, base, identifier })
    }

    /// Waits for the next event. Lambda responds only when there is one, so
    /// this has no timeout.
    pub(crate) async fn next_event(&self) -> Result<Event, Failure> {
        let response = self
            .http
            .get(format!("{}/event/next", self.base))
            .header(IDENTIFIER_HEADER, self.identifier.clone())
            .send()
            .await
            .map_err(|error| api_failure("event/next", &error.to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| api_failure("event/next", &error.to_string()))?;
        if !status.is_success() {
            return Err(api_failure("event/next", &format!("HTTP {status}: {}", String::from_utf8_lossy(&body).trim())));
        }
        parse_event(&body).map_err(|problem| api_failure("event/next", &problem))
    }

    /// Tells Lambda the extension failed, so that the failure shows in the
    /// function's logs and invoke errors. Best effort.
    pub(crate) async fn report_exit_error(&self, reason: &str, message: &str) {
        let body = serde_json::json!({ "errorMessage": message, "errorType": format!("Extension.{reason}") });
        let sent = self
            .http
            .post(format!("{}/exit/error", self.base))
            .header(IDENTIFIER_HEADER, self.identifier.clone())
            .header(ERROR_TYPE_HEADER, format!("Extension.{reason}"))
            .body(body.to_string())
            .send()
            .await;
        if let Err(error) = sent {
            tracing::warn!(error = %error, "cannot report the failure to the Extensions API");
        }
    }
}

fn parse_event(body: &[u8]) -> Result<Event, String> {
    let event: serde_json::Value = serde_json::from_slice(body).map_err(|error| format!("the event is not JSON: {error}"))?;
    let text = |key: &str| event.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    match event.get("eventType").and_then(serde_json::Value::as_str) {
        Some("INVOKE") => Ok(Event::Invoke {
            request_id: text("requestId"),
        }),
        Some("SHUTDOWN") => Ok(Event::Shutdown {
            reason: text("shutdownReason"),
            deadline: event
                .get("deadlineMs")
                .and_then(serde_json::Value::as_u64)
                .map(|millis| UNIX_EPOCH + Duration::from_millis(millis)),
        }),
        other => Err(format!("unknown event type {other:?}")),
    }
}

fn api_failure(call: &str, problem: &str) -> Failure {
    Failure::internal(format!("the Lambda Extensions API call {call} failed: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse() {
        let invoke = br#"{"eventType":"INVOKE","deadlineMs":1700000003000,"requestId":"r-1","invokedFunctionArn":"arn:x","tracing":{}}"#;
        assert_eq!(parse_event(invoke).unwrap(), Event::Invoke { request_id: "r-1".to_owned() });
        let shutdown = br#"{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":1700000002000}"#;
        assert_eq!(
            parse_event(shutdown).unwrap(),
            Event::Shutdown {
                reason: "spindown".to_owned(),
                deadline: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_002_000)),
            }
        );
        assert!(parse_event(br#"{"eventType":"RESTORE"}"#).is_err());
    }
}
