//! Warm reads of one AWS Secrets Manager secret, served by a moto server
//! this benchmark starts on loopback: keystead by reference, keystead
//! through a held handle, and the `aws_secretsmanager_caching` crate's warm
//! hit as the anchor, all in the same process and run.
//!
//! Run: `bash scripts/setup.sh && cargo bench -p keystead-benches`.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_secretsmanager_caching::SecretsManagerCachingClient;
use criterion::{criterion_group, criterion_main, Criterion};

const SECRET_NAME: &str = "bench/warm-read";
const REFERENCE: &str = "aws-sm://bench/warm-read";

/// A moto server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let binary = std::env::var_os("KEYSTEAD_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/moto_server"));
        assert!(binary.exists(), "{} is missing; run scripts/setup.sh", binary.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free loopback port");
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn seed(endpoint: &str) {
    let body = serde_json::json!({"Name": SECRET_NAME, "SecretString": "{\"password\":\"bench-value\"}"});
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("X-Amz-Target", "secretsmanager.CreateSecret")
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("CreateSecret reaches moto");
    assert!(response.status().is_success(), "CreateSecret returned {}", response.status());
}

fn warm_reads(criterion: &mut Criterion) {
    std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    let moto = Moto::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(seed(&moto.endpoint));

    let (keystead, aws) = runtime.block_on(async {
        let mut config = keystead::Config::default();
        config.aws.endpoint_url = Some(moto.endpoint.clone());
        config.cache.ttl = Duration::from_secs(3600);
        let keystead = keystead::Client::builder().config(config).build().expect("keystead client");
        keystead.get(REFERENCE).await.expect("keystead reads the secret");

        let sdk_config = aws_config::from_env().endpoint_url(&moto.endpoint).load().await;
        let builder = aws_sdk_secretsmanager::config::Builder::from(&sdk_config);
        let aws = SecretsManagerCachingClient::from_builder(
            builder,
            NonZeroUsize::new(1000).expect("nonzero"),
            Duration::from_secs(3600),
            false,
        )
        .await
        .expect("AWS caching client");
        aws.get_secret_value(SECRET_NAME, None, None, false)
            .await
            .expect("the AWS cache reads the secret");
        (keystead, aws)
    });
    let handle = keystead.handle(REFERENCE).expect("a handle");

    let mut group = criterion.benchmark_group("warm_read");
    group.bench_function("aws_secretsmanager_caching_get_secret_value", |bench| {
        bench.to_async(&runtime).iter(|| async {
            aws.get_secret_value(SECRET_NAME, None, None, false)
                .await
                .expect("warm hit")
        });
    });
    group.bench_function("keystead_get_by_reference_async", |bench| {
        bench
            .to_async(&runtime)
            .iter(|| async { keystead.get(REFERENCE).await.expect("warm hit") });
    });
    group.bench_function("keystead_get_cached_by_reference", |bench| {
        bench.iter(|| keystead.get_cached(REFERENCE).expect("warm hit"));
    });
    group.bench_function("keystead_handle_current", |bench| {
        bench.iter(|| handle.current().expect("warm hit"));
    });
    group.finish();

    keystead.close();
    drop(moto);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = warm_reads
}
criterion_main!(benches);
