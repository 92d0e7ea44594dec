//! `keystead agent` against moto: the AWS extension's and agent's paths
//! and response shapes, the request checks, limits, metrics, and the Lambda
//! extension mode against a local fake of the Extensions API.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::{agent_address, http, keystead, moto, read_response, send_request, unique, HttpResponse, Running};

const TOKEN: &str = "test-token-7b1f";
const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";
const CANARY: &str = "canary-agent-3c9d70a1";

struct Agent {
    running: Running,
    address: SocketAddr,
}

impl Agent {
    fn start(extra: &[&str]) -> Agent {
        let mut command = keystead();
        command.env("AWS_TOKEN", TOKEN);
        Agent::start_with(command, extra)
    }

    /// Starts an agent; `command` must set the token variable.
    fn start_with(mut command: Command, extra: &[&str]) -> Agent {
        command.args(["agent", "--listen", "127.0.0.1:0"]).args(extra);
        let running = Running::spawn(command);
        let address = agent_address(&running.stdout);
        Agent { running, address }
    }

    fn get(&self, path: &str) -> HttpResponse {
        http(self.address, "GET", path, &[(TOKEN_HEADER, TOKEN)], b"")
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http(self.address, method, path, headers, b"")
    }
}

fn keys(object: &Value) -> Vec<String> {
    let mut keys: Vec<String> = object.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn secret_answer_matches_aws_shape() {
    let name = unique("agent-shape");
    moto().create_secret(&name, "s3cret \"quoted\"");
    let expected = moto().get_secret(&name);
    let agent = Agent::start(&[]);

    let response = agent.get(&format!("/secretsmanager/get?secretId={name}"));

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(keys(&body), ["ARN", "CreatedDate", "Name", "SecretString", "VersionId", "VersionStages"]);
    assert_eq!(body["SecretString"], "s3cret \"quoted\"");
    assert_eq!(body["Name"], name.as_str());
    assert_eq!(body["ARN"], expected["ARN"]);
    assert_eq!(body["VersionId"], expected["VersionId"]);
    assert_eq!(body["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    let created = body["CreatedDate"].as_str().expect("CreatedDate is a string of epoch seconds");
    assert!(created.parse::<f64>().unwrap() > 1.5e9, "{created}");
}

#[test]
fn binary_secret_is_base64_without_string() {
    let name = unique("agent-binary");
    moto().create_binary_secret(&name, "AAEC/w==");
    let agent = Agent::start(&[]);

    let body = agent.get(&format!("/secretsmanager/get?secretId={name}")).json();

    assert_eq!(body["SecretBinary"], "AAEC/w==");
    assert!(body.get("SecretString").is_none());
}

#[test]
fn path_form_stages_and_refresh_now() {
    let name = unique("agent-path");
    moto().create_secret(&name, "v1");
    let agent = Agent::start(&[]);
    assert_eq!(agent.get(&format!("/v1/{name}")).json()["SecretString"], "v1");

    let version = moto().put_secret(&name, "v2");

    assert_eq!(agent.get(&format!("/v1/{name}")).json()["SecretString"], "v1", "served from the cache");
    let refreshed = agent.get(&format!("/secretsmanager/get?secretId={name}&refreshNow=true")).json();
    assert_eq!(refreshed["SecretString"], "v2");
    assert_eq!(refreshed["VersionId"], version.as_str());
    let previous = agent.get(&format!("/v1/{name}?versionStage=AWSPREVIOUS")).json();
    assert_eq!(previous["SecretString"], "v1");
    let by_id = agent.get(&format!("/secretsmanager/get?secretId={name}&versionId={version}")).json();
    assert_eq!(by_id["SecretString"], "v2");
}

#[test]
fn parameter_answer_matches_aws_shape() {
    let name = format!("/{}/db/password", unique("agent-ssm"));
    moto().put_parameter(&name, "p@ss", "SecureString");
    moto().put_parameter(&name, "p@ss-2", "SecureString");
    let agent = Agent::start(&[]);
    let encoded = name.replace('/', "%2F");

    let response = agent.get(&format!("/systemsmanager/parameters/get?name={encoded}&withDecryption=true"));

    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(keys(&body), ["Parameter", "ResultMetadata"]);
    let parameter = &body["Parameter"];
    assert_eq!(
        keys(parameter),
        ["ARN", "DataType", "LastModifiedDate", "Name", "Selector", "SourceResult", "Value", "Version"]
    );
    assert_eq!(parameter["Value"], "p@ss-2");
    assert_eq!(parameter["Name"], name.as_str());
    assert_eq!(parameter["Version"], 2);
    assert_eq!(parameter["DataType"], "text");
    assert!(parameter["LastModifiedDate"].is_number());

    let first = agent.get(&format!("/systemsmanager/parameters/get?name={encoded}%3A1")).json();
    assert_eq!(first["Parameter"]["Value"], "p@ss");
    assert_eq!(first["Parameter"]["Selector"], ":1");
    let by_query = agent.get(&format!("/systemsmanager/parameters/get?name={encoded}&version=1")).json();
    assert_eq!(by_query["Parameter"]["Version"], 1);
}

#[test]
fn native_endpoint_reads_any_reference() {
    let name = unique("agent-native");
    moto().create_secret(&name, r#"{"db": {"port": 5432}}"#);
    let agent = Agent::start(&[]);

    let body = agent.get(&format!("/v1/secret?ref=aws-sm://{name}%23db.port")).json();

    assert_eq!(body["value"], "5432");
    assert_eq!(body["metadata"]["provider"], "aws-sm");
    assert_eq!(body["metadata"]["field"], "db.port");

    let missing = agent.get(&format!("/v1/secret?ref=aws-sm://{name}%23db.user"));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["class"], "field-not-found");
}

#[test]
fn missing_secret_is_aws_error_shape() {
    let agent = Agent::start(&[]);
    let name = unique("agent-absent");

    let response = agent.get(&format!("/secretsmanager/get?secretId={name}"));

    assert_eq!(response.status, 400);
    let body = response.json();
    assert_eq!(keys(&body), ["__type", "message"]);
    assert_eq!(body["__type"], "ResourceNotFoundException");
    assert!(body["message"].as_str().unwrap().contains("can't find"), "{body}");

    let parameter = agent.get(&format!("/systemsmanager/parameters/get?name=%2F{name}"));
    assert_eq!(parameter.status, 400);
    assert_eq!(parameter.json()["__type"], "ParameterNotFound");
}

#[test]
fn error_body_is_json_when_message_has_quotes() {
    let agent = Agent::start(&["--allow-scheme", "env"]);
    let name = format!("/{}/a\"b\\c", unique("agent-quote"));
    let encoded = name.replace('/', "%2F").replace('"', "%22").replace('\\', "%5C");

    // moto's own message repeats the name: `Parameter /…/a"b\c not found.`
    let upstream = agent.get(&format!("/systemsmanager/parameters/get?name={encoded}"));

    assert_eq!(upstream.status, 400);
    let body = upstream.json();
    assert_eq!(body["__type"], "ParameterNotFound");
    assert!(body["message"].as_str().unwrap().contains(&format!("Parameter {name} not found")), "{body}");

    let native = agent.get("/v1/secret?ref=env://KS_AGENT_UNSET%22QUOTED");
    assert_eq!(native.status, 404);
    let body = native.json();
    assert_eq!(body["error"]["message"], "environment variable KS_AGENT_UNSET\"QUOTED is not set");
    assert_eq!(body["error"]["reference"], "env://KS_AGENT_UNSET\"QUOTED");
}

#[test]
fn native_endpoint_rejects_local_schemes_by_default() {
    let agent = Agent::start(&[]);

    for (reference, scheme) in [
        ("env://AWS_SECRET_ACCESS_KEY", "env"),
        ("file:///proc/self/environ", "file"),
        ("ENV://HOME", "env"),
    ] {
        let response = agent.get(&format!("/v1/secret?ref={reference}"));

        assert_eq!(response.status, 403, "{reference}: {}", response.text());
        let body = response.json();
        assert_eq!(body["error"]["class"], "access-denied", "{reference}");
        assert_eq!(
            body["error"]["message"],
            format!(
                "the agent does not serve {scheme}:// references; allow the scheme with `allowed_schemes` in the [agent] table or with --allow-scheme {scheme}"
            ),
            "{reference}"
        );
        assert_eq!(body["error"]["reference"], reference);
        assert!(body.get("value").is_none(), "{reference}: {body}");
    }
}

#[test]
fn allow_scheme_flag_serves_env() {
    let mut command = keystead();
    command.env("AWS_TOKEN", TOKEN).env("KS_AGENT_ALLOWED", CANARY);
    let agent = Agent::start_with(command, &["--allow-scheme", "env"]);

    let allowed = agent.get("/v1/secret?ref=env://KS_AGENT_ALLOWED");
    let file = agent.get("/v1/secret?ref=file:///proc/self/environ");

    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.json()["value"], CANARY);
    assert_eq!(file.status, 403, "{}", file.text());
}

#[test]
fn allowed_schemes_setting_replaces_default() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("keystead.toml");
    std::fs::write(&config, "[agent]\nallowed_schemes = [\"env\"]\n").unwrap();
    let mut command = keystead();
    command
        .env("AWS_TOKEN", TOKEN)
        .env("KS_AGENT_CONFIGURED", CANARY)
        .env("KEYSTEAD_CONFIG", &config);
    let agent = Agent::start_with(command, &[]);

    let allowed = agent.get("/v1/secret?ref=env://KS_AGENT_CONFIGURED");
    let remote = agent.get("/v1/secret?ref=aws-sm://anything");

    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.json()["value"], CANARY);
    assert_eq!(remote.status, 403, "{}", remote.text());
    assert_eq!(remote.json()["error"]["class"], "access-denied");
}

