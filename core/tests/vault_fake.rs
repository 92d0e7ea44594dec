//! The Vault provider against an in-process fake Vault, for what a real
//! server cannot be made to do on demand. Each test names the real
//! behaviour its fake reproduces.

#![cfg(feature = "vault")]

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use keystead::config::{SecretText, VaultConfig};
use keystead::provider::vault::VaultProvider;
use keystead::{Client, ErrorClass};
use serde_json::{json, Value};
use support::fake_vault::{FakeReply, FakeRequest, FakeVault};

const TOKEN: &str = "s.fake-root-token";

fn config(fake: &FakeVault) -> VaultConfig {
    let mut config = VaultConfig::default();
    config.address = Some(fake.address.clone());
    config.token = Some(SecretText::new(TOKEN));
    config
}

fn client(config: &VaultConfig) -> (VaultProvider, Client) {
    let provider = VaultProvider::from_config(config)
        .expect("the configuration is valid")
        .expect("the configuration has an address");
    let client = Client::builder()
        .without_default_providers()
        .provider(provider.clone())
        .build()
        .expect("the client builds");
    (provider, client)
}

/// Builds responses to the requests every scenario makes: the token lookup and the
/// mount lookups for `secret/` (KV v2) and `database/`.
fn common(request: &FakeRequest) -> Option<FakeReply> {
    if request.path == "auth/token/lookup-self" {
        return Some(FakeReply::Json(200, json!({"data": {"ttl": 0, "renewable": false}})));
    }
    let lookup = request.path.strip_prefix("sys/internal/ui/mounts/")?;
    let (mount, kind, options) = if lookup.starts_with("secret/") {
        ("secret/", "kv", json!({"version": "2"}))
    } else if lookup.starts_with("database/") {
        ("database/", "database", Value::Null)
    } else {
        return Some(FakeReply::Json(403, json!({"errors": ["permission denied"]})));
    };
    Some(FakeReply::Json(200, json!({"data": {"path": mount, "type": kind, "options": options}})))
}

fn kv_value() -> FakeReply {
    FakeReply::Json(
        200,
        json!({"data": {"data": {"password": "pw"}, "metadata": {"version": 1, "created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": false}}}),
    )
}

fn credentials(number: u32, ttl: u64) -> FakeReply {
    FakeReply::Json(
        200,
        json!({
            "lease_id": format!("database/creds/app/lease-{number}"),
            "renewable": true,
            "lease_duration": ttl,
            "data": {"username": format!("v-app-{number}"), "password": format!("pw-{number}")}
        }),
    )
}

async fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answer_times_out_as_unavailable() {
    // A Vault under load (or a standby forwarding to a busy active node)
    // that responds long after the client stopped waiting.
    let fake = FakeVault::start(|request| {
        common(request).unwrap_or_else(|| FakeReply::Delay(Duration::from_secs(30), Box::new(kv_value())))
    })
    .await;
    let mut config = config(&fake);
    config.request_timeout = Duration::from_millis(300);
    let (_, client) = client(&config);

    let started = Instant::now();
    let error = client.get("vault://secret/app").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable);
    assert!(error.message().starts_with("GET secret/data/app timed out"), "{}", error.message());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_unavailable_then_recovers() {
    // A load balancer or a restarting Vault that closes the connection
    // without a response, once.
    let reads = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&reads);
    let fake = FakeVault::start(move |request| {
        if let Some(reply) = common(request) {
            return reply;
        }
        match counter.fetch_add(1, Ordering::SeqCst) {
            0 => FakeReply::Drop,
            _ => kv_value(),
        }
    })
    .await;
    let (_, client) = client(&config(&fake));

    let error = client.get("vault://secret/app#password").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable);
    let secret = client.refresh("vault://secret/app#password").await.unwrap();
    assert_eq!(secret.expose_str().unwrap(), "pw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_lost_between_renewals_fetches_new_credentials() {
    // An operator (or a token revocation) removed the lease between two
    // renewals: Vault answers the renewal with 400 "lease not found".
    let issued = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&issued);
    let fake = FakeVault::start(move |request| {
        if let Some(reply) = common(request) {
            return reply;
        }
        match request.path.as_str() {
            "database/creds/app" => credentials(counter.fetch_add(1, Ordering::SeqCst) + 1, 3),
            "sys/leases/renew" if request.body["lease_id"] == "database/creds/app/lease-1" => {
                FakeReply::Json(400, json!({"errors": ["lease not found"]}))
            }
            "sys/leases/renew" => FakeReply::Json(
                200,
                json!({"lease_id": request.body["lease_id"], "renewable": true, "lease_duration": 3}),
            ),
            "sys/leases/revoke" => FakeReply::Empty(204),
            other => FakeReply::Json(404, json!({"errors": [format!("no handler for {other}")]})),
        }
    })
    .await;
    let (_, client) = client(&config(&fake));
    let rotations = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&rotations);
    let _subscription = client
        .subscribe("vault://database/creds/app#username", move |event| {
            if let Ok(secret) = &event.secret {
                seen.lock().unwrap().push(secret.expose_str().unwrap().to_owned());
            }
        })
        .unwrap();
    let first = client.get("vault://database/creds/app#username").await.unwrap();
    assert_eq!(first.expose_str().unwrap(), "v-app-1");

    let rotated = wait_for(Duration::from_secs(8), "the replacement credentials", || {
        rotations.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(rotated, "v-app-2");
    assert_eq!(
        client.get("vault://database/creds/app#password").await.unwrap().expose_str().unwrap(),
        "pw-2"
    );
    let order: Vec<String> = fake
        .received()
        .iter()
        .filter(|request| request.path == "database/creds/app" || request.path == "sys/leases/renew")
        .take(3)
        .map(|request| format!("{} {}", request.path, request.body["lease_id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        order,
        vec![
            "database/creds/app ",
            "sys/leases/renew database/creds/app/lease-1",
            "database/creds/app ",
        ]
    );
    assert_eq!(rotations.lock().unwrap().len(), 1);
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_renewal_rotates_before_lease_end() {
    // A role whose max_ttl is reached within seconds: Vault answers the
    // renewal with only the time left up to the maximum, so the lease end
    // does not move.
    let issued = Arc::new(Mutex::new(Vec::<(u32, Instant)>::new()));
    let log = Arc::clone(&issued);
    let fake = FakeVault::start(move |request| {
        if let Some(reply) = common(request) {
            return reply;
        }
        match request.path.as_str() {
            "database/creds/app" => {
                let mut issued = log.lock().unwrap();
                let number = issued.len() as u32 + 1;
                issued.push((number, Instant::now()));
                credentials(number, 3)
            }
            "sys/leases/renew" => {
                let id = request.body["lease_id"].as_str().unwrap_or_default().to_owned();
                let issued_at = log
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(number, _)| id.ends_with(&format!("lease-{number}")))
                    .map(|(_, at)| *at)
                    .unwrap_or_else(Instant::now);
                let left = Duration::from_secs(3).saturating_sub(issued_at.elapsed()).as_secs();
                FakeReply::Json(200, json!({"lease_id": id, "renewable": true, "lease_duration": left}))
            }
            "sys/leases/revoke" => FakeReply::Empty(204),
            other => FakeReply::Json(404, json!({"errors": [format!("no handler for {other}")]})),
        }
    })
    .await;
    let (_, client) = client(&config(&fake));

    // Read continuously for a while: no value may be handed out past the
    // end of its lease.
    let until = Instant::now() + Duration::from_millis(4500);
    let mut users = Vec::new();
    while Instant::now() < until {
        let secret = client.get("vault://database/creds/app#username").await.unwrap();
        let expires_at = secret.metadata().expires_at.expect("a leased value has an expiry");
        assert!(expires_at > SystemTime::now(), "a value was served past its lease end");
        let user = secret.expose_str().unwrap().to_owned();
        if users.last() != Some(&user) {
            users.push(user);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(users[..2], ["v-app-1".to_owned(), "v-app-2".to_owned()]);
    let issued = issued.lock().unwrap().clone();
    let gap = issued[1].1 - issued[0].1;
    assert!(gap < Duration::from_secs(3), "new credentials came only {gap:?} after the first");
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_on_close_follows_configuration() {
    let issued = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&issued);
    let handler = move |request: &FakeRequest| {
        if let Some(reply) = common(request) {
            return reply;
        }
        match request.path.as_str() {
            "database/creds/app" => credentials(counter.fetch_add(1, Ordering::SeqCst) + 1, 60),
            "sys/leases/revoke" => FakeReply::Empty(204),
            other => FakeReply::Json(404, json!({"errors": [format!("no handler for {other}")]})),
        }
    };
    let fake = FakeVault::start(handler).await;

    let (_, revoking) = client(&config(&fake));
    revoking.get("vault://database/creds/app").await.unwrap();
    revoking.shutdown().await;
    let revocations: Vec<Value> = fake
        .received()
        .iter()
        .filter(|request| request.path == "sys/leases/revoke")
        .map(|request| request.body.clone())
        .collect();
    assert_eq!(revocations, vec![json!({"lease_id": "database/creds/app/lease-1"})]);
    assert_eq!(fake.received().last().map(|request| request.method.clone()), Some("PUT".to_owned()));

    let mut keeping_config = config(&fake);
    keeping_config.revoke_on_close = false;
    let (_, keeping) = client(&keeping_config);
    keeping.get("vault://database/creds/app").await.unwrap();
    keeping.shutdown().await;
    assert_eq!(fake.count("sys/leases/revoke"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_token_headers_are_sent() {
    let fake = FakeVault::start(|request| common(request).unwrap_or_else(kv_value)).await;
    let mut config = config(&fake);
    config.namespace = Some("team-a/apps".into());
    let (_, client) = client(&config);
    client.get("vault://secret/app").await.unwrap();
    for request in fake.received() {
        assert_eq!(request.header("x-vault-namespace"), Some("team-a/apps"), "{}", request.path);
        assert_eq!(request.token(), Some(TOKEN), "{}", request.path);
        assert_eq!(request.header("x-vault-request"), Some("true"), "{}", request.path);
    }
}

#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_iam_login_sends_signed_caller_identity() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use keystead::config::{AwsIamAuth, VaultAuthConfig};

    // Vault's AWS auth method: it receives the pieces of a signed
    // sts:GetCallerIdentity request and forwards them to STS itself.
    let fake = FakeVault::start(|request| {
        if request.path == "auth/aws/login" {
            return FakeReply::Json(
                200,
                json!({"auth": {"client_token": "s.from-aws-login", "lease_duration": 0, "renewable": false}}),
            );
        }
        if request.token() != Some("s.from-aws-login") {
            return FakeReply::Json(403, json!({"errors": ["permission denied"]}));
        }
        common(request).unwrap_or_else(kv_value)
    })
    .await;
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFAKEVAULTTEST");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "fake-vault-test-secret-key");
    std::env::remove_var("AWS_SESSION_TOKEN");

    let mut aws = AwsIamAuth::default();
    aws.role = Some("app".into());
    aws.server_id = Some("vault.example.test".into());
    aws.region = Some("us-east-1".into());
    let mut config = VaultConfig::default();
    config.address = Some(fake.address.clone());
    config.auth = Some(VaultAuthConfig::Aws(aws));
    let (provider, client) = client(&config);
    assert_eq!(
        client.get("vault://secret/app#password").await.unwrap().expose_str().unwrap(),
        "pw"
    );
    assert_eq!(provider.auth_status().method, "aws");

    let login = fake.received().into_iter().find(|request| request.path == "auth/aws/login").unwrap();
    assert_eq!(login.method, "POST");
    assert_eq!(login.body["role"], "app");
    assert_eq!(login.body["iam_http_request_method"], "POST");
    let decode = |field: &str| String::from_utf8(STANDARD.decode(login.body[field].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(decode("iam_request_url"), "https://sts.amazonaws.com/");
    assert_eq!(decode("iam_request_body"), "Action=GetCallerIdentity&Version=2011-06-15");
    let headers: Value = serde_json::from_str(&decode("iam_request_headers")).unwrap();
    assert_eq!(headers["X-Vault-AWS-IAM-Server-ID"], json!(["vault.example.test"]));
    let authorization = headers["Authorization"][0].as_str().unwrap();
    assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFAKEVAULTTEST/"), "{authorization}");
    assert!(authorization.contains("/us-east-1/sts/aws4_request"), "{authorization}");
    assert!(!login.body.to_string().contains("fake-vault-test-secret-key"));
}
