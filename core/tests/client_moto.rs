//! The whole client (cache and AWS provider) against a real moto server:
//! what a user sees when reading, rotating and losing the backend.
//!
//! Requests go through a TCP relay the test controls. moto closes the
//! connection after every response, so the relay's connection count is the
//! number of backend calls, and dropping connections at the relay plays an
//! outage.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keystead::{Client, Config, ErrorClass};
use serde_json::json;
use support::moto::Moto;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

/// A relay in front of moto that counts connections and can refuse them.
struct Relay {
    url: String,
    connections: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (counter, switch) = (connections.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if switch.load(Ordering::SeqCst) {
                    continue;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { url, connections, down }
    }

    fn calls(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn use_moto_credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", support::moto::TEST_ACCESS_KEY_ID);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", support::moto::TEST_SECRET_ACCESS_KEY);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::remove_var("AWS_PROFILE");
    std::env::remove_var("AWS_SESSION_TOKEN");
}

fn client_via(relay: &Relay, ttl: Duration) -> Client {
    use_moto_credentials();
    let mut config = Config::default();
    config.aws = Moto::shared().aws_config();
    config.aws.endpoint_url = Some(relay.url.clone());
    config.aws.max_attempts = 1;
    config.aws.connect_timeout = Duration::from_millis(500);
    config.aws.attempt_timeout = Duration::from_secs(5);
    config.cache.ttl = ttl;
    config.cache.error_backoff_base = Duration::from_millis(200);
    config.cache.error_backoff_max = Duration::from_millis(400);
    Client::builder().config(config).build().unwrap()
}

/// Polls `condition` every 20 ms until it is true or `limit` passes.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_cold_reads_make_one_call() {
    let moto = Moto::shared();
    let name = format!("{}/db", support::unique_prefix());
    moto.create_secret(&name, r#"{"password":"p1"}"#).await;
    let relay = Relay::start(&moto.endpoint).await;
    let client = client_via(&relay, Duration::from_secs(300));
    let reference = format!("aws-sm://{name}#password");

    let readers: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            let reference = reference.clone();
            tokio::spawn(async move { client.get(&reference).await.map(|secret| secret.expose_str().unwrap().to_owned()) })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), "p1");
    }
    assert_eq!(relay.calls(), 1);
    assert_eq!(client.metrics().backend_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_and_arns_share_one_entry() {
    let moto = Moto::shared();
    let name = format!("{}/shared", support::unique_prefix());
    let (arn, _) = moto.create_secret(&name, "one-value").await;
    let relay = Relay::start(&moto.endpoint).await;
    let client = client_via(&relay, Duration::from_secs(300));

    let by_name = client.get(&format!("aws-sm://{name}")).await.unwrap();
    assert_eq!(by_name.metadata().arn.as_deref(), Some(arn.as_str()));
    let partial = arn.rsplit_once('-').unwrap().0.to_owned();
    for spelling in [arn.clone(), partial] {
        let secret = client.get(&format!("aws-sm://{spelling}")).await.unwrap();
        assert_eq!(secret.expose_str().unwrap(), "one-value");
    }
    assert_eq!(relay.calls(), 1);
    assert_eq!(client.metrics().entries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_picked_up_and_announced_once() {
    let moto = Moto::shared();
    let name = format!("{}/rotating", support::unique_prefix());
    moto.create_secret(&name, r#"{"password":"before"}"#).await;
    let relay = Relay::start(&moto.endpoint).await;
    let client = client_via(&relay, Duration::from_secs(1));
    let reference = format!("aws-sm://{name}#password");

    let heard = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = heard.clone();
    let _subscription = client
        .subscribe(&reference, move |event| {
            sink.lock().push(event.secret.as_ref().unwrap().expose_str().unwrap().to_owned());
        })
        .unwrap();
    assert_eq!(client.get(&reference).await.unwrap().expose_str().unwrap(), "before");

    let new_version = moto.put_secret_value(&name, r#"{"password":"after"}"#, None).await;
    let picked_up = eventually(Duration::from_secs(10), || !heard.lock().is_empty()).await;
    assert!(picked_up, "the background refresh did not find the new version");

    let secret = client.get(&reference).await.unwrap();
    assert_eq!(secret.expose_str().unwrap(), "after");
    assert_eq!(secret.metadata().version_id.as_deref(), Some(new_version.as_str()));

    // Later refreshes find the same version: no second notice.
    client.refresh(&reference).await.unwrap();
    client.refresh(&reference).await.unwrap();
    assert_eq!(*heard.lock(), vec!["after".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_serves_last_good_value_then_recovers() {
    let moto = Moto::shared();
    let name = format!("{}/outage", support::unique_prefix());
    moto.create_secret(&name, "steady").await;
    let relay = Relay::start(&moto.endpoint).await;
    let client = client_via(&relay, Duration::from_millis(300));
    let reference = format!("aws-sm://{name}");
    assert_eq!(client.get(&reference).await.unwrap().expose_str().unwrap(), "steady");

    relay.down.store(true, Ordering::SeqCst);
    let error = client.refresh(&reference).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable);

    // Past the TTL, with every call failing, reads still get the value.
    let stale = eventually(Duration::from_secs(5), || client.get_cached(&reference).is_none()).await;
    assert!(stale, "the value never went past its TTL");
    let secret = client.get(&reference).await.unwrap();
    assert_eq!(secret.expose_str().unwrap(), "steady");
    assert!(client.metrics().stale_serves >= 1);

    relay.down.store(false, Ordering::SeqCst);
    let recovered = client.refresh(&reference).await.unwrap();
    assert_eq!(recovered.expose_str().unwrap(), "steady");
    assert!(client.get_cached(&reference).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_secret_stops_being_served() {
    let moto = Moto::shared();
    let name = format!("{}/revoked", support::unique_prefix());
    moto.create_secret(&name, "short-lived").await;
    let relay = Relay::start(&moto.endpoint).await;
    let client = client_via(&relay, Duration::from_secs(300));
    let reference = format!("aws-sm://{name}");
    client.get(&reference).await.unwrap();

    moto.secrets_manager("DeleteSecret", json!({"SecretId": name, "RecoveryWindowInDays": 7}))
        .await
        .unwrap();
    let error = client.refresh(&reference).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::SecretDeleted);
    let error = client.get(&reference).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::SecretDeleted);
    assert!(client.get_cached(&reference).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_stage_is_cached_apart_from_current() {
    let moto = Moto::shared();
    let name = format!("{}/staged", support::unique_prefix());
    moto.create_secret(&name, "first").await;
    moto.put_secret_value(&name, "second", None).await;
    let relay = Relay::start(&moto.endpoint).await;
    let client = client_via(&relay, Duration::from_secs(300));

    let current = client.get(&format!("aws-sm://{name}")).await.unwrap();
    let previous = client.get(&format!("aws-sm://{name}?version_stage=AWSPREVIOUS")).await.unwrap();
    assert_eq!(current.expose_str().unwrap(), "second");
    assert_eq!(previous.expose_str().unwrap(), "first");
    assert!(previous.metadata().version_stages.contains(&"AWSPREVIOUS".to_owned()));
    assert_eq!(relay.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_batches_secrets_and_parameters() {
    let moto = Moto::shared();
    let prefix = support::unique_prefix();
    moto.create_secret(&format!("{prefix}/a"), "alpha").await;
    moto.create_secret(&format!("{prefix}/b"), "beta").await;
    moto.ssm("PutParameter", json!({"Name": format!("/{prefix}/p"), "Value": "param", "Type": "SecureString"}))
        .await
        .unwrap();
    let relay = Relay::start(&moto.endpoint).await;
    let client = client_via(&relay, Duration::from_secs(300));

    let references = [
        format!("aws-sm://{prefix}/a"),
        format!("aws-sm://{prefix}/b"),
        format!("aws-sm://{prefix}/missing"),
        format!("aws-ssm:///{prefix}/p"),
    ];
    let outcomes = client.prefetch(&references).await;
    assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    assert!(outcomes[1].result.is_ok(), "{:?}", outcomes[1].result);
    assert_eq!(outcomes[2].result.as_ref().unwrap_err().class(), ErrorClass::NotFound);
    assert!(outcomes[3].result.is_ok(), "{:?}", outcomes[3].result);
    // One BatchGetSecretValue and one GetParameters call.
    assert_eq!(relay.calls(), 2);

    assert_eq!(client.get_cached(&references[1]).unwrap().expose_str().unwrap(), "beta");
    assert_eq!(client.get_cached(&references[3]).unwrap().expose_str().unwrap(), "param");
}