#[test]
fn invalid_allowed_scheme_is_usage_error() {
    let mut command = keystead();
    command.env("AWS_TOKEN", TOKEN).args(["agent", "--listen", "127.0.0.1:0", "--allow-scheme", "env/x"]);

    let output = command.output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "keystead: `env/x` is not a reference scheme; write a name such as \"aws-sm\" or \"env\"\n"
    );
}

#[test]
fn non_loopback_listen_warns_at_start() {
    // 192.0.2.1 (TEST-NET-1) is not assigned here, so the bind fails after
    // the warning and no socket is ever opened beyond loopback.
    let mut command = keystead();
    command.env("AWS_TOKEN", TOKEN).args(["agent", "--listen", "192.0.2.1:2773"]);

    let output = command.output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("listens on a non-loopback address").count(), 1, "{stderr}");
    assert!(stderr.contains("192.0.2.1:2773"), "{stderr}");
}

#[test]
fn token_is_required() {
    let name = unique("agent-token");
    moto().create_secret(&name, CANARY);
    let agent = Agent::start(&[]);
    let path = format!("/secretsmanager/get?secretId={name}");

    for headers in [vec![], vec![(TOKEN_HEADER, "wrong")], vec![(TOKEN_HEADER, "")], vec![("X-Other", TOKEN)]] {
        let response = agent.request("GET", &path, &headers);
        assert_eq!(response.status, 403, "{headers:?}");
        assert_eq!(response.json()["__type"], "AccessDeniedException");
        assert!(!response.text().contains(CANARY));
    }
    let vault_header = agent.request("GET", &path, &[("X-Vault-Token", TOKEN)]);
    assert_eq!(vault_header.status, 200);
}

