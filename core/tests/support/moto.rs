//! A real moto server for the integration tests, started once per test
//! binary on a free loopback port, and a small client that seeds it with
//! signed HTTP calls.
//!
//! The server runs as `sh -c '"$0" ... & pid=$!; cat >/dev/null; kill $pid'`
//! with its standard input piped from this process. When the test process
//! exits, however it exits, the pipe closes, `cat` returns and the shell
//! kills moto: no server outlives the tests.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use keystead::config::AwsConfig;
use keystead::provider::aws::AwsEnvironment;
use serde_json::{json, Value};

use super::sigv4::{self, RequestToSign, SigningParams};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// moto's default account id.
pub const ACCOUNT_ID: &str = "123456789012";

/// Credentials for the moto server without signature checks, which accepts
/// any key.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDMOTOTEST";
pub const TEST_SECRET_ACCESS_KEY: &str = "moto-test-secret-key";

/// How long moto may take to start listening. It is up in about half a
/// second on an idle machine; a loaded CI machine gets far more.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A set of AWS credentials for tests.
#[derive(Clone, Debug)]
pub struct TestCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// A running moto server and the credentials its seeding calls use.
pub struct Moto {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub endpoint: String,
    /// Credentials moto accepts. On the server with signature checks these
    /// belong to an IAM user allowed every action.
    pub credentials: TestCredentials,
    /// Temporary credentials (with a session token) from STS AssumeRole;
    /// set on the server with signature checks only.
    pub session_credentials: Option<TestCredentials>,
    _process: Mutex<Child>,
}

