//! Tests of the provider against a scripted in-memory server under tokio's
//! paused clock: request paths, mount discovery, leases and the 403 rule.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::auth::approle::{AppRoleLogin, Source};
use super::*;
use crate::provider::vault::testing::{half, login_reply, reply, Scripted, Seen};

const CANARY_SECRET: &str = "canary-secret-5c1e";

fn provider(server: &Arc<Scripted>) -> VaultProvider {
    provider_with(server, true)
}

fn provider_with(server: &Arc<Scripted>, revoke_on_close: bool) -> VaultProvider {
    let login = AppRoleLogin::new(
        "approle".into(),
        Source::Literal("role-1".into()),
        Some(Source::Literal("secret-1".into())),
        false,
    );
    VaultProvider::from_parts(
        server.clone(),
        Box::new(login),
        Arc::new(SystemClock),
        half,
        ProviderOptions {
            revoke_on_close,
            ttl: None,
            address: "http://127.0.0.1:1".into(),
            namespace: None,
        },
    )
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

fn mounts(seen: &Seen) -> Result<VaultResponse, Error> {
    let path = seen.path.trim_start_matches("sys/internal/ui/mounts/");
    let (mount, kind, version) = if path.starts_with("secret/") {
        ("secret/", "kv", json!({"version": "2"}))
    } else if path.starts_with("kv1/") {
        ("kv1/", "kv", json!({"version": "1"}))
    } else if path.starts_with("database/") {
        ("database/", "database", serde_json::Value::Null)
    } else {
        return reply(403, json!({"errors": ["preflight capability check returned 403"]}));
    };
    reply(200, json!({"data": {"path": mount, "type": kind, "options": version}}))
}

fn kv2_reply(version: u64) -> Result<VaultResponse, Error> {
    reply(
        200,
        json!({"data": {
            "data": {"password": CANARY_SECRET, "port": 5432},
            "metadata": {"version": version, "created_time": "2026-12-04T20:22:20.5Z", "deletion_time": "", "destroyed": false}
        }}),
    )
}

fn lease_reply(number: u32, ttl: u64) -> Result<VaultResponse, Error> {
    reply(
        200,
        json!({
            "lease_id": format!("database/creds/app/lease-{number}"),
            "renewable": true,
            "lease_duration": ttl,
            "data": {"username": format!("v-app-{number}"), "password": CANARY_SECRET}
        }),
    )
}

#[tokio::test(start_paused = true)]
async fn kv2_read_inserts_data_and_caches_mount() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "secret/data/app/db" => kv2_reply(4),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider(&server);

    let first = provider.fetch(&reference("vault://secret/app/db")).await.unwrap();
    let second = provider.fetch(&reference("vault://secret/app/db?version=4")).await.unwrap();

    assert_eq!(
        server.lines(),
        vec![
            "POST auth/approle/login",
            "GET sys/internal/ui/mounts/secret/app/db",
            "GET secret/data/app/db",
            "GET secret/data/app/db",
        ]
    );
    let reads: Vec<Vec<(String, String)>> = server
        .seen()
        .iter()
        .filter(|seen| seen.path == "secret/data/app/db")
        .map(|seen| seen.query.clone())
        .collect();
    assert_eq!(reads, vec![vec![], vec![("version".to_owned(), "4".to_owned())]]);
    assert!(server.seen().iter().skip(1).all(|seen| seen.token.as_deref() == Some("tok-1")));
    assert_eq!(
        first.value.expose_bytes(),
        format!(r#"{{"password":"{CANARY_SECRET}","port":5432}}"#).as_bytes()
    );
    assert_eq!(first.version_number, Some(4));
    assert_eq!(second.version_id.as_deref(), Some("4"));
    assert!(first.lease.is_none());
}

#[tokio::test(start_paused = true)]
async fn kv2_path_with_data_prefix_is_invalid_reference() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        other => panic!("unexpected request to {other}"),
    });
    let error = provider(&server).fetch(&reference("vault://secret/data/app")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
    assert_eq!(
        error.message(),
        "`secret/data/app` is under the KV version 2 mount `secret/`, and keystead inserts `data/` itself; write vault://secret/app"
    );
}

#[tokio::test(start_paused = true)]
async fn version_on_kv1_is_invalid_reference() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        other => panic!("unexpected request to {other}"),
    });
    let error = provider(&server).fetch(&reference("vault://kv1/app?version=2")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
    assert_eq!(
        error.message(),
        "`?version=` works only on KV version 2 mounts, and `kv1/app` is on a KV version 1 mount"
    );
}

#[tokio::test(start_paused = true)]
async fn path_under_no_mount_is_access_denied() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "auth/token/lookup-self" => reply(200, json!({"data": {"ttl": 0, "renewable": false}})),
        other => panic!("unexpected request to {other}"),
    });
    let error = provider(&server).fetch(&reference("vault://nowhere/app")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied);
    assert!(error.message().starts_with("finding the secrets engine mount of `nowhere/app`"), "{}", error.message());
}

