//! The load: warm reads of one secret, on one connection or on many at
//! once, with every request's latency recorded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::http::Connection;

/// Latency and throughput of one run.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub requests: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub per_second: f64,
}

/// `count` requests one after another on one keep-alive connection.
pub async fn one_connection(address: SocketAddr, request: &[u8], count: usize) -> Measured {
    let mut connection = Connection::open(address).await.expect("the agent accepts");
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let sent = Instant::now();
        let (status, _) = connection.round_trip(request).await.expect("the agent responds");
        latencies.push(sent.elapsed());
        assert_eq!(status, 200);
    }
    summarize(latencies, started.elapsed())
}

/// `connections` keep-alive connections, each sending one request after
/// another, for `duration` (or until `max_requests` in all).
pub async fn many_connections(
    address: SocketAddr,
    request: &[u8],
    connections: usize,
    duration: Duration,
    max_requests: usize,
) -> Measured {
    let per_connection = max_requests / connections;
    let mut tasks = Vec::with_capacity(connections);
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(address).await.expect("the agent accepts"));
    }

    let started = Instant::now();
    let stop_at = started + duration;
    for mut connection in opened {
        let request = request.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_connection);
            while latencies.len() < per_connection && Instant::now() < stop_at {
                let sent = Instant::now();
                let (status, _) = connection.round_trip(&request).await.expect("the agent responds");
                latencies.push(sent.elapsed());
                assert_eq!(status, 200);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    summarize(latencies, started.elapsed())
}

fn summarize(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
    latencies.sort_unstable();
    let percentile = |fraction: f64| latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)];
    Measured {
        requests: latencies.len(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// Takes the median of several runs, per figure.
pub fn median(runs: &[Measured]) -> Measured {
    let middle = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Measured {
        requests: runs.iter().map(|run| run.requests).sum(),
        p50: Duration::from_secs_f64(middle(runs.iter().map(|run| run.p50.as_secs_f64()).collect())),
        p99: Duration::from_secs_f64(middle(runs.iter().map(|run| run.p99.as_secs_f64()).collect())),
        per_second: middle(runs.iter().map(|run| run.per_second).collect()),
    }
}
