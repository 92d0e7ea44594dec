//! Load and cold-start benchmark of `keystead agent` beside the AWS
//! Secrets Manager Agent, both serving the same moto secret on loopback in
//! the same run.
//!
//! Run it with `bash scripts/bench-agent.sh`, which installs the AWS agent
//! and builds the Rust Lambda example. Settings (environment variables):
//! * `AWS_SM_AGENT_BIN`: the AWS agent's binary (required).
//! * `KEYSTEAD_LAMBDA_BOOTSTRAP`: the Rust Lambda example's binary; its
//!   cold start is measured when set.
//! * `BENCH_ROUNDS` (3), `BENCH_SINGLE_REQUESTS` (20000),
//!   `BENCH_CONNECTIONS` (64), `BENCH_SECONDS` (5), `BENCH_COLD_STARTS` (10).
//!
//! Each round measures both agents one after the other, alternating which
//! goes first; the table shows the median of the rounds. The client runs
//! on one thread, so on a two-core machine each agent has about one core
//! of its own.

mod cold_start;
mod http;
mod load;
mod servers;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::http::{get_request, Connection};
use crate::load::Measured;
use crate::servers::{Agent, Binaries, Kind, Moto, TOKEN};

const SECRET_NAME: &str = "bench/orders-db";
const SECRET_VALUE: &str = r#"{"engine":"postgres","host":"orders.cluster-abc.eu-west-1.rds.amazonaws.com","port":5432,"username":"orders_app","password":"Zt7#kq9!vR2mW8xL4pN6"}"#;
const WARMUP_REQUESTS: usize = 2000;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let binaries = Binaries {
        keystead: PathBuf::from(env!("CARGO_BIN_EXE_keystead")),
        aws_agent: PathBuf::from(std::env::var("AWS_SM_AGENT_BIN").expect("set AWS_SM_AGENT_BIN to the AWS agent's binary")),
    };
    let rounds = setting("BENCH_ROUNDS", 3);
    let single_requests = setting("BENCH_SINGLE_REQUESTS", 20_000);
    let connections = setting("BENCH_CONNECTIONS", 64);
    let seconds = setting("BENCH_SECONDS", 5);
    let cold_starts = setting("BENCH_COLD_STARTS", 10);

    let moto = Moto::start(&root).await;
    moto.call(
        "secretsmanager.CreateSecret",
        &serde_json::json!({ "Name": SECRET_NAME, "SecretString": SECRET_VALUE }).to_string(),
    )
    .await;
    let path = format!("/secretsmanager/get?secretId={}", SECRET_NAME.replace('/', "%2F"));
    let request = get_request(&path, TOKEN);

    compare_shapes(&binaries, &moto, &path).await;

    let kinds = [Kind::Keystead, Kind::AwsAgent];
    let mut single: Vec<Vec<Measured>> = vec![Vec::new(), Vec::new()];
    let mut many: Vec<Vec<Measured>> = vec![Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 { vec![0, 1] } else { vec![1, 0] };
        for index in order {
            let kind = kinds[index];
            let (agent, _) = Agent::start(kind, &binaries, &moto).await;
            agent.first_answer(&path).await;
            load::one_connection(agent.address, &request, WARMUP_REQUESTS).await;
            let one = load::one_connection(agent.address, &request, single_requests).await;
            let spread = load::many_connections(
                agent.address,
                &request,
                connections,
                Duration::from_secs(seconds as u64),
                5_000_000,
            )
            .await;
            eprintln!(
                "round {}: {:<32} one connection p50 {:>7.1} us p99 {:>7.1} us {:>8.0}/s | {connections} connections p50 {:>7.1} us p99 {:>7.1} us {:>8.0}/s",
                round + 1,
                kind.label(),
                micros(one.p50),
                micros(one.p99),
                one.per_second,
                micros(spread.p50),
                micros(spread.p99),
                spread.per_second,
            );
            single[index].push(one);
            many[index].push(spread);
            agent.stop().await;
        }
    }

    println!("\n## Warm reads (median of {rounds} rounds)\n");
    println!("| agent | connections | requests | p50 | p99 | requests/s |");
    println!("|---|---|---|---|---|---|");
    for (index, kind) in kinds.iter().enumerate() {
        for (label, runs) in [("1", &single[index]), (connections.to_string().as_str(), &many[index])] {
            let median = load::median(runs);
            println!(
                "| {} | {label} | {} | {:.1} µs | {:.1} µs | {:.0} |",
                kind.label(),
                median.requests,
                micros(median.p50),
                micros(median.p99),
                median.per_second
            );
        }
    }

    println!("\n## Cold start: process start to first secret ({cold_starts} runs, median [min–max])\n");
    println!("| process | median | min | max |");
    println!("|---|---|---|---|");
    for kind in kinds {
        let durations = cold_start::agent(kind, &binaries, &moto, &path, cold_starts).await;
        let (median, min, max) = cold_start::spread(&durations);
        println!("| {} | {median:.1} ms | {min:.1} ms | {max:.1} ms |", kind.label());
    }
    if let Ok(bootstrap) = std::env::var("KEYSTEAD_LAMBDA_BOOTSTRAP") {
        moto.call(
            "secretsmanager.CreateSecret",
            &serde_json::json!({ "Name": "bench/api-key", "SecretString": "bench-api-key" }).to_string(),
        )
        .await;
        let starts = cold_start::lambda(
            &PathBuf::from(bootstrap),
            &moto,
            "aws-sm://bench/api-key",
            &format!("aws-sm://{SECRET_NAME}"),
            cold_starts,
        );
        let init: Vec<Duration> = starts.iter().map(|start| start.init).collect();
        let answer: Vec<Duration> = starts.iter().map(|start| start.first_answer).collect();
        let (median, min, max) = cold_start::spread(&init);
        println!("| Rust Lambda example: init with prefetch (to first /next) | {median:.1} ms | {min:.1} ms | {max:.1} ms |");
        let (median, min, max) = cold_start::spread(&answer);
        println!("| Rust Lambda example: first invocation answered | {median:.1} ms | {min:.1} ms | {max:.1} ms |");
    }
}

/// Checks that both agents return the secret with the same field names and
/// JSON types, and prints the comparison.
async fn compare_shapes(binaries: &Binaries, moto: &Moto, path: &str) {
    let mut shapes = Vec::new();
    for kind in [Kind::Keystead, Kind::AwsAgent] {
        let (agent, _) = Agent::start(kind, binaries, moto).await;
        agent.first_answer(path).await;
        let mut connection = Connection::open(agent.address).await.unwrap();
        let answer = connection.fetch(&get_request(path, TOKEN)).await.unwrap();
        let body: Value = serde_json::from_slice(&answer.body).expect("the response body is JSON");
        let shape: Vec<(String, &'static str)> = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| (key.clone(), json_type(value)))
            .collect();
        let mut shape = shape;
        shape.sort();
        eprintln!("{}: {shape:?}", kind.label());
        shapes.push(shape);
        agent.stop().await;
    }
    assert_eq!(shapes[0], shapes[1], "the two agents answer with different shapes");
    eprintln!("response shapes match: same field names and JSON types");
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
