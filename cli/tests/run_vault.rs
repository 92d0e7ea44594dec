//! `keystead run` against a real OpenBao dev server: two fields of one KV
//! v2 secret, rotated together, reach the child together in one restart.

// The core crate's harness; this test uses a few of its helpers.
#[allow(dead_code)]
#[path = "../../core/tests/support/bao.rs"]
mod bao;
mod support;

use std::path::Path;

use serde_json::json;
use support::{eventually, keystead, unique, Running};

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn fields_of_one_vault_secret_rotate_together() {
    let server = bao::Bao::shared();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = unique("run-vault");
    runtime.block_on(server.kv2_put("secret", &path, json!({ "username": "u1", "password": "p1" })));

    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("keystead.toml");
    std::fs::write(&config, "[cache]\nttl = \"1s\"\n").unwrap();
    let starts = folder.path().join("starts");
    let script = format!(
        "trap 'kill $! 2>/dev/null; exit 0' TERM; printf '%s:%s\\n' \"$DB_USER\" \"$DB_PASSWORD\" >> {}; sleep 1000 & wait",
        starts.display()
    );
    let user = format!("DB_USER=vault://secret/{path}#username");
    let password = format!("DB_PASSWORD=vault://secret/{path}#password");
    let mut command = keystead();
    command
        .env("VAULT_ADDR", &server.address)
        .env("VAULT_TOKEN", bao::ROOT_TOKEN)
        .args(["--config", config.to_str().unwrap(), "run", "-e", &user, "-e", &password])
        .args(["--debounce", "500ms", "--", "sh", "-c", &script]);
    let running = Running::spawn(command);
    assert!(eventually(|| lines(&starts).len() == 1), "{}", running.stderr.text());

    runtime.block_on(server.kv2_put("secret", &path, json!({ "username": "u2", "password": "p2" })));

    assert!(eventually(|| lines(&starts).len() == 2), "{}", running.stderr.text());
    assert_eq!(lines(&starts), ["u1:p1", "u2:p2"]);
    assert_eq!(running.stderr.count("restarting the child"), 1);
    running.signal(libc::SIGTERM);
}
