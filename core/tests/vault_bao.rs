//! The Vault provider against a real OpenBao dev server (and, for dynamic
//! database credentials, a real PostgreSQL), each started by this test
//! binary on loopback.
//!
//! Lease and token tests run in real time with TTLs of a few seconds, so
//! that renewal, the maximum TTL and revocation happen inside the run.
//! Every wait polls state against a deadline.

#![cfg(feature = "vault")]

mod support;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use keystead::config::{AppRoleAuth, JwtAuth, KubernetesAuth, SecretText, VaultAuthConfig, VaultConfig};
use keystead::provider::vault::VaultProvider;
use keystead::{Client, Config, ErrorClass};
use serde_json::{json, Value};
use support::bao::{Bao, ROOT_TOKEN};
use support::postgres::{Postgres, SUPERUSER_PASSWORD};

const CANARY_VALUE: &str = "canary-value-2b7f91";

fn provider(config: &VaultConfig) -> VaultProvider {
    VaultProvider::from_config(config)
        .expect("the Vault configuration is valid")
        .expect("the configuration has an address")
}

fn root_config(bao: &Bao) -> VaultConfig {
    let mut config = bao.config();
    config.token = Some(SecretText::new(ROOT_TOKEN));
    config
}

fn client(provider: &VaultProvider) -> Client {
    client_with(provider, Config::default())
}

fn client_with(provider: &VaultProvider, config: Config) -> Client {
    Client::builder()
        .config(config)
        .without_default_providers()
        .provider(provider.clone())
        .build()
        .expect("the client builds")
}

