//! Cold start: from process start to the first secret served.
//!
//! For the agents, the clock runs from spawning the process to the first
//! 200 response for the secret (a load from moto included). For the Rust
//! Lambda example, a local fake of the Lambda Runtime API hands the
//! function one invocation; the clock runs from spawning `bootstrap` to its
//! first `/next` call (init done, secrets prefetched) and to its answer to
//! that invocation (the first secret used).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::servers::{Agent, Binaries, Kind, Moto};

/// Runs the agent's cold start `runs` times; returns each duration.
pub async fn agent(kind: Kind, binaries: &Binaries, moto: &Moto, path: &str, runs: usize) -> Vec<Duration> {
    let mut durations = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (agent, started) = Agent::start(kind, binaries, moto).await;
        let answered = agent.first_answer(path).await;
        durations.push(answered - started);
        agent.stop().await;
    }
    durations
}

/// Timings of one Lambda cold start.
pub struct LambdaStart {
    pub init: Duration,
    pub first_answer: Duration,
}

/// Runs the Lambda example's cold start `runs` times.
pub fn lambda(bootstrap: &Path, moto: &Moto, api_key_ref: &str, db_secret_ref: &str, runs: usize) -> Vec<LambdaStart> {
    (0..runs)
        .map(|_| lambda_once(bootstrap, moto, api_key_ref, db_secret_ref))
        .collect()
}

fn lambda_once(bootstrap: &Path, moto: &Moto, api_key_ref: &str, db_secret_ref: &str) -> LambdaStart {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = listener.local_addr().unwrap();
    let (events, received) = mpsc::channel();
    std::thread::spawn(move || fake_runtime_api(listener, events));

    let started = Instant::now();
    let mut child = Command::new(bootstrap)
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("API_KEY_REF", api_key_ref)
        .env("DB_SECRET_REF", db_secret_ref)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("KEYSTEAD_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the Lambda example starts");

    let mut init = None;
    let mut first_answer = None;
    while first_answer.is_none() {
        match received.recv_timeout(Duration::from_secs(30)).expect("the fake Runtime API hears from the function") {
            RuntimeEvent::FirstNext(at) => init = Some(at - started),
            RuntimeEvent::Answer(at, body) => {
                assert!(body.contains("\"statusCode\":200"), "unexpected response: {body}");
                first_answer = Some(at - started);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    LambdaStart {
        init: init.expect("init finished before the first response"),
        first_answer: first_answer.unwrap_or_default(),
    }
}

enum RuntimeEvent {
    FirstNext(Instant),
    Answer(Instant, String),
}

/// Serves `/next` once with an event carrying the right API key, records
/// the function's response, and leaves the second `/next` unanswered.
fn fake_runtime_api(listener: TcpListener, events: mpsc::Sender<RuntimeEvent>) {
    let mut next_calls = 0;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        // The runtime client keeps its connection alive between calls.
        while let Some((method, path, body)) = read_request(&mut reader) {
            if method == "GET" && path.ends_with("/runtime/invocation/next") {
                next_calls += 1;
                if next_calls > 1 {
                    return;
                }
                let _ = events.send(RuntimeEvent::FirstNext(Instant::now()));
                let event = r#"{"headers":{"x-api-key":"bench-api-key"}}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Lambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: 4102444800000\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\r\n",
                    event.len()
                );
                let _ = writer.write_all(head.as_bytes());
                let _ = writer.write_all(event.as_bytes());
            } else {
                if path.ends_with("/response") {
                    let _ = events.send(RuntimeEvent::Answer(Instant::now(), String::from_utf8_lossy(&body).into_owned()));
                }
                let _ = writer.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            }
        }
    }
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
    let mut chunked = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        }
        if name.eq_ignore_ascii_case("transfer-encoding") && value.trim().eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path, body))
}

/// Median, minimum and maximum, in milliseconds.
pub fn spread(durations: &[Duration]) -> (f64, f64, f64) {
    let mut millis: Vec<f64> = durations.iter().map(|duration| duration.as_secs_f64() * 1000.0).collect();
    millis.sort_by(f64::total_cmp);
    (millis[millis.len() / 2], millis[0], millis[millis.len() - 1])
}