impl Moto {
    /// Returns the moto server shared by every test in this binary,
    /// without signature checks, starting it on first use.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (endpoint, process) = start_server();
            Moto {
                endpoint,
                credentials: TestCredentials {
                    access_key_id: TEST_ACCESS_KEY_ID.to_owned(),
                    secret_access_key: TEST_SECRET_ACCESS_KEY.to_owned(),
                    session_token: None,
                },
                session_credentials: None,
                _process: Mutex::new(process),
            }
        })
    }

    /// Returns a second moto server that verifies every request's SigV4
    /// signature and IAM permissions, with an IAM user and an assumed role
    /// seeded before checking was switched on. It starts on first use.
    pub fn with_signature_checks() -> &'static Moto {
        static CHECKED: OnceLock<Moto> = OnceLock::new();
        CHECKED.get_or_init(|| {
            // Seeding is async, and this may run inside a test's runtime,
            // which cannot be blocked on: run it on a thread of its own.
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for seeding moto");
                runtime.block_on(start_with_signature_checks())
            })
            .join()
            .expect("seeding the signature-checking moto server panicked")
        })
    }

    /// AWS settings that send every service to this server.
    pub fn aws_config(&self) -> AwsConfig {
        let mut config = AwsConfig::default();
        config.region = Some(REGION.to_owned());
        config.endpoint_url = Some(self.endpoint.clone());
        config
    }

    /// Builds an environment with `credentials`, the region, and EC2 instance
    /// metadata switched off, and nothing from the process environment.
    pub fn environment_with(&self, credentials: &TestCredentials) -> AwsEnvironment {
        let mut environment = AwsEnvironment::empty()
            .with_var("AWS_REGION", REGION)
            .with_var("AWS_EC2_METADATA_DISABLED", "true")
            .with_var("AWS_ACCESS_KEY_ID", credentials.access_key_id.as_str())
            .with_var("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key.as_str());
        if let Some(token) = &credentials.session_token {
            environment = environment.with_var("AWS_SESSION_TOKEN", token.as_str());
        }
        environment
    }

    /// Builds [`Moto::environment_with`] this server's own credentials.
    pub fn environment(&self) -> AwsEnvironment {
        self.environment_with(&self.credentials)
    }

    /// Calls a Secrets Manager operation and returns its JSON response.
    pub async fn secrets_manager(&self, operation: &str, body: Value) -> Result<Value, String> {
        self.json_call("secretsmanager", "secretsmanager", operation, body).await
    }

    /// Calls an SSM operation and returns its JSON response.
    pub async fn ssm(&self, operation: &str, body: Value) -> Result<Value, String> {
        self.json_call("ssm", "AmazonSSM", operation, body).await
    }

    /// Calls a Query-protocol (IAM, STS) action and returns its XML response.
    pub async fn query(&self, service: &str, params: &[(&str, &str)]) -> Result<String, String> {
        let body: String = params
            .iter()
            .map(|(key, value)| format!("{}={}", form_encode(key), form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let (status, text) = self
            .signed_post(service, "application/x-www-form-urlencoded; charset=utf-8", None, body.into_bytes())
            .await?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(format!("{service} {params:?} failed with HTTP {status}: {text}"))
        }
    }

    /// Creates a text secret and returns `(arn, version_id)`.
    pub async fn create_secret(&self, name: &str, value: &str) -> (String, String) {
        let answer = self
            .secrets_manager("CreateSecret", json!({ "Name": name, "SecretString": value }))
            .await
            .expect("CreateSecret succeeds");
        (text_field(&answer, "ARN"), text_field(&answer, "VersionId"))
    }

    /// Creates a binary secret and returns `(arn, version_id)`.
    pub async fn create_binary_secret(&self, name: &str, bytes: &[u8]) -> (String, String) {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let answer = self
            .secrets_manager("CreateSecret", json!({ "Name": name, "SecretBinary": encoded }))
            .await
            .expect("CreateSecret succeeds");
        (text_field(&answer, "ARN"), text_field(&answer, "VersionId"))
    }

    /// Adds a version with `value` and returns its version id. With no
    /// `stages` the new version becomes AWSCURRENT.
    pub async fn put_secret_value(&self, secret_id: &str, value: &str, stages: Option<&[&str]>) -> String {
        let mut request = json!({ "SecretId": secret_id, "SecretString": value });
        if let Some(stages) = stages {
            request["VersionStages"] = json!(stages);
        }
        let answer = self
            .secrets_manager("PutSecretValue", request)
            .await
            .expect("PutSecretValue succeeds");
        text_field(&answer, "VersionId")
    }

    /// Moves `stage` to `to_version`, taking it off `from_version`.
    pub async fn move_version_stage(&self, secret_id: &str, stage: &str, to_version: &str, from_version: &str) {
        self.secrets_manager(
            "UpdateSecretVersionStage",
            json!({
                "SecretId": secret_id,
                "VersionStage": stage,
                "MoveToVersionId": to_version,
                "RemoveFromVersionId": from_version,
            }),
        )
        .await
        .expect("UpdateSecretVersionStage succeeds");
    }

    /// Schedules a secret for deletion with a recovery window.
    pub async fn delete_secret(&self, secret_id: &str) {
        self.secrets_manager("DeleteSecret", json!({ "SecretId": secret_id, "RecoveryWindowInDays": 7 }))
            .await
            .expect("DeleteSecret succeeds");
    }

    /// Writes a parameter (overwriting) and returns its new version.
    pub async fn put_parameter(&self, name: &str, value: &str, kind: &str) -> u64 {
        let answer = self
            .ssm(
                "PutParameter",
                json!({ "Name": name, "Value": value, "Type": kind, "Overwrite": true }),
            )
            .await
            .expect("PutParameter succeeds");
        answer["Version"].as_u64().expect("PutParameter returns a Version")
    }

    /// Attaches labels to a parameter version.
    pub async fn label_parameter_version(&self, name: &str, version: u64, labels: &[&str]) {
        self.ssm(
            "LabelParameterVersion",
            json!({ "Name": name, "ParameterVersion": version, "Labels": labels }),
        )
        .await
        .expect("LabelParameterVersion succeeds");
    }

    async fn json_call(&self, service: &str, target_prefix: &str, operation: &str, body: Value) -> Result<Value, String> {
        let target = format!("{target_prefix}.{operation}");
        let (status, text) = self
            .signed_post(service, "application/x-amz-json-1.1", Some(&target), body.to_string().into_bytes())
            .await?;
        if !(200..300).contains(&status) {
            return Err(format!("{target} failed with HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|error| format!("{target} returned invalid JSON ({error}): {text}"))
    }

    /// Sends a SigV4-signed POST to `/` and returns the status and body.
    async fn signed_post(
        &self,
        service: &str,
        content_type: &str,
        target: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, String), String> {
        let url = format!("{}/", self.endpoint);
        let host = self.endpoint.trim_start_matches("http://").to_owned();
        let now = SystemTime::now();
        let amz_date = sigv4::amz_date(now);
        let credentials = &self.credentials;

        let mut headers: Vec<(&str, &str)> = vec![("content-type", content_type), ("host", &host), ("x-amz-date", &amz_date)];
        if let Some(target) = target {
            headers.push(("x-amz-target", target));
        }
        if let Some(token) = &credentials.session_token {
            headers.push(("x-amz-security-token", token));
        }
        let signature = sigv4::sign(
            &RequestToSign {
                method: "POST",
                path: "/",
                query: &[],
                headers: &headers,
                body: &body,
            },
            &SigningParams {
                access_key_id: &credentials.access_key_id,
                secret_access_key: &credentials.secret_access_key,
                region: REGION,
                service,
                time: now,
            },
        );

        // A new client per call: a client's pooled connections belong to
        // the runtime that opened them, and tests each run their own.
        let client = reqwest::Client::builder().no_proxy().build().map_err(|error| error.to_string())?;
        let mut request = client
            .post(url)
            .header("content-type", content_type)
            .header("x-amz-date", &amz_date)
            .header("authorization", &signature.authorization)
            .body(body);
        if let Some(target) = target {
            request = request.header("x-amz-target", target);
        }
        if let Some(token) = &credentials.session_token {
            request = request.header("x-amz-security-token", token);
        }
        let response = request.send().await.map_err(|error| format!("moto request failed: {error}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|error| format!("moto response unreadable: {error}"))?;
        Ok((status, text))
    }

    /// Sets after how many more requests moto starts checking signatures
    /// (`0`: from now on).
    async fn reset_auth(&self, allowed_unchecked: &str) -> Result<(), String> {
        let client = reqwest::Client::builder().no_proxy().build().map_err(|error| error.to_string())?;
        let response = client
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(allowed_unchecked.to_owned())
            .send()
            .await
            .map_err(|error| format!("reset-auth failed: {error}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("reset-auth returned HTTP {}", response.status()))
        }
    }
}

async fn start_with_signature_checks() -> Moto {
    let (endpoint, process) = start_server();
    let mut moto = Moto {
        endpoint,
        credentials: TestCredentials {
            access_key_id: TEST_ACCESS_KEY_ID.to_owned(),
            secret_access_key: TEST_SECRET_ACCESS_KEY.to_owned(),
            session_token: None,
        },
        session_credentials: None,
        _process: Mutex::new(process),
    };

    let allow_everything = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let trust_anyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let user = "keystead-test";
    let role = "keystead-test-role";
    let iam_calls: [&[(&str, &str)]; 5] = [
        &[("Action", "CreateUser"), ("UserName", user)],
        &[("Action", "CreateAccessKey"), ("UserName", user)],
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "allow-everything"),
            ("PolicyDocument", allow_everything),
        ],
        &[("Action", "CreateRole"), ("RoleName", role), ("AssumeRolePolicyDocument", trust_anyone)],
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", role),
            ("PolicyName", "allow-everything"),
            ("PolicyDocument", allow_everything),
        ],
    ];
    let mut key_xml = String::new();
    for params in iam_calls {
        let mut params = params.to_vec();
        params.push(("Version", "2010-05-08"));
        let answer = moto.query("iam", &params).await.expect("IAM seeding succeeds");
        if params[0].1 == "CreateAccessKey" {
            key_xml = answer;
        }
    }

    moto.credentials = TestCredentials {
        access_key_id: xml_text(&key_xml, "AccessKeyId"),
        secret_access_key: xml_text(&key_xml, "SecretAccessKey"),
        session_token: None,
    };

    let role_arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/{role}");
    let assumed = moto
        .query(
            "sts",
            &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", &role_arn),
                ("RoleSessionName", "keystead-test"),
            ],
        )
        .await
        .expect("AssumeRole succeeds");
    moto.session_credentials = Some(TestCredentials {
        access_key_id: xml_text(&assumed, "AccessKeyId"),
        secret_access_key: xml_text(&assumed, "SecretAccessKey"),
        session_token: Some(xml_text(&assumed, "SessionToken")),
    });

    moto.reset_auth("0").await.expect("moto switches signature checks on");
    moto
}

/// Starts moto on a free loopback port and waits until it accepts
/// connections. Returns the endpoint and the supervising shell.
fn start_server() -> (String, Child) {
    let executable = moto_server_path();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("keystead-moto-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("a moto log file in the temporary folder");

    let process = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" & pid=$!; cat >/dev/null; kill "$pid""#)
        .arg(&executable)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("the log file handle clones"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", executable.display()));

    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_listening(port, &log);
    (endpoint, process)
}

/// `$KEYSTEAD_MOTO_SERVER`, else `<workspace>/.venv/bin/moto_server`.
fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("KEYSTEAD_MOTO_SERVER").filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the core crate sits inside the workspace");
    let path = workspace.join(".venv/bin/moto_server");
    assert!(
        path.exists(),
        "moto_server not found at {}; run scripts/setup.sh to install it, or set KEYSTEAD_MOTO_SERVER",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("the listener has an address").port()
}

/// Polls until moto answers an HTTP request on `port`.
fn wait_until_listening(port: u16, log: &Path) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        if answers_http(port) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = std::fs::read_to_string(log).unwrap_or_default();
    panic!("moto did not start on port {port} within {STARTUP_TIMEOUT:?}; its output:\n{output}");
}

fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).is_ok() && first.starts_with(b"HTTP/1.")
}

fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn text_field(answer: &Value, field: &str) -> String {
    answer[field]
        .as_str()
        .unwrap_or_else(|| panic!("the answer has no {field}: {answer}"))
        .to_owned()
}

fn xml_text(document: &str, element: &str) -> String {
    let open = format!("<{element}>");
    let close = format!("</{element}>");
    let start = document
        .find(&open)
        .unwrap_or_else(|| panic!("no <{element}> in {document}"))
        + open.len();
    let end = start + document[start..].find(&close).expect("the element is closed");
    document[start..end].to_owned()
}