async fn text(client: &Client, reference: &str) -> String {
    let secret = client
        .get(reference)
        .await
        .unwrap_or_else(|error| panic!("{reference}: {error}"));
    secret.expose_str().expect("the value is text").to_owned()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics naming
/// `what` once `limit` has passed.
async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Returns every log line of this test binary, at trace level. One global
/// subscriber, because a thread-local one misses events from other threads.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Writer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the log buffer lock is not poisoned").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer(Arc::clone(&buffer));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        buffer
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_versions_deletes_and_destroys() {
    captured_logs();
    let bao = Bao::start();
    assert_eq!(bao.kv2_put("secret", "app/db", json!({"password": "first"})).await, 1);
    bao.api(
        "POST",
        "secret/data/app/db",
        Some(json!({"options": {"cas": 1}, "data": {"password": "second"}})),
    )
    .await
    .expect("a write with the right CAS version succeeds");
    let stale_cas = bao
        .api("POST", "secret/data/app/db", Some(json!({"options": {"cas": 1}, "data": {"password": "lost"}})))
        .await
        .unwrap_err();
    assert!(stale_cas.contains("HTTP 400"), "{stale_cas}");

    let provider = provider(&root_config(&bao));
    let client = client(&provider);
    let latest = client.get("vault://secret/app/db#password").await.unwrap();
    assert_eq!(latest.expose_str().unwrap(), "second");
    assert_eq!(latest.metadata().version_number, Some(2));
    assert_eq!(text(&client, "vault://secret/app/db?version=1#password").await, "first");

    // Soft delete of the latest version: 404 with metadata, a typed error.
    bao.api("DELETE", "secret/data/app/db", None).await.unwrap();
    let deleted = client.refresh("vault://secret/app/db").await.unwrap_err();
    assert_eq!(deleted.class(), ErrorClass::SecretDeleted);
    assert!(
        deleted.message().starts_with("the latest version (2) of `secret/app/db` was deleted at "),
        "{}",
        deleted.message()
    );
    assert_eq!(
        client.get("vault://secret/app/db#password").await.unwrap_err().class(),
        ErrorClass::SecretDeleted
    );

    bao.api("POST", "secret/undelete/app/db", Some(json!({"versions": [2]}))).await.unwrap();
    let restored = client.refresh("vault://secret/app/db").await.unwrap();
    assert_eq!(restored.expose_str().unwrap(), r#"{"password":"second"}"#);

    bao.api("POST", "secret/destroy/app/db", Some(json!({"versions": [1]}))).await.unwrap();
    let destroyed = client.refresh("vault://secret/app/db?version=1").await.unwrap_err();
    assert_eq!(destroyed.class(), ErrorClass::SecretDeleted);
    assert_eq!(
        destroyed.message(),
        "version 1 of `secret/app/db` is destroyed; write a new version or read an earlier one with ?version=N"
    );

    let never = client.get("vault://secret/app/never-written").await.unwrap_err();
    assert_eq!(never.class(), ErrorClass::NotFound);
    assert_eq!(never.message(), "no secret at `secret/app/never-written`");
    let no_version = client.get("vault://secret/app/db?version=9").await.unwrap_err();
    assert_eq!(no_version.class(), ErrorClass::NotFound);

    let doubled = client.get("vault://secret/data/app/db").await.unwrap_err();
    assert_eq!(doubled.class(), ErrorClass::InvalidReference);
    assert!(doubled.message().ends_with("write vault://secret/app/db"), "{}", doubled.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_values_keep_json_types() {
    captured_logs();
    let bao = Bao::start();
    bao.kv2_put(
        "secret",
        "typed",
        json!({"port": 5432, "ratio": 1.5, "enabled": true, "nested": {"hosts": ["a", "b"]}, "empty": "", "nothing": null}),
    )
    .await;
    let client = client(&provider(&root_config(&bao)));

    assert_eq!(text(&client, "vault://secret/typed#port").await, "5432");
    assert_eq!(text(&client, "vault://secret/typed#ratio").await, "1.5");
    assert_eq!(text(&client, "vault://secret/typed#enabled").await, "true");
    assert_eq!(text(&client, "vault://secret/typed#nested").await, r#"{"hosts":["a","b"]}"#);
    assert_eq!(text(&client, "vault://secret/typed#nested.hosts").await, r#"["a","b"]"#);
    assert_eq!(text(&client, "vault://secret/typed#empty").await, "");

    let missing = client.get("vault://secret/typed#passwrod").await.unwrap_err();
    assert_eq!(missing.class(), ErrorClass::FieldNotFound);
    assert!(missing.message().contains("passwrod"), "{}", missing.message());
    let null = client.get("vault://secret/typed#nothing").await.unwrap_err();
    assert_eq!(null.class(), ErrorClass::FieldNotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv1_reads_and_rejects_version() {
    captured_logs();
    let bao = Bao::start();
    bao.enable_engine("legacy", "kv", json!({"version": "1"})).await;
    bao.api("POST", "legacy/app", Some(json!({"user": "app", "port": 5432})))
        .await
        .unwrap();
    let client = client(&provider(&root_config(&bao)));

    let whole = client.get("vault://legacy/app").await.unwrap();
    assert_eq!(whole.expose_str().unwrap(), r#"{"port":5432,"user":"app"}"#);
    assert_eq!(whole.metadata().version_number, None);
    assert_eq!(whole.metadata().expires_at, None);
    assert_eq!(text(&client, "vault://legacy/app#user").await, "app");

    let versioned = client.get("vault://legacy/app?version=1").await.unwrap_err();
    assert_eq!(versioned.class(), ErrorClass::InvalidReference);
    let missing = client.get("vault://legacy/nothing").await.unwrap_err();
    assert_eq!(missing.class(), ErrorClass::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_header_selects_namespace() {
    captured_logs();
    let bao = Bao::start();
    bao.api("POST", "sys/namespaces/team-a", Some(json!({}))).await.unwrap();
    bao.api_as(
        ROOT_TOKEN,
        Some("team-a"),
        "POST",
        "sys/mounts/kv",
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await
    .unwrap();
    bao.api_as(
        ROOT_TOKEN,
        Some("team-a"),
        "POST",
        "kv/data/app",
        Some(json!({"data": {"where": "inside team-a"}})),
    )
    .await
    .unwrap();

    let mut config = root_config(&bao);
    config.namespace = Some("team-a".into());
    let inside = client(&provider(&config));
    assert_eq!(text(&inside, "vault://kv/app#where").await, "inside team-a");

    // Without the header the same path is under no mount of the root
    // namespace, and the namespace can also be written as a path prefix.
    let outside = client(&provider(&root_config(&bao)));
    assert_eq!(
        outside.get("vault://kv/app").await.unwrap_err().class(),
        ErrorClass::AccessDenied
    );
    assert_eq!(text(&outside, "vault://team-a/kv/app#where").await, "inside team-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_is_verified_with_ca_cert() {
    captured_logs();
    let bao = Bao::start_tls();
    bao.kv2_put("secret", "tls", json!({"ok": "yes"})).await;

    let trusted = client(&provider(&root_config(&bao)));
    assert_eq!(text(&trusted, "vault://secret/tls#ok").await, "yes");

    let mut untrusted_config = root_config(&bao);
    untrusted_config.ca_cert = None;
    let untrusted = client(&provider(&untrusted_config));
    let error = untrusted.get("vault://secret/tls#ok").await.unwrap_err();
    // A rejected certificate is not a transient failure: retrying cannot
    // help, and a cached value must not be served on through it.
    assert_eq!(error.class(), ErrorClass::Config);
    assert!(error.message().contains("TLS certificate was rejected"), "{}", error.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logs_in_with_plain_and_wrapped_secret_id() {
    captured_logs();
    let bao = Bao::start();
    bao.kv2_put("secret", "app", json!({"password": CANARY_VALUE})).await;
    bao.put_policy("app", r#"path "secret/data/app" { capabilities = ["read"] }"#).await;
    bao.enable_auth("approle", "approle").await;
    bao.api(
        "POST",
        "auth/approle/role/app",
        Some(json!({"token_policies": ["app"], "token_ttl": "1h", "secret_id_num_uses": 0})),
    )
    .await
    .unwrap();
    let role_id = bao.api("GET", "auth/approle/role/app/role-id", None).await.unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let folder = tempfile::tempdir().unwrap();

    // A plain secret id in a file.
    let secret_id = bao.api("POST", "auth/approle/role/app/secret-id", None).await.unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain_file = folder.path().join("secret-id");
    std::fs::write(&plain_file, format!("{secret_id}\n")).unwrap();
    let mut config = bao.config();
    config.auth = Some(VaultAuthConfig::AppRole(AppRoleAuth::new(role_id.clone(), plain_file)));
    let plain = provider(&config);
    assert_eq!(text(&client(&plain), "vault://secret/app#password").await, CANARY_VALUE);
    assert_eq!(plain.auth_status().method, "approle");
    assert_eq!(plain.auth_status().logins, 1);

    // A response-wrapped secret id: the file contains a single-use wrapping
    // token that keystead unwraps.
    let wrapped = bao
        .api_wrapped("auth/approle/role/app/secret-id", "60s")
        .await;
    let wrapped_file = folder.path().join("wrapped-secret-id");
    std::fs::write(&wrapped_file, &wrapped).unwrap();
    let mut approle = AppRoleAuth::new(role_id, wrapped_file);
    approle.secret_id_wrapped = true;
    let mut config = bao.config();
    config.auth = Some(VaultAuthConfig::AppRole(approle));
    let wrapped_provider = provider(&config);
    let wrapped_client = client(&wrapped_provider);
    assert_eq!(text(&wrapped_client, "vault://secret/app#password").await, CANARY_VALUE);

    // The wrapping token is spent now; a second client with the same file
    // gets a clear access-denied error instead of a retry loop.
    let second = client(&provider(&config));
    let error = second.get("vault://secret/app#password").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied);
    assert!(error.message().contains("unwrapping the AppRole secret id"), "{}", error.message());
    assert!(!error.message().contains(&wrapped), "{}", error.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_with_locally_signed_token() {
    captured_logs();
    let bao = Bao::start();
    bao.kv2_put("secret", "jwt-app", json!({"password": CANARY_VALUE})).await;
    bao.put_policy("jwt-app", r#"path "secret/data/jwt-app" { capabilities = ["read"] }"#).await;
    bao.enable_auth("jwt", "jwt").await;
    let issuer = Issuer::new();
    bao.api(
        "POST",
        "auth/jwt/config",
        Some(json!({"jwt_validation_pubkeys": [issuer.public_key_pem()], "bound_issuer": "keystead-tests"})),
    )
    .await
    .unwrap();
    bao.api(
        "POST",
        "auth/jwt/role/app",
        Some(json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "token_policies": ["jwt-app"],
            "token_ttl": "1h"
        })),
    )
    .await
    .unwrap();

    let folder = tempfile::tempdir().unwrap();
    let jwt_file = folder.path().join("token");
    std::fs::write(&jwt_file, issuer.sign(&json!({"sub": "ci-job-1", "aud": "vault"}))).unwrap();
    let mut jwt = JwtAuth::new(&jwt_file);
    jwt.role = Some("app".into());
    let mut config = bao.config();
    config.auth = Some(VaultAuthConfig::Jwt(jwt));
    let jwt_provider = provider(&config);
    assert_eq!(text(&client(&jwt_provider), "vault://secret/jwt-app#password").await, CANARY_VALUE);

    // A JWT for the wrong audience is rejected as access denied.
    std::fs::write(&jwt_file, issuer.sign(&json!({"sub": "ci-job-1", "aud": "elsewhere"}))).unwrap();
    let rejected = client(&provider(&config)).get("vault://secret/jwt-app").await.unwrap_err();
    assert_eq!(rejected.class(), ErrorClass::AccessDenied);
    assert!(rejected.message().starts_with("Vault login (jwt) failed"), "{}", rejected.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_login_against_local_token_review() {
    captured_logs();
    // A TLS server, because the Kubernetes method insists on a CA
    // certificate for the cluster even when the cluster is plain HTTP; the
    // dev server's CA serves.
    let bao = Bao::start_tls();
    let cluster_ca = std::fs::read_to_string(bao.ca_cert.as_ref().unwrap()).unwrap();
    bao.kv2_put("secret", "k8s-app", json!({"password": CANARY_VALUE})).await;
    bao.put_policy("k8s-app", r#"path "secret/data/k8s-app" { capabilities = ["read"] }"#).await;
    bao.enable_auth("kubernetes", "kubernetes").await;

    let issuer = Issuer::new();
    let service_account_token = issuer.sign(&json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:team-a:app-sa",
        "kubernetes.io/serviceaccount/namespace": "team-a",
        "kubernetes.io/serviceaccount/service-account.name": "app-sa",
        "kubernetes.io/serviceaccount/service-account.uid": "5b1c-uid",
        "kubernetes.io/serviceaccount/secret.name": "app-sa-token",
        "kubernetes.io": {"namespace": "team-a", "serviceaccount": {"name": "app-sa", "uid": "5b1c-uid"}}
    }));
    let review = TokenReviewServer::start(service_account_token.clone()).await;
    bao.api(
        "POST",
        "auth/kubernetes/config",
        Some(json!({
            "kubernetes_host": review.address,
            "kubernetes_ca_cert": cluster_ca,
            "disable_local_ca_jwt": true,
            "pem_keys": [issuer.public_key_pem()]
        })),
    )
    .await
    .unwrap();
    bao.api(
        "POST",
        "auth/kubernetes/role/app",
        Some(json!({
            "bound_service_account_names": ["app-sa"],
            "bound_service_account_namespaces": ["team-a"],
            "token_policies": ["k8s-app"],
            "token_ttl": "1h"
        })),
    )
    .await
    .unwrap();

    let folder = tempfile::tempdir().unwrap();
    let token_file = folder.path().join("token");
    std::fs::write(&token_file, &service_account_token).unwrap();
    let mut kubernetes = KubernetesAuth::new("app");
    kubernetes.token_file = Some(token_file);
    let mut config = bao.config();
    config.auth = Some(VaultAuthConfig::Kubernetes(kubernetes));
    let kubernetes_provider = provider(&config);
    assert_eq!(
        text(&client(&kubernetes_provider), "vault://secret/k8s-app#password").await,
        CANARY_VALUE
    );
    assert_eq!(review.reviews(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_renews_then_logs_in_again_at_max_ttl() {
    captured_logs();
    let bao = Bao::start();
    bao.kv2_put("secret", "short", json!({"n": "1"})).await;
    bao.put_policy("short", r#"path "secret/data/short" { capabilities = ["read"] }"#).await;
    let (role_id, secret_file, _folder) = approle_with_ttls(&bao, "short", "3s", "6s").await;
    let mut config = bao.config();
    config.auth = Some(VaultAuthConfig::AppRole(AppRoleAuth::new(role_id, secret_file)));
    let provider = provider(&config);
    let client = client(&provider);
    assert_eq!(text(&client, "vault://secret/short#n").await, "1");

    // A 3 s token is renewed at about 2 s. The 6 s maximum stops the
    // renewals, so the session logs in again before the token ends.
    let status = wait_for(Duration::from_secs(15), "a renewal and a second login", || {
        let status = provider.auth_status();
        async move { (status.logins >= 2 && status.token_renewals >= 1).then_some(status) }
    })
    .await;
    assert_eq!(status.last_login_error.map(|error| error.class()), None);
    assert_eq!(text(&client, "vault://secret/short#n").await, "1");
    let refreshed = client.refresh("vault://secret/short").await.unwrap();
    assert_eq!(refreshed.expose_str().unwrap(), r#"{"n":"1"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_static_token_is_access_denied() {
    captured_logs();
    let bao = Bao::start();
    bao.kv2_put("secret", "static", json!({"n": "1"})).await;
    bao.put_policy("static", r#"path "secret/data/static" { capabilities = ["read"] }"#).await;
    let token = bao.create_token(&["static"], "2s", Some("2s")).await;
    let mut config = bao.config();
    config.token = Some(SecretText::new(token.clone()));
    let provider = provider(&config);
    let client = client(&provider);
    assert_eq!(text(&client, "vault://secret/static#n").await, "1");

    let error = wait_for(Duration::from_secs(10), "the static token to expire", || {
        let client = client.clone();
        async move { client.refresh("vault://secret/static").await.err() }
    })
    .await;
    assert_eq!(error.class(), ErrorClass::AccessDenied);
    assert!(!error.message().contains(&token), "{}", error.message());
    assert!(!format!("{provider:?} {client:?} {error:?}").contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_secret_does_not_fail_others() {
    captured_logs();
    let bao = Bao::start();
    bao.kv2_put("secret", "allowed", json!({"v": "ok"})).await;
    bao.kv2_put("secret", "forbidden", json!({"v": CANARY_VALUE})).await;
    bao.put_policy("narrow", r#"path "secret/data/allowed" { capabilities = ["read"] }"#).await;
    let (role_id, secret_file, _folder) = approle_with_ttls(&bao, "narrow", "1h", "2h").await;
    let mut config = bao.config();
    config.auth = Some(VaultAuthConfig::AppRole(AppRoleAuth::new(role_id, secret_file)));
    let provider = provider(&config);
    let client = client(&provider);

    for _ in 0..3 {
        let denied = client.refresh("vault://secret/forbidden").await.unwrap_err();
        assert_eq!(denied.class(), ErrorClass::AccessDenied);
        assert_eq!(denied.reference(), Some("vault://secret/forbidden"));
        assert_eq!(text(&client, "vault://secret/allowed#v").await, "ok");
    }
    // A policy denial is not cured by logging in again, so nothing did.
    assert_eq!(provider.auth_status().logins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_lease_renews_rotates_and_revokes() {
    captured_logs();
    let postgres = Postgres::shared();
    let bao = Bao::start();
    configure_database(&bao, postgres, "rotating", "4s", "12s").await;
    let provider = provider(&root_config(&bao));
    let client = client(&provider);

    let rotations = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&rotations);
    let _subscription = client
        .subscribe("vault://database/creds/rotating#username", move |event| {
            if let Ok(secret) = &event.secret {
                seen.lock().unwrap().push(secret.expose_str().unwrap_or_default().to_owned());
            }
        })
        .unwrap();

    let first = client.get("vault://database/creds/rotating").await.unwrap();
    let first_user = first.field("username").unwrap().expose_str().unwrap().to_owned();
    let first_password = first.field("password").unwrap().expose_str().unwrap().to_owned();
    assert_eq!(postgres.query_as(&first_user, &first_password, "SELECT current_user"), Ok(first_user.clone()));
    let started = Instant::now();

    // Past the first 4 s lease the same credentials still work: the cache
    // renewed the lease instead of fetching new ones.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(text(&client, "vault://database/creds/rotating#username").await, first_user);
    assert_eq!(postgres.query_as(&first_user, &first_password, "SELECT 1"), Ok("1".to_owned()));

    // Near the 12 s maximum the renewal stops extending the lease, and the
    // cache switches to new credentials before the old ones expire.
    let second_user = wait_for(Duration::from_secs(12), "new credentials at the maximum TTL", || {
        let rotations = Arc::clone(&rotations);
        async move { rotations.lock().unwrap().first().cloned() }
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(12), "rotated only after {:?}", started.elapsed());
    assert_ne!(second_user, first_user);
    let second = client.get("vault://database/creds/rotating").await.unwrap();
    assert_eq!(second.field("username").unwrap().expose_str().unwrap(), second_user);
    let second_password = second.field("password").unwrap().expose_str().unwrap().to_owned();
    assert_eq!(postgres.query_as(&second_user, &second_password, "SELECT 1"), Ok("1".to_owned()));
    assert_eq!(rotations.lock().unwrap().len(), 1, "one notification per rotation");

    // Shutting down revokes the current lease, and Vault drops the role.
    client.shutdown().await;
    wait_for(Duration::from_secs(10), "the revoked role to be dropped", || {
        let gone = !postgres.role_exists(&second_user);
        async move { gone.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_refetched_after_token_replaced() {
    captured_logs();
    let postgres = Postgres::shared();
    let bao = Bao::start();
    configure_database(&bao, postgres, "bound", "30s", "60s").await;
    bao.put_policy(
        "db-reader",
        r#"path "database/creds/bound" { capabilities = ["read"] }
path "sys/leases/revoke" { capabilities = ["update"] }"#,
    )
    .await;
    let (role_id, secret_file, _folder) = approle_with_ttls(&bao, "db-reader", "3s", "6s").await;
    let mut config = bao.config();
    config.auth = Some(VaultAuthConfig::AppRole(AppRoleAuth::new(role_id, secret_file)));
    let provider = provider(&config);
    let client = client(&provider);

    let first_user = text(&client, "vault://database/creds/bound#username").await;

    // The token cannot outlive its 6 s maximum, so neither can its leases:
    // the session logs in again, and the cache replaces the credentials
    // with ones created under the new token.
    let replacement = wait_for(Duration::from_secs(20), "credentials under the new token", || {
        let client = client.clone();
        let logins = provider.auth_status().logins;
        let first_user = first_user.clone();
        async move {
            let user = client.get("vault://database/creds/bound#username").await.ok()?;
            let user = user.expose_str().ok()?.to_owned();
            (logins >= 2 && user != first_user).then_some(user)
        }
    })
    .await;
    let current = client.get("vault://database/creds/bound").await.unwrap();
    let password = current.field("password").unwrap().expose_str().unwrap().to_owned();
    assert_eq!(postgres.query_as(&replacement, &password, "SELECT current_user"), Ok(replacement.clone()));

    // Vault revoked the first credentials together with the first token.
    wait_for(Duration::from_secs(15), "the first token's role to be dropped", || {
        let gone = !postgres.role_exists(&first_user);
        async move { gone.then_some(()) }
    })
    .await;
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_absent_from_logs_errors_and_debug() {
    let logs = captured_logs();
    let bao = Bao::start();
    bao.kv2_put("secret", "canary", json!({"password": CANARY_VALUE, "n": 1})).await;
    bao.put_policy("canary", r#"path "secret/data/canary" { capabilities = ["read"] }"#).await;

    // A renewable static token with a 3 s TTL, so renewals are logged too.
    let token = bao.create_token(&["canary"], "3s", Some("1h")).await;
    let mut token_config = bao.config();
    token_config.token = Some(SecretText::new(token.clone()));
    let token_provider = provider(&token_config);
    let token_client = client(&token_provider);

    // An AppRole login, so the secret id travels too.
    let (role_id, secret_file, _folder) = approle_with_ttls(&bao, "canary", "1h", "2h").await;
    let secret_id = std::fs::read_to_string(&secret_file).unwrap().trim().to_owned();
    let mut approle_config = bao.config();
    approle_config.auth = Some(VaultAuthConfig::AppRole(AppRoleAuth::new(role_id, secret_file)));
    let approle_provider = provider(&approle_config);
    let approle_client = client(&approle_provider);

    let secret = token_client.get("vault://secret/canary#password").await.unwrap();
    assert_eq!(secret.expose_str().unwrap(), CANARY_VALUE);
    let whole = approle_client.get("vault://secret/canary").await.unwrap();
    let missing = token_client.get("vault://secret/canary#nope").await.unwrap_err();
    let denied = approle_client.get("vault://secret/other").await.unwrap_err();
    wait_for(Duration::from_secs(10), "a token renewal", || {
        let renewals = token_provider.auth_status().token_renewals;
        async move { (renewals >= 1).then_some(()) }
    })
    .await;

    let channels = [
        format!("{secret:?}"),
        format!("{secret:#?}"),
        secret.to_string(),
        format!("{whole:?}"),
        format!("{missing} {missing:?}"),
        format!("{denied} {denied:?}"),
        format!("{token_provider:?} {:?}", token_provider.auth_status()),
        format!("{approle_provider:?} {:?}", approle_provider.auth_status()),
        format!("{token_client:?} {approle_client:?}"),
        format!("{token_config:?} {approle_config:?}"),
    ];
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("renewed the Vault token"), "the log capture works");
    for (name, canary) in [("value", CANARY_VALUE), ("secret id", secret_id.as_str()), ("token", token.as_str())] {
        for text in &channels {
            assert!(!text.contains(canary), "the {name} leaked: {text}");
        }
        assert!(!logs.contains(canary), "the {name} leaked into the logs");
    }
}

/// Creates an AppRole role with these token TTLs and a secret id file.
async fn approle_with_ttls(bao: &Bao, policy: &str, ttl: &str, max_ttl: &str) -> (String, PathBuf, tempfile::TempDir) {
    bao.api("POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await.ok();
    bao.api(
        "POST",
        &format!("auth/approle/role/{policy}"),
        Some(json!({"token_policies": [policy], "token_ttl": ttl, "token_max_ttl": max_ttl})),
    )
    .await
    .unwrap();
    let role_id = bao.api("GET", &format!("auth/approle/role/{policy}/role-id"), None).await.unwrap()["data"]
        ["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = bao
        .api("POST", &format!("auth/approle/role/{policy}/secret-id"), None)
        .await
        .unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("secret-id");
    std::fs::write(&file, secret_id).unwrap();
    (role_id, file, folder)
}

/// Mounts the database engine against `postgres` with a role whose leases
/// have these TTLs.
async fn configure_database(bao: &Bao, postgres: &Postgres, role: &str, ttl: &str, max_ttl: &str) {
    bao.enable_engine("database", "database", json!({})).await;
    bao.api(
        "POST",
        "database/config/pg",
        Some(json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": postgres.vault_connection_url(),
            "username": "postgres",
            "password": SUPERUSER_PASSWORD,
            "allowed_roles": "*"
        })),
    )
    .await
    .expect("the database connection is configured");
    bao.api(
        "POST",
        &format!("database/roles/{role}"),
        Some(json!({
            "db_name": "pg",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
            ],
            "default_ttl": ttl,
            "max_ttl": max_ttl
        })),
    )
    .await
    .expect("the database role is written");
}

/// Signs ES256 JWTs with a key made for this test.
struct Issuer {
    key: p256::ecdsa::SigningKey,
}

impl Issuer {
    fn new() -> Issuer {
        loop {
            let bytes: [u8; 32] = std::array::from_fn(|_| fastrand::u8(..));
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
                return Issuer { key };
            }
        }
    }

    fn public_key_pem(&self) -> String {
        use p256::pkcs8::EncodePublicKey;
        self.key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .expect("the public key encodes as PEM")
    }

    /// Signs `claims`, adding `iss`, `iat`, `nbf` and `exp` unless given.
    fn sign(&self, claims: &Value) -> String {
        use p256::ecdsa::signature::Signer;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let mut claims = claims.clone();
        let object = claims.as_object_mut().expect("claims are an object");
        object.entry("iss").or_insert(json!("keystead-tests"));
        object.entry("iat").or_insert(json!(now));
        object.entry("nbf").or_insert(json!(now - 5));
        object.entry("exp").or_insert(json!(now + 600));
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let signing_input = format!("{header}.{payload}");
        let signature: p256::ecdsa::Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// A tiny Kubernetes API server that serves only TokenReview, accepting
/// one service account token.
struct TokenReviewServer {
    address: String,
    reviews: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenReviewServer {
    async fn start(accepted: String) -> TokenReviewServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let reviews = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&reviews);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let accepted = accepted.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Some((head, body)) = read_http_request(&mut stream).await else { return };
                    let token = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|review| review["spec"]["token"].as_str().map(str::to_owned));
                    let authenticated = head.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews")
                        && token.as_deref() == Some(accepted.as_str());
                    *counter.lock().unwrap() += 1;
                    let status = if authenticated {
                        json!({
                            "authenticated": true,
                            "user": {
                                "username": "system:serviceaccount:team-a:app-sa",
                                "uid": "5b1c-uid",
                                "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a"]
                            }
                        })
                    } else {
                        json!({"authenticated": false, "error": "token not accepted"})
                    };
                    let answer = json!({
                        "apiVersion": "authentication.k8s.io/v1",
                        "kind": "TokenReview",
                        "status": status
                    })
                    .to_string();
                    let response = format!(
                        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                    let _ = stream.read(&mut [0u8; 1]).await;
                });
            }
        });
        TokenReviewServer { address, reviews, task }
    }

    fn reviews(&self) -> usize {
        *self.reviews.lock().unwrap()
    }
}

impl Drop for TokenReviewServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request: the head as text and the body by
/// `Content-Length`.
async fn read_http_request(stream: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
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
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    Some((head, buffer[head_end..head_end + length].to_vec()))
}
