//! A scripted HTTP/1.1 server on 127.0.0.1 for what moto cannot do:
//! throttling, server errors, hung responses and dropped connections, and
//! fake container-credentials and instance-metadata endpoints.
//!
//! Every request is read in full, counted and recorded, then given the
//! reply the script returns for that request's number (starting at 1). Each
//! response closes its connection, so every attempt a client makes is a
//! new connection and one counted request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The server's reply to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Read the request and never respond, holding the connection open.
    Hang,
    /// Read the request and close the connection without a response.
    Drop,
}

impl Reply {
    /// Builds a response with a JSON body.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("Content-Type".to_owned(), "application/x-amz-json-1.1".to_owned())],
            body: body.to_owned(),
        }
    }

    /// Builds a plain-text response.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
            body: body.to_owned(),
        }
    }

    /// Secrets Manager's throttling answer: HTTP 400 with
    /// `ThrottlingException`, as the service sends when a caller exceeds
    /// its request quota.
    pub fn throttling() -> Reply {
        Reply::json(400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// Returns the value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

type Script = dyn Fn(usize, &Received) -> Reply + Send + Sync;

/// A running scripted server; it stops when dropped.
pub struct FaultServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub endpoint: String,
    requests: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl FaultServer {
    /// Starts a server that answers request number `n` (from 1) with
    /// `script(n, request)`. Must be called inside a tokio runtime.
    pub async fn start(script: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("the listener has an address"));
        let requests = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);

        let task = tokio::spawn({
            let requests = Arc::clone(&requests);
            let received = Arc::clone(&received);
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    tokio::spawn(serve(stream, Arc::clone(&script), Arc::clone(&requests), Arc::clone(&received)));
                }
            }
        });

        FaultServer {
            endpoint,
            requests,
            received,
            task,
        }
    }

    /// Starts a server that gives every request the same reply.
    pub async fn always(reply: Reply) -> FaultServer {
        FaultServer::start(move |_, _| reply.clone()).await
    }

    /// Returns how many requests were read in full.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Returns every request read so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("the request log is not poisoned").clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Script>, requests: Arc<AtomicUsize>, received: Arc<Mutex<Vec<Received>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let number = requests.fetch_add(1, Ordering::SeqCst) + 1;
    received.lock().expect("the request log is not poisoned").push(request.clone());

    match script(number, &request) {
        Reply::Respond { status, headers, body } => {
            let mut response = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => {
            // Keep the socket open until the client gives up and the
            // server task is dropped.
            std::future::pending::<()>().await;
        }
        Reply::Drop => drop(stream),
    }
}

/// Reads one request: the head up to the blank line, then
/// `Content-Length` bytes of body.
async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };

    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);

    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
