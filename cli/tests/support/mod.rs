//! Shared helpers of the CLI integration tests: a moto server on loopback,
//! raw AWS JSON calls to seed it, a small HTTP client, and polling with a
//! deadline.
//!
//! Each test binary starts one moto server, on first use, and every test
//! uses names of its own in it. moto is stopped when the test binary exits.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a test waits for something that should happen within a second
/// or two; generous, because CI machines are small and shared.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The moto server of this test binary.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

pub struct Moto {
    pub endpoint: String,
    address: SocketAddr,
}

impl Moto {
    fn start() -> Moto {
        let binary = repository_root().join(".venv/bin/moto_server");
        assert!(
            binary.exists(),
            "{} is missing; run `bash scripts/setup.sh` first",
            binary.display()
        );
        let port = free_port();
        let address: SocketAddr = ([127, 0, 0, 1], port).into();

        // The server is started from a thread that never ends, and the
        // kernel stops it when that thread ends (with the test binary):
        // PR_SET_PDEATHSIG follows the thread that forked.
        let (started, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut command = Command::new(binary);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            stop_with_this_thread(&mut command);
            let child = command.spawn();
            let _ = started.send(child.map(|child| child.id()).map_err(|error| error.to_string()));
            loop {
                std::thread::park();
            }
        });
        ready.recv().unwrap().expect("moto_server starts");

        let moto = Moto {
            endpoint: format!("http://{address}"),
            address,
        };
        assert!(
            eventually(|| TcpStream::connect(address).is_ok()),
            "moto did not start listening on {address}"
        );
        moto
    }

    /// Calls an AWS JSON API operation, for example
    /// `("secretsmanager.CreateSecret", {...})`. moto does not check
    /// signatures, so the request carries a fixed, unsigned Authorization
    /// header that only names the region.
    pub fn call(&self, target: &str, body: Value) -> (u16, Value) {
        let service = if target.starts_with("AmazonSSM") { "ssm" } else { "secretsmanager" };
        let payload = body.to_string();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
        );
        let response = http(
            self.address,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", target),
                ("Authorization", &authorization),
            ],
            payload.as_bytes(),
        );
        let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, value)
    }

    pub fn create_secret(&self, name: &str, value: &str) -> Value {
        let (status, answer) = self.call(
            "secretsmanager.CreateSecret",
            json!({ "Name": name, "SecretString": value }),
        );
        assert_eq!(status, 200, "CreateSecret {name}: {answer}");
        answer
    }

    pub fn create_binary_secret(&self, name: &str, base64: &str) -> Value {
        let (status, answer) = self.call(
            "secretsmanager.CreateSecret",
            json!({ "Name": name, "SecretBinary": base64 }),
        );
        assert_eq!(status, 200, "CreateSecret {name}: {answer}");
        answer
    }

    /// Puts a new version; returns its version id.
    pub fn put_secret(&self, name: &str, value: &str) -> String {
        let (status, answer) = self.call(
            "secretsmanager.PutSecretValue",
            json!({ "SecretId": name, "SecretString": value }),
        );
        assert_eq!(status, 200, "PutSecretValue {name}: {answer}");
        answer["VersionId"].as_str().unwrap().to_owned()
    }

    pub fn get_secret(&self, name: &str) -> Value {
        let (status, answer) = self.call("secretsmanager.GetSecretValue", json!({ "SecretId": name }));
        assert_eq!(status, 200, "GetSecretValue {name}: {answer}");
        answer
    }

    pub fn put_parameter(&self, name: &str, value: &str, kind: &str) -> Value {
        let (status, answer) = self.call(
            "AmazonSSM.PutParameter",
            json!({ "Name": name, "Value": value, "Type": kind, "Overwrite": true }),
        );
        assert_eq!(status, 200, "PutParameter {name}: {answer}");
        answer
    }
}

/// A name no other test in this run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The workspace root: the nearest folder above the package that holds
/// Cargo.lock (this module is shared by more than one package).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|folder| folder.join("Cargo.lock").exists())
        .expect("the package is inside the workspace")
        .to_path_buf()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The keystead binary, set up like `aws_command`, without any variable
/// that would change which token, port or config file it uses.
pub fn keystead() -> Command {
    // Cargo sets this for the keystead-cli package's tests only; the other
    // packages that share this module never call this function.
    let Some(binary) = option_env!("CARGO_BIN_EXE_keystead") else {
        panic!("only the keystead-cli tests run the keystead binary");
    };
    let mut command = aws_command(binary);
    command
        .env_remove("KEYSTEAD_CONFIG")
        .env_remove("AWS_TOKEN")
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .env_remove("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
        .env_remove("PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("NO_COLOR", "1")
        .env("KEYSTEAD_LOG", "info");
    command
}

/// A command for `program` with an environment pointing at moto and
/// nothing inherited that could reach a real AWS account.
pub fn aws_command(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stdin(Stdio::null());
    command
}

/// Polls `condition` until it is true or `DEADLINE` passes.
pub fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stream of a child (stdout or stderr) collected on a thread, so that
/// tests can wait for a line while the child runs.
#[derive(Clone, Default)]
pub struct Captured {
    text: Arc<Mutex<String>>,
}

impl Captured {
    pub fn start(stream: impl Read + Send + 'static) -> Captured {
        let captured = Captured::default();
        let text = Arc::clone(&captured.text);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => text.lock().unwrap().push_str(&line),
                }
            }
        });
        captured
    }

    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Waits until `needle` appears at least `times` times.
    pub fn wait_for(&self, needle: &str, times: usize) -> bool {
        eventually(|| self.count(needle) >= times)
    }
}

/// An HTTP response as the raw client reads it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on a new connection and reads the response.
pub fn http(address: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|error| panic!("connect {address}: {error}"));
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    send_request(&mut stream, method, path, headers, body, true);
    read_response(&mut BufReader::new(stream))
}

/// Writes a request. `close` adds `Connection: close`.
pub fn send_request(stream: &mut TcpStream, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8], close: bool) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n", body.len());
    if close {
        request.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
}

/// Reads one response with a Content-Length or chunked body, or a body
/// that ends with the connection.
pub fn read_response(reader: &mut impl BufRead) -> HttpResponse {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));

    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }

    let find = |name: &str| {
        headers
            .iter()
            .find(|(known, _): &&(String, String)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("content-length") {
        body.resize(length.parse().unwrap(), 0);
        reader.read_exact(&mut body).unwrap();
    } else if find("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    HttpResponse { status, headers, body }
}

/// A keystead process that is killed when the test ends, with its stdout
/// and stderr collected.
pub struct Running {
    pub child: Child,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Running {
    pub fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the keystead binary starts");
        let stdout = Captured::start(child.stdout.take().unwrap());
        let stderr = Captured::start(child.stderr.take().unwrap());
        Running { child, stdout, stderr }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, within `DEADLINE`; returns its code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut code = None;
        let exited = eventually(|| match self.child.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                true
            }
            _ => false,
        });
        assert!(exited, "keystead did not exit; stderr:\n{}", self.stderr.text());
        code
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the first stdout line of an agent: its listening address.
pub fn agent_address(stdout: &Captured) -> SocketAddr {
    assert!(stdout.wait_for("listening on http://", 1), "the agent did not report its address");
    let text = stdout.text();
    let line = text.lines().find(|line| line.contains("listening on http://")).unwrap();
    line.rsplit("http://").next().unwrap().trim().parse().unwrap()
}

#[cfg(target_os = "linux")]
fn stop_with_this_thread(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