#[test]
fn forwarded_and_non_get_requests_are_rejected() {
    let name = unique("agent-methods");
    moto().create_secret(&name, "x");
    let agent = Agent::start(&[]);
    let path = format!("/secretsmanager/get?secretId={name}");

    let forwarded = agent.request("GET", &path, &[(TOKEN_HEADER, TOKEN), ("X-Forwarded-For", "10.0.0.1")]);
    assert_eq!(forwarded.status, 400);
    assert_eq!(forwarded.json()["__type"], "ForwardedRequestRejected");

    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let response = agent.request(method, &path, &[(TOKEN_HEADER, TOKEN)]);
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("GET"));
        assert!(response.json()["__type"].is_string());
    }
}

#[test]
fn ping_and_metrics_need_no_token() {
    let name = unique("agent-metrics");
    moto().create_secret(&name, "x");
    let agent = Agent::start(&[]);
    agent.get(&format!("/secretsmanager/get?secretId={name}"));
    agent.get(&format!("/secretsmanager/get?secretId={name}"));

    let ping = agent.request("GET", "/ping", &[]);
    assert_eq!((ping.status, ping.text().as_str()), (200, "healthy"));

    let metrics = agent.request("GET", "/metrics", &[]);
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text();
    assert!(text.contains("keystead_cache_hits_total 1\n"), "{text}");
    assert!(text.contains("keystead_cache_misses_total 1\n"), "{text}");
    assert!(text.contains("keystead_agent_responses_total{status=\"200\"} 3\n"), "{text}");
}

