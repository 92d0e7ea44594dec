//! A timeline of keystead reading a secret from a local AWS Secrets Manager
//! emulator: a cold read, cache hits, a rotation picked up in the
//! background, and an outage ridden out on the last good value.
//!
//! Run it with `bash scripts/demo.sh`, which starts moto on loopback and
//! sets `KEYSTEAD_DEMO_ENDPOINT` to it. The demo puts a small TCP relay
//! between keystead and moto so that it can cut the connection to play an
//! outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keystead::{AuditEventKind, Client, Config};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// TTL of the demo secret: short, so the timeline fits in a few seconds.
const TTL: Duration = Duration::from_secs(3);
const SECRET_NAME: &str = "demo/orders-db";

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("demo failed: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let endpoint = std::env::var("KEYSTEAD_DEMO_ENDPOINT")
        .map_err(|_| "KEYSTEAD_DEMO_ENDPOINT is not set; run `bash scripts/demo.sh`".to_owned())?;
    let started = Instant::now();
    let say = |line: String| println!("[{:>6.2}s] {line}", started.elapsed().as_secs_f64());

    let backend = Backend::new(&endpoint);
    backend
        .call("CreateSecret", serde_json::json!({
            "Name": SECRET_NAME,
            "SecretString": r#"{"username":"orders","password":"first-password"}"#,
        }))
        .await?;
    say(format!("seeded {SECRET_NAME} in the emulator at {endpoint}"));

    let relay = Relay::start(&endpoint).await?;
    let mut config = Config::default();
    config.cache.ttl = TTL;
    config.cache.max_stale = Duration::from_secs(60);
    config.cache.error_backoff_base = Duration::from_millis(500);
    config.cache.error_backoff_max = Duration::from_secs(2);
    config.aws.endpoint_url = Some(relay.url());
    config.aws.max_attempts = 1;
    config.aws.connect_timeout = Duration::from_millis(300);
    config.aws.attempt_timeout = Duration::from_secs(1);

    let (audit_sender, mut audit_events) = mpsc::unbounded_channel();
    let client = Client::builder()
        .config(config)
        .audit_hook(move |event| {
            let detail = match (event.kind, event.error_class) {
                (_, Some(class)) => class.as_str().to_owned(),
                _ => event.version_id.clone().unwrap_or_default(),
            };
            let _ = audit_sender.send((event.kind, detail));
        })
        .build()
        .map_err(|error| error.to_string())?;
    let reference = format!("aws-sm://{SECRET_NAME}#password");

    // 1. Cold read: one GetSecretValue call.
    let cold = Instant::now();
    let secret = client.get(&reference).await.map_err(|error| error.to_string())?;
    say(format!(
        "cold read took {:.1} ms; version {}",
        cold.elapsed().as_secs_f64() * 1e3,
        secret.metadata().version_id.as_deref().unwrap_or("?")
    ));
    say(format!("Debug output is redacted: {secret:?}"));
    say(format!("revealed on purpose: {}", secret.expose_str().map_err(|error| error.to_string())?));

    // 2. Warm reads: no backend calls.
    let handle = client.handle(&reference).map_err(|error| error.to_string())?;
    let reads = 1_000_000u32;
    let warm = Instant::now();
    for _ in 0..reads {
        std::hint::black_box(handle.current());
    }
    let per_read = warm.elapsed().as_nanos() as f64 / f64::from(reads);
    let metrics = client.metrics();
    say(format!(
        "{reads} warm reads through a handle: {per_read:.1} ns each in this debug build (release figures: BENCHMARKS.md); backend calls so far: {}",
        metrics.backend_calls
    ));

    // 3. Rotation: a new version appears; the background refresh finds it.
    let (rotated_sender, mut rotated) = mpsc::unbounded_channel();
    let _subscription = client
        .subscribe(&reference, move |event| {
            let version = event
                .secret
                .as_ref()
                .ok()
                .and_then(|secret| secret.metadata().version_id.clone());
            let _ = rotated_sender.send(version);
        })
        .map_err(|error| error.to_string())?;
    backend
        .call("PutSecretValue", serde_json::json!({
            "SecretId": SECRET_NAME,
            "SecretString": r#"{"username":"orders","password":"second-password"}"#,
        }))
        .await?;
    say("rotated the secret in the emulator; readers keep the old value until the refresh".into());
    let version = tokio::time::timeout(TTL * 3, rotated.recv())
        .await
        .map_err(|_| "the rotation was not picked up in time".to_owned())?
        .flatten();
    let current = client.get(&reference).await.map_err(|error| error.to_string())?;
    say(format!(
        "subscriber heard of version {}; readers now get: {}",
        version.as_deref().unwrap_or("?"),
        current.expose_str().map_err(|error| error.to_string())?
    ));

    // 4. Outage: the backend becomes unreachable; reads keep working.
    relay.set_down(true);
    say("backend is now unreachable".into());
    tokio::time::sleep(TTL + Duration::from_secs(1)).await;
    let during = client.get(&reference).await.map_err(|error| error.to_string())?;
    let metrics = client.metrics();
    say(format!(
        "past the TTL with the backend down, reads still return the last good value ({}); stale serves: {}, unavailable errors: {}",
        during.expose_str().map_err(|error| error.to_string())?,
        metrics.stale_serves,
        metrics.errors_of(keystead::ErrorClass::Unavailable)
    ));

    relay.set_down(false);
    let recovered = client.refresh(&reference).await.map_err(|error| error.to_string())?;
    say(format!(
        "backend is back; an explicit refresh loaded version {}",
        recovered.metadata().version_id.as_deref().unwrap_or("?")
    ));

    // 5. The audit feed, as a SIEM would receive it.
    client.close();
    while let Ok((kind, detail)) = audit_events.try_recv() {
        if kind == AuditEventKind::Refreshed {
            continue;
        }
        let detail = if detail.is_empty() { "(cleared on close)".to_owned() } else { detail };
        say(format!("audit: {} {detail}", kind.as_str()));
    }
    let metrics = client.metrics();
    say(format!(
        "totals: {} hits, {} misses, {} backend calls, {} rotations, {} stale serves",
        metrics.hits, metrics.misses, metrics.backend_calls, metrics.rotations, metrics.stale_serves
    ));
    Ok(())
}

/// Seeds the emulator with unsigned AWS JSON calls, which moto accepts
/// because it checks signatures only when configured to.
struct Backend {
    http: reqwest::Client,
    endpoint: String,
}

impl Backend {
    fn new(endpoint: &str) -> Backend {
        Backend {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_owned(),
        }
    }

    async fn call(&self, action: &str, body: serde_json::Value) -> Result<(), String> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("X-Amz-Target", format!("secretsmanager.{action}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=demo/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|error| format!("{action} failed: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("{action} returned {}", response.status()));
        }
        Ok(())
    }
}

/// A TCP relay to the emulator that can drop every connection, to play an
/// outage.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
}

impl Relay {
    async fn start(endpoint: &str) -> Result<Relay, String> {
        let target = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| format!("cannot start the relay: {error}"))?;
        let port = listener.local_addr().map_err(|error| error.to_string())?.port();
        let down = Arc::new(AtomicBool::new(false));
        let relay_down = down.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if relay_down.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(Relay { port, down })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}
