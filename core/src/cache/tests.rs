//! Cache rules, each pinned by a test on a scripted provider and tokio's
//! paused clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::{advance, Instant};

use crate::audit::AuditEventKind;
use crate::clock::Clock;
use crate::config::{Config, SecretConfig};
use crate::provider::{Fetched, Lease, Provider};
use crate::{Client, Error, ErrorClass, Reference, SecretValue};

const CANARY: &str = "canary-value-4b1f9e";

type Script = Box<dyn FnMut(&Reference, usize) -> Result<Fetched, Error> + Send>;
type RenewScript = Box<dyn FnMut(&Lease, usize) -> Result<Duration, Error> + Send>;

/// A provider that returns values from a script and counts its calls. With a gate,
/// every fetch waits for a permit, so tests can hold loads in flight.
struct Scripted {
    calls: Arc<AtomicUsize>,
    batch_calls: Arc<AtomicUsize>,
    script: Arc<Mutex<Script>>,
    gate: Option<Arc<Semaphore>>,
    renew_script: Option<Arc<Mutex<RenewScript>>>,
    renew_calls: Arc<AtomicUsize>,
    revoked: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct Probe {
    calls: Arc<AtomicUsize>,
    batch_calls: Arc<AtomicUsize>,
    gate: Option<Arc<Semaphore>>,
    renew_calls: Arc<AtomicUsize>,
    revoked: Arc<Mutex<Vec<String>>>,
}

impl Probe {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn open(&self, permits: usize) {
        if let Some(gate) = &self.gate {
            gate.add_permits(permits);
        }
    }
}

fn scripted(script: impl FnMut(&Reference, usize) -> Result<Fetched, Error> + Send + 'static) -> (Scripted, Probe) {
    let calls = Arc::new(AtomicUsize::new(0));
    let batch_calls = Arc::new(AtomicUsize::new(0));
    let renew_calls = Arc::new(AtomicUsize::new(0));
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let provider = Scripted {
        calls: calls.clone(),
        batch_calls: batch_calls.clone(),
        script: Arc::new(Mutex::new(Box::new(script))),
        gate: None,
        renew_script: None,
        renew_calls: renew_calls.clone(),
        revoked: revoked.clone(),
    };
    let probe = Probe {
        calls,
        batch_calls,
        gate: None,
        renew_calls,
        revoked,
    };
    (provider, probe)
}

fn gated(script: impl FnMut(&Reference, usize) -> Result<Fetched, Error> + Send + 'static) -> (Scripted, Probe) {
    let (mut provider, mut probe) = scripted(script);
    let gate = Arc::new(Semaphore::new(0));
    provider.gate = Some(gate.clone());
    probe.gate = Some(gate);
    (provider, probe)
}

#[async_trait]
impl Provider for Scripted {
    fn scheme(&self) -> &'static str {
        "test"
    }

    fn validate(&self, reference: &Reference) -> Result<(), Error> {
        reference.check_query_keys(&["version"])
    }

    async fn fetch(&self, reference: &Reference) -> Result<Fetched, Error> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        (self.script.lock())(reference, call)
    }

    async fn renew(&self, lease: &Lease, _increment: Duration) -> Result<Duration, Error> {
        let call = self.renew_calls.fetch_add(1, Ordering::SeqCst) + 1;
        match &self.renew_script {
            Some(script) => (script.lock())(lease, call),
            None => Err(Error::new(ErrorClass::Internal, "no renewals scripted")),
        }
    }

    async fn revoke(&self, lease: &Lease) -> Result<(), Error> {
        self.revoked.lock().push(lease.id.clone());
        Ok(())
    }

    async fn fetch_many(&self, references: &[Reference]) -> Vec<Result<Fetched, Error>> {
        self.batch_calls.fetch_add(1, Ordering::SeqCst);
        references
            .iter()
            .map(|reference| {
                let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                (self.script.lock())(reference, call)
            })
            .collect()
    }
}

fn value(text: &str, version: &str) -> Result<Fetched, Error> {
    let mut fetched = Fetched::new(SecretValue::text(text.to_owned()));
    fetched.version_id = Some(version.to_owned());
    Ok(fetched)
}