#[test]
fn unknown_path_and_parameter_are_rejected() {
    let agent = Agent::start(&[]);
    assert_eq!(agent.get("/nothing/here").status, 404);
    let unknown = agent.get("/secretsmanager/get?secretId=x&color=blue");
    assert_eq!(unknown.status, 400);
    assert!(unknown.json()["message"].as_str().unwrap().contains("color"));
    let role = agent.get("/secretsmanager/get?secretId=x&roleArn=arn:aws:iam::123456789012:role/r");
    assert_eq!(role.status, 400);
    assert_eq!(agent.get("/secretsmanager/get").status, 400);
}

#[test]
fn connection_limit_answers_429() {
    let name = unique("agent-limit");
    moto().create_secret(&name, "x");
    let agent = Agent::start(&["--max-connections", "1"]);
    let path = format!("/secretsmanager/get?secretId={name}");

    let mut held = TcpStream::connect(agent.address).unwrap();
    send_request(&mut held, "GET", &path, &[(TOKEN_HEADER, TOKEN)], b"", false);
    let mut held_reader = BufReader::new(held.try_clone().unwrap());
    assert_eq!(read_response(&mut held_reader).status, 200);

    let rejected = agent.get(&path);
    assert_eq!(rejected.status, 429);
    assert_eq!(rejected.json()["__type"], "TooManyRequestsException");

    drop(held_reader);
    drop(held);
    assert!(support::eventually(|| agent.get(&path).status == 200));
}

#[test]
fn large_body_is_rejected() {
    let agent = Agent::start(&[]);
    let body = vec![b'x'; 5000];
    let response = http(agent.address, "GET", "/secretsmanager/get?secretId=x", &[(TOKEN_HEADER, TOKEN)], &body);
    assert_eq!(response.status, 413);
    assert!(response.json()["__type"].is_string());
}

#[test]
fn token_can_come_from_a_file() {
    let folder = tempfile::tempdir().unwrap();
    let token_file = folder.path().join("token");
    std::fs::write(&token_file, "file-token\n").unwrap();
    let name = unique("agent-token-file");
    moto().create_secret(&name, "x");
    let mut command = keystead();
    command.env("AWS_SESSION_TOKEN", format!("file://{}", token_file.display()));
    let agent = Agent::start_with(command, &[]);

    let path = format!("/secretsmanager/get?secretId={name}");
    assert_eq!(agent.request("GET", &path, &[(TOKEN_HEADER, "file-token")]).status, 200);
    assert_eq!(agent.request("GET", &path, &[(TOKEN_HEADER, TOKEN)]).status, 403);
}

