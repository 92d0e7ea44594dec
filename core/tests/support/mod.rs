//! Helpers shared by the integration tests: a moto server per test binary
//! ([`moto`]), a scripted HTTP server for faults moto cannot produce
//! ([`fault`]), and the backend setup the conformance cases describe
//! ([`Backends`]).
//!
//! Each test binary uses a different subset, so unused items are expected.
#![allow(dead_code)]

pub mod bao;
pub mod fake_vault;
pub mod fault;
pub mod moto;
pub mod postgres;

// The seeding helper signs its calls with keystead's own SigV4 code rather
// than a second implementation, and moto with signature checks on verifies
// it independently (with botocore). That file depends only on external
// crates, so it compiles here too. Its unit tests also run in every test
// binary that includes this module.
#[path = "../../src/provider/aws/sigv4.rs"]
mod sigv4;

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use keystead::Config;
use serde_json::{json, Value};

/// Returns a name prefix no other test in this run uses, so tests can share one
/// backend and run in parallel.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("kt{}x{counter}x{}", std::process::id(), fastrand::u32(..))
}

/// Backend state for the conformance cases.
///
/// `aws_secrets` maps a secret name to its value: a string (a
/// SecretString), or an object with `text` or `bytes_base64`, and an
/// optional `"deleted": true` to schedule it for deletion afterwards.
/// `aws_parameters` maps a parameter name to its value: a string (a
/// `String` parameter), or an object with `value` and an optional `type`
/// (`String`, `StringList` or `SecureString`).
#[derive(Default)]
pub struct Backends {
    moto: Option<&'static moto::Moto>,
    vault: Option<&'static bao::Bao>,
}

impl Backends {
    /// Creates the secrets or parameters a case's `given` lists.
    pub async fn arrange_aws(&mut self, key: &str, value: &Value) -> Result<(), String> {
        let moto = *self.moto.get_or_insert_with(moto::Moto::shared);
        let entries = value.as_object().ok_or_else(|| format!("`{key}` must be an object"))?;
        for (name, spec) in entries {
            match key {
                "aws_secrets" => arrange_secret(moto, name, spec).await?,
                "aws_parameters" => arrange_parameter(moto, name, spec).await?,
                other => return Err(format!("unsupported backend key `{other}`")),
            }
        }
        Ok(())
    }

    /// Writes the KV secrets a case's `vault_kv` lists into this binary's
    /// OpenBao server, starting it on first use.
    pub async fn arrange_vault(&mut self, value: &Value) -> Result<(), String> {
        let bao = *self.vault.get_or_insert_with(bao::Bao::shared);
        bao.arrange_kv(value).await
    }

    /// Points the Vault settings at OpenBao, with its root token, once a
    /// case used it.
    pub fn configure_vault(&self, config: &mut Config) {
        if let Some(bao) = self.vault {
            config.vault = bao.config();
            config.vault.token = Some(keystead::config::SecretText::new(bao::ROOT_TOKEN));
        }
    }

    /// Points the AWS settings at moto when a case used it.
    ///
    /// The client reads AWS credentials from the process environment, so
    /// this sets the moto test credentials there too, and turns off EC2
    /// instance metadata. Only the single-test conformance binary calls it.
    pub fn configure(&self, config: &mut Config) {
        let Some(moto) = self.moto else {
            return;
        };
        config.aws = moto.aws_config();
        std::env::set_var("AWS_ACCESS_KEY_ID", moto::TEST_ACCESS_KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", moto::TEST_SECRET_ACCESS_KEY);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
}

async fn arrange_secret(moto: &moto::Moto, name: &str, spec: &Value) -> Result<(), String> {
    let mut request = json!({ "Name": name });
    match spec {
        Value::String(text) => request["SecretString"] = json!(text),
        Value::Object(fields) => {
            if let Some(text) = fields.get("text").and_then(Value::as_str) {
                request["SecretString"] = json!(text);
            } else if let Some(encoded) = fields.get("bytes_base64").and_then(Value::as_str) {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|error| format!("secret {name}: bytes_base64 is not base64: {error}"))?;
                request["SecretBinary"] = json!(encoded);
            } else {
                return Err(format!("secret {name}: expected `text` or `bytes_base64`"));
            }
        }
        _ => return Err(format!("secret {name}: expected a string or an object")),
    }
    moto.secrets_manager("CreateSecret", request).await?;

    if spec.get("deleted").and_then(Value::as_bool) == Some(true) {
        moto.secrets_manager("DeleteSecret", json!({ "SecretId": name, "RecoveryWindowInDays": 7 }))
            .await?;
    }
    Ok(())
}

async fn arrange_parameter(moto: &moto::Moto, name: &str, spec: &Value) -> Result<(), String> {
    let (value, kind) = match spec {
        Value::String(text) => (text.as_str(), "String"),
        Value::Object(fields) => (
            fields
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("parameter {name}: expected `value`"))?,
            fields.get("type").and_then(Value::as_str).unwrap_or("String"),
        ),
        _ => return Err(format!("parameter {name}: expected a string or an object")),
    };
    moto.ssm(
        "PutParameter",
        json!({ "Name": name, "Value": value, "Type": kind, "Overwrite": true }),
    )
    .await?;
    Ok(())
}
