//! An AWS Lambda function that checks a webhook's API key and reports which
//! database user it would connect as, with every secret read through
//! keystead. It does the same as the Python handler in
//! `examples/python-lambda`.
//!
//! Environment:
//! * `API_KEY_REF`: reference to the expected API key, for example
//!   `aws-sm://webhooks/api-key`.
//! * `DB_SECRET_REF`: reference to a JSON secret with `username` and
//!   `password`, for example `aws-sm://prod/db`.
//! * `KEYSTEAD_CONFIG` (optional): a keystead.toml packaged with the
//!   function.
//!
//! Lambda sets `AWS_REGION` and the role's credentials, which is all
//! keystead needs. Build for Lambda's `provided.al2023` runtime with
//! `cargo build --release -p keystead-example-rust-lambda` (for the
//! target's architecture) and zip `target/release/bootstrap`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keystead::{Client, Config};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

/// How long init waits for the prefetch. Lambda allows ten seconds for
/// the whole init phase; a prefetch still running after this finishes
/// during the first invocation instead.
const PREFETCH_TIMEOUT: Duration = Duration::from_secs(5);

struct Function {
    client: Client,
    api_key_ref: String,
    db_secret_ref: String,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    let function = Arc::new(Function {
        client: Client::builder().config(Config::from_env()?).build()?,
        api_key_ref: reference_from_env("API_KEY_REF", "aws-sm://webhooks/api-key"),
        db_secret_ref: reference_from_env("DB_SECRET_REF", "aws-sm://prod/db"),
    });
    prefetch(&function, started).await;

    lambda_runtime::run(service_fn(move |event| {
        let function = Arc::clone(&function);
        async move { handle(&function, event).await }
    }))
    .await
}

fn reference_from_env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Loads both secrets during init, in one batch call per backend. Init runs
/// before the first invocation is timed against the function's timeout,
/// so the first request finds the values cached.
async fn prefetch(function: &Function, started: Instant) {
    let references = [function.api_key_ref.as_str(), function.db_secret_ref.as_str()];
    match tokio::time::timeout(PREFETCH_TIMEOUT, function.client.prefetch(&references)).await {
        Ok(outcomes) => {
            for outcome in outcomes {
                if let Err(error) = outcome.result {
                    // The error names the reference and never the value.
                    eprintln!("keystead: prefetch of {} failed: {error}", outcome.reference);
                }
            }
            eprintln!("keystead: init prefetch finished in {} ms", started.elapsed().as_millis());
        }
        Err(_) => eprintln!("keystead: init prefetch still running after {PREFETCH_TIMEOUT:?}; continuing"),
    }
}

/// Returns status 401 without the right `x-api-key` header, and otherwise
/// the database user and the API key's version.
async fn handle(function: &Function, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let offered = header(&event.payload, "x-api-key").unwrap_or_default();
    let expected = function.client.get(&function.api_key_ref).await?;
    if !bool::from(offered.as_bytes().ct_eq(expected.expose_bytes())) {
        return Ok(json!({ "statusCode": 401, "body": json!({ "error": "invalid API key" }).to_string() }));
    }

    // Both fields come from one read of the secret, so they always belong
    // to the same version.
    let database = function.client.get(&function.db_secret_ref).await?;
    let user = database.field("username")?;
    let password = database.field("password")?;

    let body = json!({
        "connection": { "user": user.expose_str()?, "password_length": password.expose_bytes().len() },
        "api_key_version": expected.metadata().version_id,
    });
    Ok(json!({ "statusCode": 200, "body": body.to_string() }))
}

fn header(payload: &Value, name: &str) -> Option<String> {
    payload
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_owned)
}