#[test]
fn missing_token_variable_stops_start() {
    let output = keystead().args(["agent", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN"), "{stderr}");
}

#[test]
fn sigterm_stops_cleanly_and_logs_no_value() {
    let name = unique("agent-canary");
    moto().create_secret(&name, CANARY);
    let mut command = keystead();
    command.env("KEYSTEAD_LOG", "trace").env("AWS_TOKEN", TOKEN);
    let mut agent = Agent::start_with(command, &["--prefetch", &format!("aws-sm://{name}")]);
    let body = agent.get(&format!("/secretsmanager/get?secretId={name}")).json();
    assert_eq!(body["SecretString"], CANARY);
    agent.get(&format!("/v1/secret?ref=aws-sm://{name}"));

    agent.running.signal(libc::SIGTERM);

    assert_eq!(agent.running.wait_exit(), Some(0));
    assert!(agent.running.stderr.text().contains("prefetched"), "{}", agent.running.stderr.text());
    assert!(!agent.running.stderr.text().contains(CANARY));
    assert!(!agent.running.stdout.text().contains(CANARY));
}

#[test]
fn port_comes_from_the_extension_variable() {
    let port = support::free_port();
    let mut command = keystead();
    command
        .args(["agent"])
        .env("AWS_TOKEN", TOKEN)
        .env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.to_string());
    let running = Running::spawn(command);
    let address = agent_address(&running.stdout);
    assert_eq!(address, SocketAddr::from(([127, 0, 0, 1], port)));
}

/// What the fake Extensions API saw and got.
#[derive(Default)]
struct ExtensionsLog {
    registered_name: Option<String>,
    /// The agent's response to a request made while it registered, before
    /// its init phase ended.
    during_register: Option<(u16, Value)>,
    /// The agent's response to a request made during the INVOKE event.
    during_invoke: Option<(u16, Value)>,
    next_calls: usize,
    identifier_ok: bool,
}

/// A local fake of the Lambda Extensions API: register, then
/// `event/next` answering INVOKE once and SHUTDOWN after it.
fn fake_extensions_api(agent_address: SocketAddr, secret_path: String) -> (SocketAddr, Arc<Mutex<ExtensionsLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(ExtensionsLog::default()));
    let shared = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (method, path, headers, _) = read_request(&mut reader);
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(known, _)| known.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.clone())
            };
            let mut stream = stream;
            let agent_answer = || {
                let response = http(agent_address, "GET", &secret_path, &[(TOKEN_HEADER, TOKEN)], b"");
                let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
                (response.status, body)
            };
            match (method.as_str(), path.as_str()) {
                ("POST", "/2020-01-01/extension/register") => {
                    let answer = agent_answer();
                    let mut log = shared.lock().unwrap();
                    log.registered_name = header("Lambda-Extension-Name");
                    log.during_register = Some(answer);
                    drop(log);
                    respond(
                        &mut stream,
                        &[("Lambda-Extension-Identifier", "ext-id-1")],
                        r#"{"functionName":"f","functionVersion":"$LATEST","handler":"h"}"#,
                    );
                }
                ("GET", "/2020-01-01/extension/event/next") => {
                    let calls = {
                        let mut log = shared.lock().unwrap();
                        log.next_calls += 1;
                        log.identifier_ok = header("Lambda-Extension-Identifier").as_deref() == Some("ext-id-1");
                        log.next_calls
                    };
                    if calls == 1 {
                        let answer = agent_answer();
                        shared.lock().unwrap().during_invoke = Some(answer);
                        respond(
                            &mut stream,
                            &[],
                            r#"{"eventType":"INVOKE","deadlineMs":4102444800000,"requestId":"req-1","invokedFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:f","tracing":{}}"#,
                        );
                    } else {
                        respond(
                            &mut stream,
                            &[],
                            r#"{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":4102444800000}"#,
                        );
                    }
                }
                _ => respond(&mut stream, &[], "{}"),
            }
        }
    });
    (address, log)
}

fn read_request(reader: &mut impl BufRead) -> (String, String, Vec<(String, String)>, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body).unwrap();
    (method, path, headers, body)
}

fn respond(stream: &mut TcpStream, headers: &[(&str, &str)], body: &str) {
    let mut text = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).unwrap();
    stream.flush().unwrap();
}

#[test]
fn lambda_extension_lifecycle() {
    let name = unique("agent-lambda");
    moto().create_secret(&name, "lambda-value");
    let agent_port = support::free_port();
    let agent_address = SocketAddr::from(([127, 0, 0, 1], agent_port));
    let (api_address, log) = fake_extensions_api(agent_address, format!("/secretsmanager/get?secretId={name}"));

    let mut command = keystead();
    command
        .args(["agent", "--lambda-extension", "--lambda-extension-name", "keystead-agent"])
        .args(["--listen", &agent_address.to_string()])
        .env("AWS_TOKEN", TOKEN)
        .env("AWS_LAMBDA_RUNTIME_API", api_address.to_string());
    let mut running = Running::spawn(command);

    assert_eq!(running.wait_exit(), Some(0), "{}", running.stderr.text());
    let log = log.lock().unwrap();
    assert_eq!(log.registered_name.as_deref(), Some("keystead-agent"));
    let (status, body) = log.during_register.clone().expect("the fake asked the agent during register");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SecretString"], "lambda-value");
    let (status, body) = log.during_invoke.clone().expect("the fake asked the agent during invoke");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SecretString"], "lambda-value");
    assert_eq!(log.next_calls, 2);
    assert!(log.identifier_ok);
    assert!(running.stderr.text().contains("shutdown event"), "{}", running.stderr.text());
}

#[test]
fn lambda_extension_without_runtime_api_fails() {
    let output = keystead()
        .args(["agent", "--listen", "127.0.0.1:0", "--lambda-extension"])
        .env("AWS_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AWS_LAMBDA_RUNTIME_API"));
}