/// A value whose version follows the call number: every load is a rotation.
fn versioned(_: &Reference, call: usize) -> Result<Fetched, Error> {
    value(&format!("value-{call}"), &format!("v{call}"))
}

fn unavailable() -> Result<Fetched, Error> {
    Err(Error::new(ErrorClass::Unavailable, "backend timed out"))
}

fn config(ttl: Duration, max_stale: Duration) -> Config {
    let mut config = Config::default();
    config.cache.ttl = ttl;
    config.cache.max_stale = max_stale;
    config
}

fn client(provider: Scripted, config: Config) -> Client {
    Client::builder()
        .without_default_providers()
        .provider(provider)
        .config(config)
        .build()
        .unwrap()
}

async fn text(client: &Client, reference: &str) -> Result<String, Error> {
    let secret = client.get(reference).await?;
    Ok(secret.expose_str()?.to_owned())
}

/// Lets spawned tasks run without moving the paused clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_fetch() {
    let (provider, probe) = gated(|_, _| value("shared", "v1"));
    let client = client(provider, Config::default());

    let readers: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { text(&client, "test://db").await })
        })
        .collect();
    settle().await;
    probe.open(1);

    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), "shared");
    }
    assert_eq!(probe.calls(), 1);
    assert_eq!(client.metrics().backend_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_error() {
    let (provider, probe) = gated(|_, _| Err(Error::new(ErrorClass::NotFound, "no such secret")));
    let client = client(provider, Config::default());

    let readers: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("test://gone").await })
        })
        .collect();
    settle().await;
    probe.open(1);

    for reader in readers {
        let error = reader.await.unwrap().unwrap_err();
        assert_eq!(error.class(), ErrorClass::NotFound);
        assert_eq!(error.reference(), Some("test://gone"));
    }
    assert_eq!(probe.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn slow_load_does_not_block_other_references() {
    let (provider, probe) = gated(|reference, _| value(reference.path(), "v1"));
    let client = client(provider, Config::default());

    let slow = {
        let client = client.clone();
        tokio::spawn(async move { text(&client, "test://slow").await })
    };
    settle().await;
    assert_eq!(probe.calls(), 1);

    // The slow load holds the only permit request; a second reference gets
    // its own load and finishes while the first is still waiting.
    let fast = {
        let client = client.clone();
        tokio::spawn(async move { text(&client, "test://fast").await })
    };
    settle().await;
    assert_eq!(probe.calls(), 2);
    probe.open(1);
    settle().await;
    probe.open(1);
    let results = (slow.await.unwrap().unwrap(), fast.await.unwrap().unwrap());
    assert_eq!(results, ("slow".to_owned(), "fast".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn warm_reads_make_no_backend_calls() {
    let (provider, probe) = scripted(|_, _| value("warm", "v1"));
    let client = client(provider, Config::default());
    for _ in 0..100 {
        assert_eq!(text(&client, "test://a").await.unwrap(), "warm");
    }
    assert_eq!(probe.calls(), 1);
    let metrics = client.metrics();
    assert_eq!(metrics.misses, 1);
    assert_eq!(metrics.hits, 99);
}

#[tokio::test(start_paused = true)]
async fn refresh_runs_ahead_of_expiry_for_read_entries() {
    let (provider, probe) = scripted(versioned);
    let client = client(provider, config(Duration::from_secs(100), Duration::from_secs(600)));

    assert_eq!(text(&client, "test://a").await.unwrap(), "value-1");
    advance(Duration::from_secs(10)).await;
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-1");

    // Refresh starts between 75 s and 90 s after the load.
    advance(Duration::from_secs(64)).await;
    settle().await;
    assert_eq!(probe.calls(), 1);
    advance(Duration::from_secs(16)).await;
    settle().await;
    assert_eq!(probe.calls(), 2);

    // The reader never waited: the new value was already installed.
    let misses_before = client.metrics().misses;
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-2");
    assert_eq!(client.metrics().misses, misses_before);
}

#[tokio::test(start_paused = true)]
async fn reads_never_extend_an_entry_life() {
    let (provider, probe) = scripted(versioned);
    let client = client(provider, config(Duration::from_secs(100), Duration::from_secs(600)));

    assert_eq!(text(&client, "test://a").await.unwrap(), "value-1");
    // Not read again: no refresh ahead, and the value still goes stale at
    // 100 s however the clock gets there.
    advance(Duration::from_secs(99)).await;
    settle().await;
    assert_eq!(probe.calls(), 1);
    advance(Duration::from_secs(2)).await;
    settle().await;
    assert!(client.get_cached("test://a").is_none());
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-2");
    assert_eq!(client.metrics().misses, 2);
}

#[tokio::test(start_paused = true)]
async fn transient_failure_serves_stale_until_max_stale() {
    let (provider, probe) = scripted(|_, call| if call == 1 { value("good", "v1") } else { unavailable() });
    let client = client(provider, config(Duration::from_secs(10), Duration::from_secs(60)));

    assert_eq!(text(&client, "test://a").await.unwrap(), "good");
    advance(Duration::from_secs(11)).await;
    settle().await;
    assert_eq!(text(&client, "test://a").await.unwrap(), "good");
    advance(Duration::from_secs(40)).await;
    assert_eq!(text(&client, "test://a").await.unwrap(), "good");
    assert!(client.metrics().stale_serves >= 2);

    // 10 s of TTL plus 60 s of maximum staleness have passed.
    advance(Duration::from_secs(20)).await;
    settle().await;
    let error = client.get("test://a").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable);
    assert!(probe.calls() >= 2);
}

#[tokio::test(start_paused = true)]
async fn authoritative_failure_drops_the_value() {
    let (provider, _probe) = scripted(|_, call| {
        if call == 1 {
            value("revocable", "v1")
        } else {
            Err(Error::new(ErrorClass::AccessDenied, "not authorized"))
        }
    });
    let client = client(provider, Config::default());

    assert_eq!(text(&client, "test://a").await.unwrap(), "revocable");
    let error = client.refresh("test://a").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied);

    let error = client.get("test://a").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied);
    assert!(client.get_cached("test://a").is_none());
}

#[tokio::test(start_paused = true)]
async fn cached_error_is_returned_until_backoff_ends() {
    let (provider, probe) = scripted(|_, call| {
        if call <= 2 {
            Err(Error::new(ErrorClass::NotFound, "no such secret"))
        } else {
            value("created", "v1")
        }
    });
    let mut config = Config::default();
    config.cache.error_backoff_base = Duration::from_secs(4);
    let client = client(provider, config);

    assert_eq!(client.get("test://a").await.unwrap_err().class(), ErrorClass::NotFound);
    assert_eq!(client.get("test://a").await.unwrap_err().class(), ErrorClass::NotFound);
    assert_eq!(probe.calls(), 1);

    // The first delay is at most the 4 s base.
    advance(Duration::from_secs(4)).await;
    assert_eq!(client.get("test://a").await.unwrap_err().class(), ErrorClass::NotFound);
    assert_eq!(probe.calls(), 2);

    // The second delay is at most 8 s: seconds, not milliseconds.
    advance(Duration::from_secs(8)).await;
    assert_eq!(text(&client, "test://a").await.unwrap(), "created");
    assert_eq!(probe.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn backoff_is_measured_in_seconds() {
    let (provider, probe) = scripted(|_, _| unavailable());
    let mut config = Config::default();
    config.cache.error_backoff_base = Duration::from_secs(2);
    let client = client(provider, config);

    assert_eq!(client.get("test://a").await.unwrap_err().class(), ErrorClass::Unavailable);
    // Well past any millisecond-scale delay, the error is still cached...
    // unless the jitter drew a delay under 50 ms, which the 100 ms floor
    // rules out.
    advance(Duration::from_millis(50)).await;
    assert_eq!(client.get("test://a").await.unwrap_err().class(), ErrorClass::Unavailable);
    assert_eq!(probe.calls(), 1);
    advance(Duration::from_secs(2)).await;
    let _ = client.get("test://a").await;
    assert_eq!(probe.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn cached_error_never_hides_a_good_value() {
    let (provider, _probe) = scripted(|_, call| if call == 1 { value("good", "v1") } else { unavailable() });
    let client = client(provider, config(Duration::from_secs(100), Duration::from_secs(600)));

    assert_eq!(text(&client, "test://a").await.unwrap(), "good");
    let error = client.refresh("test://a").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable);
    // The value is still fresh, so readers get it, not the cached error.
    assert_eq!(text(&client, "test://a").await.unwrap(), "good");
    assert_eq!(client.get_cached("test://a").unwrap().expose_str().unwrap(), "good");
}

#[tokio::test(start_paused = true)]
async fn explicit_refreshes_are_coalesced() {
    let (provider, probe) = gated(versioned);
    let client = client(provider, Config::default());
    probe.open(1);
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-1");

    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.refresh("test://a").await })
    };
    let second = {
        let client = client.clone();
        tokio::spawn(async move { client.refresh("test://a").await })
    };
    settle().await;
    probe.open(1);
    let first = first.await.unwrap().unwrap();
    let second = second.await.unwrap().unwrap();
    assert_eq!(first.expose_str().unwrap(), "value-2");
    assert_eq!(second.expose_str().unwrap(), "value-2");
    assert_eq!(probe.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn invalidate_forces_the_next_read_to_load() {
    let (provider, probe) = scripted(versioned);
    let client = client(provider, Config::default());
    assert_eq!(text(&client, "test://a#x").await.unwrap_err().class(), ErrorClass::InvalidJson);
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-1");
    assert!(client.invalidate("test://a").unwrap());
    assert!(client.get_cached("test://a").is_none());
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-2");
    assert_eq!(probe.calls(), 2);
    assert!(!client.invalidate("test://never-read").unwrap());
}

#[tokio::test(start_paused = true)]
async fn invalidate_during_load_keeps_waiters_served() {
    let (provider, probe) = gated(versioned);
    let client = client(provider, Config::default());
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { text(&client, "test://a").await })
    };
    settle().await;
    assert!(client.invalidate("test://a").is_ok());
    probe.open(1);
    assert_eq!(waiter.await.unwrap().unwrap(), "value-1");
    // The invalidated entry did not keep the value: the next read loads.
    probe.open(1);
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-2");
}

#[tokio::test(start_paused = true)]
async fn prefetch_uses_one_batch_call() {
    let (provider, probe) = scripted(|reference, _| {
        if reference.path() == "missing" {
            Err(Error::new(ErrorClass::NotFound, "no such secret"))
        } else {
            value(reference.path(), "v1")
        }
    });
    let client = client(provider, Config::default());

    let outcomes = client
        .prefetch(&["test://a", "test://b", "test://missing", "bad reference"])
        .await;
    assert_eq!(probe.batch_calls.load(Ordering::SeqCst), 1);
    assert!(outcomes[0].result.is_ok());
    assert!(outcomes[1].result.is_ok());
    assert_eq!(outcomes[2].result.as_ref().unwrap_err().class(), ErrorClass::NotFound);
    assert_eq!(outcomes[3].result.as_ref().unwrap_err().class(), ErrorClass::InvalidReference);

    assert_eq!(text(&client, "test://b").await.unwrap(), "b");
    assert_eq!(probe.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn lru_evicts_the_least_recently_read() {
    let (provider, probe) = scripted(|reference, _| value(reference.path(), "v1"));
    let mut config = Config::default();
    config.cache.max_entries = 2;
    let client = client(provider, config);

    text(&client, "test://a").await.unwrap();
    text(&client, "test://b").await.unwrap();
    text(&client, "test://a").await.unwrap();
    text(&client, "test://c").await.unwrap();
    assert_eq!(probe.calls(), 3);
    assert_eq!(client.metrics().entries, 2);

    assert!(client.get_cached("test://a").is_some());
    assert!(client.get_cached("test://b").is_none());
    text(&client, "test://b").await.unwrap();
    assert_eq!(probe.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn per_reference_ttl_overrides_default() {
    let (provider, probe) = scripted(versioned);
    let mut config = config(Duration::from_secs(300), Duration::from_secs(600));
    let mut short = SecretConfig::new("test://short");
    short.ttl = Some(Duration::from_secs(5));
    config.secrets.push(short);
    let client = client(provider, config);

    text(&client, "test://short").await.unwrap();
    text(&client, "test://long").await.unwrap();
    advance(Duration::from_secs(6)).await;
    settle().await;
    assert!(client.get_cached("test://short").is_none());
    assert!(client.get_cached("test://long").is_some());
    assert_eq!(probe.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn zero_ttl_means_no_caching() {
    let (provider, probe) = scripted(versioned);
    let client = client(provider, config(Duration::ZERO, Duration::from_secs(600)));
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-1");
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-2");
    assert!(client.get_cached("test://a").is_none());
    assert_eq!(probe.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn pinned_versions_are_cached_separately() {
    let (provider, probe) = scripted(|reference, _| {
        let version = reference.query("version").unwrap_or("current");
        value(version, version)
    });
    let client = client(provider, Config::default());
    assert_eq!(text(&client, "test://a").await.unwrap(), "current");
    assert_eq!(text(&client, "test://a?version=1").await.unwrap(), "1");
    assert_eq!(text(&client, "test://a").await.unwrap(), "current");
    assert_eq!(probe.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn subscribers_hear_each_new_version_once() {
    let versions = Arc::new(Mutex::new(VecDeque::from(["v1", "v1", "v2", "v2", "v3"])));
    let script_versions = versions.clone();
    let (provider, _probe) = scripted(move |_, _| {
        let version = script_versions.lock().pop_front().unwrap_or("v3");
        value(&format!(r#"{{"password":"pw-{version}"}}"#), version)
    });
    let client = client(provider, Config::default());
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    let _subscription = client
        .subscribe("test://db#password", move |event| {
            let password = event.secret.as_ref().unwrap().expose_str().unwrap().to_owned();
            sink.lock().push(password);
        })
        .unwrap();
    settle().await;

    for _ in 0..4 {
        client.refresh("test://db").await.unwrap();
    }
    assert_eq!(*heard.lock(), vec!["pw-v2".to_owned(), "pw-v3".to_owned()]);
    assert_eq!(client.metrics().rotations, 2);
}

#[tokio::test(start_paused = true)]
async fn dropped_subscription_stops_calls() {
    let (provider, _probe) = scripted(versioned);
    let client = client(provider, Config::default());
    let heard = Arc::new(AtomicUsize::new(0));
    let counter = heard.clone();
    let subscription = client
        .subscribe("test://a", move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    settle().await;
    client.refresh("test://a").await.unwrap();
    drop(subscription);
    client.refresh("test://a").await.unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 1);
}

/// A wall clock that a test can step, with tokio's monotonic time.
struct SteppedWall {
    offset: Arc<Mutex<Duration>>,
}

impl Clock for SteppedWall {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + *self.offset.lock()
    }

    fn sleep_until(&self, deadline: Instant) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

#[tokio::test(start_paused = true)]
async fn wall_clock_step_does_not_change_lifetimes() {
    let (provider, probe) = scripted(versioned);
    let offset = Arc::new(Mutex::new(Duration::ZERO));
    let client = Client::builder()
        .without_default_providers()
        .provider(provider)
        .config(config(Duration::from_secs(100), Duration::from_secs(600)))
        .clock(SteppedWall { offset: offset.clone() })
        .build()
        .unwrap();

    text(&client, "test://a").await.unwrap();

    // A wall clock thirty days ahead does not shorten the 100 s TTL.
    *offset.lock() = Duration::from_secs(86_400 * 30);
    advance(Duration::from_secs(99)).await;
    settle().await;
    assert_eq!(client.get_cached("test://a").unwrap().expose_str().unwrap(), "value-1");
    assert_eq!(probe.calls(), 1);

    // Stepping it back thirty days does not extend the TTL either: the value
    // is due at 100 s and, having been read, is loaded again.
    *offset.lock() = Duration::ZERO;
    advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(probe.calls(), 2);
    assert_eq!(client.get_cached("test://a").unwrap().expose_str().unwrap(), "value-2");
}

#[tokio::test(start_paused = true)]
async fn value_is_never_served_past_backend_expiry() {
    let (provider, probe) = scripted(|_, call| {
        let mut fetched = value(&format!("credential-{call}"), &format!("v{call}"))?;
        fetched.valid_for = Some(Duration::from_secs(30));
        if call > 1 {
            return unavailable();
        }
        Ok(fetched)
    });
    let client = client(provider, config(Duration::from_secs(300), Duration::from_secs(3600)));

    assert_eq!(text(&client, "test://lease").await.unwrap(), "credential-1");
    // Refreshed at about two thirds of 30 s; that refresh fails.
    advance(Duration::from_secs(22)).await;
    settle().await;
    assert_eq!(probe.calls(), 2);
    // Within 10 % of expiry the value is no longer handed out, stale or not.
    advance(Duration::from_secs(5)).await;
    settle().await;
    let error = client.get("test://lease").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn audit_events_carry_reference_and_tags() {
    let (provider, _probe) = scripted(|_, call| match call {
        1 => value(CANARY, "v1"),
        2 => value(CANARY, "v1"),
        3 => value("rotated", "v2"),
        _ => Err(Error::new(ErrorClass::NotFound, "deleted")),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut config = Config::default();
    let mut tagged = SecretConfig::new("test://db");
    tagged.tags.insert("owner".into(), "payments".into());
    config.secrets.push(tagged);
    let client = Client::builder()
        .without_default_providers()
        .provider(provider)
        .config(config)
        .audit_hook(move |event| sink.lock().push(event.clone()))
        .build()
        .unwrap();

    client.get("test://db").await.unwrap();
    client.refresh("test://db").await.unwrap();
    client.refresh("test://db").await.unwrap();
    client.refresh("test://db").await.unwrap_err();
    client.invalidate("test://db").unwrap();

    let events = events.lock();
    let kinds: Vec<_> = events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        vec![
            AuditEventKind::Fetched,
            AuditEventKind::Refreshed,
            AuditEventKind::Rotated,
            AuditEventKind::Failed,
        ]
    );
    for event in events.iter() {
        assert_eq!(event.reference, "test://db");
        assert_eq!(event.tags["owner"], "payments");
        assert!(!format!("{event:?}").contains(CANARY));
    }
    assert_eq!(events[3].error_class, Some(ErrorClass::NotFound));
}

#[tokio::test(start_paused = true)]
async fn handle_reads_and_rebinds_after_invalidate() {
    let (provider, probe) = scripted(versioned);
    let client = client(provider, Config::default());
    let handle = client.handle("test://a").unwrap();
    assert!(handle.current().is_none());
    assert_eq!(handle.get().await.unwrap().expose_str().unwrap(), "value-1");
    assert_eq!(handle.current().unwrap().expose_str().unwrap(), "value-1");

    client.invalidate("test://a").unwrap();
    assert!(handle.current().is_none());
    assert_eq!(handle.get().await.unwrap().expose_str().unwrap(), "value-2");
    assert_eq!(handle.current().unwrap().expose_str().unwrap(), "value-2");
    assert_eq!(probe.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn field_selection_reads_cached_json() {
    let (provider, probe) = scripted(|_, _| value(r#"{"user":"app","password":"pw","port":5432,"tls":{"on":true}}"#, "v1"));
    let client = client(provider, Config::default());
    assert_eq!(text(&client, "test://db#user").await.unwrap(), "app");
    assert_eq!(text(&client, "test://db#port").await.unwrap(), "5432");
    assert_eq!(text(&client, "test://db#tls").await.unwrap(), r#"{"on":true}"#);
    assert_eq!(text(&client, "test://db#tls.on").await.unwrap(), "true");
    let error = client.get("test://db#pasword").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::FieldNotFound);
    assert!(error.to_string().contains("pasword"), "{error}");
    assert_eq!(probe.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn closed_client_rejects_reads() {
    let (provider, _probe) = scripted(versioned);
    let client = client(provider, Config::default());
    text(&client, "test://a").await.unwrap();
    client.close();
    assert!(client.get_cached("test://a").is_none());
    assert_eq!(client.get("test://a").await.unwrap_err().class(), ErrorClass::Closed);
    assert_eq!(client.metrics().entries, 0);
}

#[tokio::test(start_paused = true)]
async fn unknown_scheme_lists_known_ones() {
    let (provider, probe) = scripted(versioned);
    let client = client(provider, Config::default());
    let error = client.get("vault://secret/app").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
    assert!(error.to_string().contains("test"), "{error}");
    let error = client.get("test://a?versoin=2").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
    assert_eq!(probe.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn canary_absent_from_logs_errors_and_debug() {
    use std::io::Write;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // One global subscriber for the whole test binary: a thread-local one
    // misses events when another test thread registers a callsite first.
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    let captured = CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
            captured
        })
        .clone();

    let document = format!(r#"{{"password":"{CANARY}"}}"#);
    let (provider, _probe) = scripted(move |_, call| match call {
        1 => value(&document, "v1"),
        2 => unavailable(),
        _ => Err(Error::new(ErrorClass::AccessDenied, "denied")),
    });
    let client = client(provider, config(Duration::from_secs(10), Duration::from_secs(60)));
    let secret = client.get("test://db#password").await.unwrap();
    let whole = client.get("test://db").await.unwrap();
    let missing = client.get("test://db#nope").await.unwrap_err();
    advance(Duration::from_secs(11)).await;
    let stale = client.get("test://db").await.unwrap();
    let refresh_error = client.refresh("test://db").await.unwrap_err();

    let mut channels = vec![
        format!("{secret:?}"),
        format!("{secret:#?}"),
        secret.to_string(),
        format!("{whole:?}"),
        format!("{stale:?}"),
        missing.to_string(),
        format!("{missing:?}"),
        refresh_error.to_string(),
        format!("{client:?}"),
        format!("{:?}", client.metrics()),
    ];
    channels.push(String::from_utf8_lossy(&captured.0.lock()).into_owned());
    for channel in &channels {
        assert!(!channel.contains(CANARY), "canary leaked: {channel}");
    }
    assert!(channels.last().unwrap().contains("test://db"), "logs name the reference");
    assert_eq!(secret.expose_str().unwrap(), CANARY);
}

/// Builds a value with a renewable 30 s lease named after the call number.
fn leased(_: &Reference, call: usize) -> Result<Fetched, Error> {
    let mut fetched = value(&format!(r#"{{"username":"user-{call}","password":"pw-{call}"}}"#), &format!("v{call}"))?;
    fetched.lease = Some(Lease::new(format!("database/creds/app/{call}"), true, Duration::from_secs(30)));
    fetched.valid_for = Some(Duration::from_secs(30));
    Ok(fetched)
}

fn with_renewals(
    (mut provider, probe): (Scripted, Probe),
    renew: impl FnMut(&Lease, usize) -> Result<Duration, Error> + Send + 'static,
) -> (Scripted, Probe) {
    provider.renew_script = Some(Arc::new(Mutex::new(Box::new(renew))));
    (provider, probe)
}

#[tokio::test(start_paused = true)]
async fn renewable_lease_is_renewed_not_refetched() {
    let (provider, probe) = with_renewals(scripted(leased), |_, _| Ok(Duration::from_secs(30)));
    let client = client(provider, Config::default());

    assert_eq!(text(&client, "test://db#username").await.unwrap(), "user-1");
    // Renewal comes at 60-70 % of the 30 s lease.
    advance(Duration::from_secs(17)).await;
    settle().await;
    assert_eq!(probe.renew_calls.load(Ordering::SeqCst), 0);
    advance(Duration::from_secs(5)).await;
    settle().await;
    assert_eq!(probe.renew_calls.load(Ordering::SeqCst), 1);

    // Past the original lease end the same credentials are still served,
    // because the renewal extended them.
    advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(text(&client, "test://db#username").await.unwrap(), "user-1");
    assert_eq!(text(&client, "test://db#password").await.unwrap(), "pw-1");
    assert_eq!(probe.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn lease_at_max_ttl_is_replaced_before_expiry() {
    // The backend caps the lease: a renewal returns only what was left.
    let (provider, probe) = with_renewals(scripted(leased), |_, _| Ok(Duration::from_secs(8)));
    let client = client(provider, Config::default());
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    let _subscription = client
        .subscribe("test://db#username", move |event| {
            sink.lock().push(event.secret.as_ref().unwrap().expose_str().unwrap().to_owned());
        })
        .unwrap();
    settle().await;
    assert_eq!(text(&client, "test://db#username").await.unwrap(), "user-1");

    advance(Duration::from_secs(22)).await;
    settle().await;
    assert_eq!(probe.renew_calls.load(Ordering::SeqCst), 1);
    assert_eq!(probe.calls(), 2);

    // Readers switched to the new lease; both fields come from it.
    assert_eq!(text(&client, "test://db#username").await.unwrap(), "user-2");
    assert_eq!(text(&client, "test://db#password").await.unwrap(), "pw-2");
    assert_eq!(*heard.lock(), vec!["user-2".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn lease_gone_on_renewal_fetches_new_credentials() {
    let (provider, probe) = with_renewals(scripted(leased), |_, _| {
        Err(Error::new(ErrorClass::NotFound, "lease not found"))
    });
    let client = client(provider, Config::default());
    assert_eq!(text(&client, "test://db#username").await.unwrap(), "user-1");
    advance(Duration::from_secs(22)).await;
    settle().await;
    assert_eq!(probe.calls(), 2);
    assert_eq!(text(&client, "test://db#username").await.unwrap(), "user-2");
}

#[tokio::test(start_paused = true)]
async fn shutdown_revokes_current_leases() {
    let (provider, probe) = with_renewals(scripted(leased), |_, _| Ok(Duration::from_secs(30)));
    let client = client(provider, Config::default());
    text(&client, "test://db#username").await.unwrap();
    client.shutdown().await;
    assert_eq!(*probe.revoked.lock(), vec!["database/creds/app/1".to_owned()]);
    assert_eq!(client.get("test://db").await.unwrap_err().class(), ErrorClass::Closed);
}

#[tokio::test(start_paused = true)]
async fn huge_durations_do_not_overflow() {
    let (provider, probe) = scripted(|_, call| {
        let mut fetched = value("long-lived", &format!("v{call}"))?;
        fetched.valid_for = Some(Duration::MAX);
        fetched.lease = Some(Lease::new("lease/huge", false, Duration::MAX));
        Ok(fetched)
    });
    let client = client(provider, config(Duration::MAX, Duration::MAX));
    assert_eq!(text(&client, "test://a").await.unwrap(), "long-lived");
    advance(Duration::from_secs(86_400)).await;
    settle().await;
    assert_eq!(text(&client, "test://a").await.unwrap(), "long-lived");
    assert_eq!(probe.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn idle_expiry_readers_share_reload() {
    let (provider, probe) = gated(versioned);
    let client = client(provider, config(Duration::from_secs(10), Duration::from_secs(600)));
    probe.open(1);
    assert_eq!(text(&client, "test://a").await.unwrap(), "value-1");

    // No caller read it, so no refresh ran ahead. Past the TTL a burst of
    // readers all wait for one load and all get the new value.
    advance(Duration::from_secs(11)).await;
    settle().await;
    let readers: Vec<_> = (0..30)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { text(&client, "test://a").await })
        })
        .collect();
    settle().await;
    probe.open(1);
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), "value-2");
    }
    assert_eq!(probe.calls(), 2);
    assert_eq!(client.metrics().stale_serves, 0);
}

#[tokio::test(start_paused = true)]
async fn prefetch_reports_a_missing_field() {
    let (provider, probe) = scripted(|_, _| value(r#"{"user":"app"}"#, "v1"));
    let client = client(provider, Config::default());
    let outcomes = client.prefetch(&["test://db#user", "test://db#nope"]).await;
    assert!(outcomes[0].result.is_ok());
    assert_eq!(outcomes[1].result.as_ref().unwrap_err().class(), ErrorClass::FieldNotFound);
    assert_eq!(probe.calls(), 1);
}
