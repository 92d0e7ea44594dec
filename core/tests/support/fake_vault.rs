//! A small in-process fake Vault: hand-written HTTP/1.1 on a tokio
//! listener at 127.0.0.1, for behaviour a real server cannot be made to
//! show on demand (slow responses, dropped connections, a lease that vanishes
//! between renewals, a maximum TTL reached within seconds).
//!
//! Each test gives a handler that maps a request to a [`FakeReply`]; the
//! handler keeps whatever state the scenario needs. Every response closes
//! its connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the fake does with one request.
#[derive(Clone, Debug)]
pub enum FakeReply {
    /// A JSON response.
    Json(u16, Value),
    /// An empty response, as Vault sends for 204.
    Empty(u16),
    /// Waits, then does the inner reply.
    Delay(Duration, Box<FakeReply>),
    /// Closes the connection without a response.
    Drop,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct FakeRequest {
    pub method: String,
    /// The path after `/v1/`, without the query.
    pub path: String,
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
}

impl FakeRequest {
    /// Returns a header's value, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the `X-Vault-Token` header.
    pub fn token(&self) -> Option<&str> {
        self.header("x-vault-token")
    }
}

type Handler = dyn Fn(&FakeRequest) -> FakeReply + Send + Sync;

/// A running fake.
pub struct FakeVault {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    received: Arc<Mutex<Vec<FakeRequest>>>,
    task: JoinHandle<()>,
}

impl FakeVault {
    /// Starts the fake with `handler`.
    pub async fn start(handler: impl Fn(&FakeRequest) -> FakeReply + Send + Sync + 'static) -> FakeVault {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = format!("http://{}", listener.local_addr().expect("the listener has an address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                tokio::spawn(serve(stream, handler, log));
            }
        });
        FakeVault { address, received, task }
    }

    /// Returns every request so far.
    pub fn received(&self) -> Vec<FakeRequest> {
        self.received.lock().expect("the request log lock is not poisoned").clone()
    }

    /// Requests to `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.received().iter().filter(|request| request.path == path).count()
    }
}

impl Drop for FakeVault {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, log: Arc<Mutex<Vec<FakeRequest>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    log.lock().expect("the request log lock is not poisoned").push(request.clone());
    let mut reply = handler(&request);
    loop {
        match reply {
            FakeReply::Delay(wait, inner) => {
                tokio::time::sleep(wait).await;
                reply = *inner;
            }
            FakeReply::Drop => return,
            FakeReply::Json(status, body) => {
                let text = body.to_string();
                write_response(&mut stream, status, &text).await;
                return;
            }
            FakeReply::Empty(status) => {
                write_response(&mut stream, status, "").await;
                return;
            }
        }
    }
}

async fn write_response(stream: &mut TcpStream, status: u16, body: &str) {
    let response = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<FakeRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = serde_json::from_slice(&buffer[head_end..head_end + length]).unwrap_or(Value::Null);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target, String::new()),
    };
    Some(FakeRequest {
        method,
        path: path.trim_start_matches("/v1/").to_owned(),
        query,
        headers,
        body,
        at: Instant::now(),
    })
}
