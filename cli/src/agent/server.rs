//! The accept loop: one HTTP/1.1 connection per task, under a connection
//! limit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::agent::response;
use crate::agent::routes::{self, AgentState};

/// Largest request head (request line and headers) read, in bytes. The
/// agent's requests are a short GET with a few headers; hyper's minimum
/// buffer is 8 KiB.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Pause after a failed accept (for example out of file descriptors), so
/// that the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Connection settings of the server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
}

/// Serves `listener` until `stop` turns true.
pub(crate) async fn serve(listener: TcpListener, state: Arc<AgentState>, limits: Limits, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(error = %error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        prepare(&stream);

        let state = Arc::clone(&state);
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    state.counters.open_connections.fetch_add(1, Ordering::Relaxed);
                    serve_connection(stream, &state, limits).await;
                    state.counters.open_connections.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            Err(_) => {
                state.counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(reject_connection(stream, state, limits));
            }
        }
    }
}

fn prepare(stream: &TcpStream) {
    // Small responses go out at once instead of waiting for Nagle's timer.
    let _ = stream.set_nodelay(true);
    // Responses die after one hop, as on the AWS agent. A request relayed
    // from another host by a misconfigured proxy cannot get its response.
    let _ = stream.set_ttl(1);
}

async fn serve_connection(stream: TcpStream, state: &Arc<AgentState>, limits: Limits) {
    let service = service_fn(|request| {
        let state = Arc::clone(state);
        async move { Ok::<_, std::convert::Infallible>(routes::handle(&state, request).await) }
    });
    let connection = builder(limits).serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(error = %error, "a connection ended with an error");
    }
}

/// Responds 429 to every request on a connection over the limit, then
/// closes it.
async fn reject_connection(stream: TcpStream, state: Arc<AgentState>, limits: Limits) {
    let service = service_fn(|_request| {
        state.counters.count_response(StatusCode::TOO_MANY_REQUESTS);
        async {
            Ok::<_, std::convert::Infallible>(response::aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "the agent's connection limit is reached; retry later",
            ))
        }
    });
    let mut builder = builder(limits);
    builder.keep_alive(false);
    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
}

fn builder(limits: Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
}
