//! `keystead get`: the explicit reveal.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use clap::Args;
use keystead::{Client, Config, Secret};
use serde_json::{json, Map, Value};
use zeroize::Zeroize;

use crate::output::Failure;

/// Arguments of `keystead get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The reference to read, for example aws-sm://prod/db#password.
    reference: String,

    /// Print the value and its metadata as one JSON object.
    #[arg(long)]
    json: bool,

    /// Do not print a newline after a text value.
    #[arg(short = 'n', long = "no-newline")]
    no_newline: bool,

    /// Give up after this long, for example 10s or 1m.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration, value_name = "DURATION")]
    timeout: Duration,
}

pub(crate) fn run(config_path: Option<&Path>, args: &GetArgs) -> Result<(), Failure> {
    let config = match config_path {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let runtime = crate::runtime()?;
    let secret = runtime.block_on(async {
        let client = Client::builder().config(config).build()?;
        let read = tokio::time::timeout(args.timeout, client.get(&args.reference)).await;
        client.close();
        match read {
            Ok(result) => result,
            Err(_) => Err(keystead::Error::new(
                keystead::ErrorClass::Unavailable,
                format!("no answer within {}", humantime::format_duration(args.timeout)),
            )
            .for_reference(&args.reference)),
        }
    })?;

    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        write_json(&mut stdout, &args.reference, &secret)
    } else {
        write_value(&mut stdout, &secret, args.no_newline)
    };
    written
        .and_then(|()| stdout.flush())
        .map_err(|error| Failure::internal(format!("cannot write to stdout: {error}")))
}

fn write_value(out: &mut impl Write, secret: &Secret, no_newline: bool) -> std::io::Result<()> {
    out.write_all(secret.expose_bytes())?;
    if !secret.is_binary() && !no_newline {
        out.write_all(b"\n")?;
    }
    Ok(())
}

pub(crate) fn write_json(out: &mut impl Write, reference: &str, secret: &Secret) -> std::io::Result<()> {
    let metadata = secret.metadata();
    let mut object = Map::new();
    object.insert("reference".into(), json!(reference));
    match secret.expose_str() {
        Ok(text) => object.insert("value".into(), json!(text)),
        Err(_) => object.insert(
            "value_base64".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(secret.expose_bytes())),
        ),
    };
    let metadata_json = json!({
        "reference": metadata.reference,
        "provider": metadata.provider,
        "name": metadata.name,
        "arn": metadata.arn,
        "version_id": metadata.version_id,
        "version_stages": metadata.version_stages,
        "version_number": metadata.version_number,
        "field": metadata.field,
        "binary": secret.is_binary(),
        "created_at": metadata.created_at.map(unix_seconds),
        "fetched_at": metadata.fetched_at.map(unix_seconds),
        "refresh_at": metadata.refresh_at.map(unix_seconds),
        "expires_at": metadata.expires_at.map(unix_seconds),
    });
    object.insert("metadata".into(), metadata_json);

    let mut text = serde_json::to_vec(&Value::Object(object)).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let result = out.write_all(&text);
    // The serialized object contains the revealed value, so wipe it once written.
    text.zeroize();
    result
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}