#[tokio::test(start_paused = true)]
async fn leased_read_records_lease() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "database/creds/app" => lease_reply(1, 4),
        other => panic!("unexpected request to {other}"),
    });
    let fetched = provider(&server).fetch(&reference("vault://database/creds/app")).await.unwrap();
    let lease = fetched.lease.clone().unwrap();
    assert_eq!(lease.id, "database/creds/app/lease-1");
    assert_eq!(lease.duration, Duration::from_secs(4));
    assert!(lease.renewable);
    assert!(lease.revoke_on_close);
    assert_eq!(fetched.valid_for, Some(Duration::from_secs(4)));
}

#[tokio::test(start_paused = true)]
async fn version_on_leased_engine_is_invalid_reference() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        other => panic!("unexpected request to {other}"),
    });
    let error = provider(&server).fetch(&reference("vault://database/creds/app?version=1")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
}

#[tokio::test(start_paused = true)]
async fn renew_sends_increment_and_returns_remaining() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "database/creds/app" => lease_reply(1, 4),
        "sys/leases/renew" => reply(200, json!({"lease_id": "database/creds/app/lease-1", "renewable": true, "lease_duration": 3})),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider(&server);
    let lease = provider.fetch(&reference("vault://database/creds/app")).await.unwrap().lease.unwrap();
    let remaining = provider.renew(&lease, Duration::from_secs(4)).await.unwrap();
    assert_eq!(remaining, Duration::from_secs(3));
    let renew = server.seen().into_iter().find(|seen| seen.path == "sys/leases/renew").unwrap();
    assert_eq!(renew.method, "PUT");
    assert_eq!(renew.body, Some(json!({"lease_id": "database/creds/app/lease-1", "increment": 4})));
}

#[tokio::test(start_paused = true)]
async fn renew_of_revoked_lease_is_not_found() {
    // Reproduces Vault's response to renewing a lease revoked by an operator or by
    // its token's end: 400 "lease not found".
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "database/creds/app" => lease_reply(1, 4),
        "sys/leases/renew" => reply(400, json!({"errors": ["lease not found"]})),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider(&server);
    let lease = provider.fetch(&reference("vault://database/creds/app")).await.unwrap().lease.unwrap();
    let error = provider.renew(&lease, Duration::from_secs(4)).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::NotFound);
}

#[tokio::test(start_paused = true)]
async fn lease_of_replaced_token_renews_as_not_found() {
    let logins = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&logins);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "auth/approle/login" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            login_reply(&format!("tok-{number}"), 0, false)
        }
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "database/creds/app" if seen.token.as_deref() == Some("tok-1") => lease_reply(1, 4),
        // The first token was revoked: every request with it is denied.
        _ if seen.token.as_deref() == Some("tok-1") => reply(403, json!({"errors": ["permission denied"]})),
        "secret/data/app" => kv2_reply(1),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider(&server);
    let lease = provider.fetch(&reference("vault://database/creds/app")).await.unwrap().lease.unwrap();

    // A read that hits the revoked token logs in again and retries once.
    provider.fetch(&reference("vault://secret/app")).await.unwrap();
    assert_eq!(provider.auth_status().logins, 2);

    let error = provider.renew(&lease, Duration::from_secs(4)).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::NotFound);
    assert!(error.message().contains("earlier Vault token"), "{}", error.message());
    assert_eq!(server.count("sys/leases/renew"), 0);
}

#[tokio::test(start_paused = true)]
async fn policy_denial_is_reported_without_login() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "secret/data/other" => reply(403, json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})),
        "auth/token/lookup-self" => reply(200, json!({"data": {"ttl": 0, "renewable": false}})),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider(&server);
    for _ in 0..3 {
        let error = provider.fetch(&reference("vault://secret/other")).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::AccessDenied);
        assert_eq!(
            error.message(),
            "reading `secret/other` failed with HTTP 403: 1 error occurred: * permission denied"
        );
    }
    assert_eq!(server.count("auth/approle/login"), 1);
    assert_eq!(server.count("secret/data/other"), 3);
}

#[tokio::test(start_paused = true)]
async fn forbidden_twice_is_one_login_one_retry() {
    let logins = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&logins);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "auth/approle/login" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            login_reply(&format!("tok-{number}"), 0, false)
        }
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "auth/token/lookup-self" => reply(403, json!({"errors": ["permission denied"]})),
        "secret/data/app" => reply(403, json!({"errors": ["permission denied"]})),
        other => panic!("unexpected request to {other}"),
    });
    let error = provider(&server).fetch(&reference("vault://secret/app")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied);
    assert_eq!(server.count("auth/approle/login"), 2);
    assert_eq!(server.count("secret/data/app"), 2);
}

