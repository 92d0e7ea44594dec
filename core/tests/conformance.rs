//! Runs the shared conformance cases in `conformance/cases.json`: the same
//! file the Python, Node and Go suites run.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use keystead::{Client, Config, ErrorClass};
use serde_json::Value;

fn cases_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cases.json")
}

/// Replaces `{dir}` and `{prefix}` in every string of a case.
fn expand(value: &Value, dir: &str, prefix: &str) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace("{dir}", dir).replace("{prefix}", prefix)),
        Value::Array(items) => Value::Array(items.iter().map(|item| expand(item, dir, prefix)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.replace("{dir}", dir).replace("{prefix}", prefix), expand(item, dir, prefix)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Puts the backend state a case describes in place.
async fn arrange(given: &Value, dir: &Path, backends: &mut support::Backends) -> Result<(), String> {
    let Some(given) = given.as_object() else {
        return Err("`given` must be an object".into());
    };
    for (key, value) in given {
        match key.as_str() {
            "env" => {
                for (name, text) in value.as_object().ok_or("`env` must be an object")? {
                    std::env::set_var(name, text.as_str().ok_or("env values must be strings")?);
                }
            }
            "files" => {
                for (name, text) in value.as_object().ok_or("`files` must be an object")? {
                    let path = dir.join(name);
                    std::fs::write(&path, text.as_str().ok_or("file contents must be strings")?)
                        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
                }
            }
            "aws_secrets" | "aws_parameters" => backends.arrange_aws(key, value).await?,
            "vault_kv" => backends.arrange_vault(value).await?,
            other => return Err(format!("unsupported `given` key `{other}`")),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_cases_resolve_as_expected() {
    let text = std::fs::read_to_string(cases_file()).expect("conformance/cases.json is readable");
    let document: Value = serde_json::from_str(&text).expect("conformance/cases.json is JSON");
    assert_eq!(document["version"], 1);
    let cases = document["cases"].as_array().expect("`cases` is a list");
    assert!(!cases.is_empty());

    let mut backends = support::Backends::default();
    let mut failures = Vec::new();
    let mut names = BTreeMap::new();

    for raw in cases {
        let name = raw["name"].as_str().expect("every case has a name").to_owned();
        assert!(names.insert(name.clone(), ()).is_none(), "duplicate case name {name}");

        let folder = tempfile::tempdir().expect("a temporary folder");
        let dir = folder.path().display().to_string();
        let prefix = support::unique_prefix();
        let case = expand(raw, &dir, &prefix);

        if let Err(problem) = arrange(&case["given"], folder.path(), &mut backends).await {
            failures.push(format!("{name}: cannot arrange: {problem}"));
            continue;
        }

        let mut config = Config::default();
        backends.configure(&mut config);
        backends.configure_vault(&mut config);
        let client = Client::builder().config(config).build().expect("client builds");
        let reference = case["reference"].as_str().expect("reference is a string");
        let result = client.get(reference).await;
        let expect = &case["expect"];

        let verdict = match (result, expect) {
            (Ok(secret), _) if expect.get("text").is_some() => match secret.expose_str() {
                Ok(text) if text == expect["text"].as_str().unwrap_or_default() => None,
                Ok(text) => Some(format!("got text {text:?}")),
                Err(error) => Some(format!("got error {error}")),
            },
            (Ok(secret), _) if expect.get("bytes_base64").is_some() => {
                let wanted = base64::engine::general_purpose::STANDARD
                    .decode(expect["bytes_base64"].as_str().unwrap_or_default())
                    .expect("bytes_base64 is base64");
                if !secret.is_binary() {
                    Some("expected a binary value, got text".into())
                } else if secret.expose_bytes() != wanted.as_slice() {
                    Some(format!("got {} different bytes", secret.expose_bytes().len()))
                } else {
                    None
                }
            }
            (Ok(_), _) => Some(format!("expected {expect}, got a value")),
            (Err(error), _) => match expect.get("error").and_then(Value::as_str) {
                Some(class) if ErrorClass::from_name(class) == Some(error.class()) => None,
                Some(class) if ErrorClass::from_name(class).is_none() => Some(format!("unknown class {class}")),
                _ => Some(format!("expected {expect}, got error {error}")),
            },
        };
        if let Some(problem) = verdict {
            failures.push(format!("{name} ({reference}): {problem}"));
        }
        client.close();
    }

    assert!(failures.is_empty(), "conformance failures:\n{}", failures.join("\n"));
}
