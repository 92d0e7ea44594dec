//! The Rust Lambda example run as Lambda runs it: the `bootstrap` binary
//! against a local fake of the Lambda Runtime API, reading its secrets
//! from moto.

#[path = "../../../cli/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use support::{aws_command, moto, unique};

/// What the fake Runtime API received.
enum Received {
    /// The function asked for its next event.
    Next,
    /// The function returned its response to an invocation.
    Answer(String, Value),
}

/// Hands out `events` in order (request ids `req-1`, `req-2`, ...), then
/// leaves the following `/next` unanswered.
fn fake_runtime_api(events: Vec<String>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut handed_out = 0;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            while let Some((method, path, body)) = read_request(&mut reader) {
                if method == "GET" && path.ends_with("/runtime/invocation/next") {
                    let _ = sender.send(Received::Next);
                    let Some(event) = events.get(handed_out) else { return };
                    handed_out += 1;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Lambda-Runtime-Aws-Request-Id: req-{handed_out}\r\nLambda-Runtime-Deadline-Ms: 4102444800000\r\n\
                         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:example\r\n\r\n",
                        event.len()
                    );
                    writer.write_all(head.as_bytes()).unwrap();
                    writer.write_all(event.as_bytes()).unwrap();
                } else {
                    let request_id = path.split('/').nth(4).unwrap_or_default().to_owned();
                    let answer = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = sender.send(Received::Answer(request_id, answer));
                    writer.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").unwrap();
                }
            }
        }
    });
    (address, receiver)
}

fn read_request(reader: &mut impl BufRead) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

#[test]
fn answers_with_secrets_read_through_keystead() {
    let api_key = unique("lambda-api-key");
    let database = unique("lambda-db");
    moto().create_secret(&api_key, "k3y");
    moto().create_secret(&database, r#"{"username": "orders_app", "password": "pw-123456"}"#);
    let (api, received) = fake_runtime_api(vec![
        r#"{"headers": {"X-Api-Key": "k3y"}}"#.to_owned(),
        r#"{"headers": {"x-api-key": "wrong"}}"#.to_owned(),
    ]);

    let mut child = aws_command(env!("CARGO_BIN_EXE_bootstrap"))
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "example")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("API_KEY_REF", format!("aws-sm://{api_key}"))
        .env("DB_SECRET_REF", format!("aws-sm://{database}"))
        .env_remove("KEYSTEAD_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let mut answers = Vec::new();
    while answers.len() < 2 {
        match received.recv_timeout(Duration::from_secs(30)).expect("the function calls the Runtime API") {
            Received::Next => {}
            Received::Answer(request_id, answer) => answers.push((request_id, answer)),
        }
    }
    let _ = child.kill();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let _ = child.wait();

    let (request_id, accepted) = &answers[0];
    assert_eq!(request_id, "req-1");
    assert_eq!(accepted["statusCode"], 200, "{accepted}");
    let body: Value = serde_json::from_str(accepted["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["connection"]["user"], "orders_app");
    assert_eq!(body["connection"]["password_length"], 9);
    assert_eq!(body["api_key_version"], moto().get_secret(&api_key)["VersionId"]);
    assert!(!accepted.to_string().contains("pw-123456"));

    let (request_id, rejected) = &answers[1];
    assert_eq!(request_id, "req-2");
    assert_eq!(rejected["statusCode"], 401);

    assert!(stderr.contains("init prefetch finished"), "{stderr}");
    assert!(!stderr.contains("pw-123456"), "{stderr}");
    assert!(!stderr.contains("k3y"), "{stderr}");
}