#[tokio::test(start_paused = true)]
async fn lease_is_capped_by_token_at_max_ttl() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 60, true),
        "auth/token/renew-self" => login_reply("tok-1", 30, true),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "database/creds/app" => lease_reply(1, 3600),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider(&server);
    provider.fetch(&reference("vault://database/creds/app")).await.unwrap();

    // After the renewal at 43 s the token ends at 73 s for good, so a lease
    // fetched at 50 s can live 23 s, not an hour.
    tokio::time::sleep(Duration::from_secs(50)).await;
    let fetched = provider.fetch(&reference("vault://database/creds/app")).await.unwrap();
    assert_eq!(fetched.valid_for, Some(Duration::from_secs(23)));
    assert_eq!(fetched.lease.unwrap().duration, Duration::from_secs(23));
}

#[tokio::test(start_paused = true)]
async fn lease_is_capped_by_renewable_token_ttl() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 60, true),
        "auth/token/renew-self" => login_reply("tok-1", 60, true),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "database/creds/app" => lease_reply(1, 3600),
        "sys/leases/renew" => reply(200, json!({"lease_id": "database/creds/app/lease-1", "renewable": true, "lease_duration": 3560})),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider(&server);
    let lease = provider.fetch(&reference("vault://database/creds/app")).await.unwrap().lease.unwrap();
    assert_eq!(lease.duration, Duration::from_secs(60));

    // Renewing the lease 40 s later still promises a full token TTL, so the
    // cache sees an extension and keeps the credentials.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let remaining = provider.renew(&lease, lease.duration).await.unwrap();
    assert_eq!(remaining, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn non_renewable_lease_is_capped_only_by_fixed_token_end() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 60, true),
        path if path.starts_with("sys/internal/ui/mounts/") => mounts(seen),
        "database/creds/app" => reply(
            200,
            json!({"lease_id": "aws/creds/app/1", "renewable": false, "lease_duration": 900, "data": {"access_key": "AKIA"}}),
        ),
        other => panic!("unexpected request to {other}"),
    });
    let fetched = provider(&server).fetch(&reference("vault://database/creds/app")).await.unwrap();
    assert_eq!(fetched.valid_for, Some(Duration::from_secs(900)));
}

#[tokio::test(start_paused = true)]
async fn revoke_sends_lease_id() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        "sys/leases/revoke" => reply(204, serde_json::Value::Null),
        other => panic!("unexpected request to {other}"),
    });
    let provider = provider_with(&server, false);
    let lease = Lease::new("database/creds/app/lease-9", true, Duration::from_secs(4));
    provider.revoke(&lease).await.unwrap();
    let revoke = server.seen().into_iter().find(|seen| seen.path == "sys/leases/revoke").unwrap();
    assert_eq!(revoke.method, "PUT");
    assert_eq!(revoke.body, Some(json!({"lease_id": "database/creds/app/lease-9"})));
}

#[tokio::test(start_paused = true)]
async fn missing_credentials_name_what_to_set() {
    let env = |_: &str| None;
    let config = VaultConfig {
        address: Some("http://127.0.0.1:1".into()),
        ..VaultConfig::default()
    };
    let provider = VaultProvider::from_config_with_env(&config, &env).unwrap().unwrap();
    let error = provider.fetch(&reference("vault://secret/app")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config);
    assert!(error.message().contains("VAULT_TOKEN"), "{}", error.message());
}

#[test]
fn no_address_means_no_provider() {
    let env = |_: &str| None;
    assert!(VaultProvider::from_config_with_env(&VaultConfig::default(), &env).unwrap().is_none());
}

#[test]
fn bao_variables_are_fallbacks() {
    let env = |name: &str| match name {
        "BAO_ADDR" => Some("http://127.0.0.1:8300".to_owned()),
        "BAO_NAMESPACE" => Some("team-a".to_owned()),
        "BAO_TOKEN" => Some("s.canary-token-31".to_owned()),
        _ => None,
    };
    let provider = VaultProvider::from_config_with_env(&VaultConfig::default(), &env).unwrap().unwrap();
    let debug = format!("{provider:?}");
    assert_eq!(
        debug,
        "VaultProvider { address: \"http://127.0.0.1:8300\", namespace: Some(\"team-a\"), auth_method: \"token\", \
         revoke_on_close: true, .. }"
    );
    assert!(!debug.contains("canary-token-31"));
}

#[test]
fn vault_variables_win_over_bao_variables() {
    let env = |name: &str| match name {
        "VAULT_ADDR" => Some("http://127.0.0.1:8200".to_owned()),
        "BAO_ADDR" => Some("http://127.0.0.1:8300".to_owned()),
        _ => None,
    };
    let provider = VaultProvider::from_config_with_env(&VaultConfig::default(), &env).unwrap().unwrap();
    assert_eq!(provider.inner.address, "http://127.0.0.1:8200");
}

#[test]
fn unreadable_ca_file_is_config_error() {
    let env = |_: &str| None;
    let config = VaultConfig {
        address: Some("https://127.0.0.1:8200".into()),
        ca_cert: Some("/nonexistent/ca.pem".into()),
        ..VaultConfig::default()
    };
    let error = VaultProvider::from_config_with_env(&config, &env).map(|_| ()).unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config);
    assert!(error.message().contains("/nonexistent/ca.pem"), "{}", error.message());
}
