//! Tests of the login session, against a scripted in-memory server under
//! tokio's paused clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::approle::{AppRoleLogin, Source};
use super::*;
use crate::clock::SystemClock;
use crate::provider::vault::testing::{half, login_reply, reply, Scripted};

fn approle() -> Box<dyn LoginMethod> {
    Box::new(AppRoleLogin::new(
        "approle".into(),
        Source::Literal("role-1".into()),
        Some(Source::Literal("secret-1".into())),
        false,
    ))
}

fn session(server: &Arc<Scripted>) -> Arc<Session> {
    Session::new(server.clone(), approle(), Arc::new(SystemClock), half)
}

/// Lets background tasks run until they wait on the (paused) clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[test]
fn renewal_delay_is_two_thirds_plus_third_of_grace() {
    let ttl = Duration::from_secs(60);
    let grace = grace_for(ttl, 0.5);
    assert_eq!(grace, Duration::from_secs(9));
    assert_eq!(renewal_delay(ttl, grace), Duration::from_secs(43));
    assert_eq!(grace_for(ttl, 0.0), Duration::from_secs(6));
    assert_eq!(grace_for(ttl, 1.0), Duration::from_secs(12));
}

#[test]
fn login_backoff_doubles_from_one_second_to_five_minutes() {
    assert_eq!(login_backoff(1, 1.0), Duration::from_secs(1));
    assert_eq!(login_backoff(1, 0.0), Duration::from_secs(1));
    assert_eq!(login_backoff(2, 1.0), Duration::from_secs(2));
    assert_eq!(login_backoff(2, 0.0), Duration::from_millis(1500));
    assert_eq!(login_backoff(4, 1.0), Duration::from_secs(8));
    assert_eq!(login_backoff(9, 1.0), Duration::from_secs(256));
    assert_eq!(login_backoff(10, 1.0), Duration::from_secs(300));
    assert_eq!(login_backoff(10, 0.0), Duration::from_secs(225));
    assert_eq!(login_backoff(60, 1.0), Duration::from_secs(300));
}

#[test]
fn renewal_backoff_starts_at_ten_seconds() {
    assert_eq!(renewal_backoff(1, 1.0), Duration::from_secs(10));
    assert_eq!(renewal_backoff(2, 1.0), Duration::from_secs(20));
    assert_eq!(renewal_backoff(7, 1.0), Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn token_renews_at_two_thirds_of_ttl() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 60, true),
        "auth/token/renew-self" => login_reply("tok-1", 60, true),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let start = Instant::now();

    let token = session.token().await.unwrap();
    assert_eq!(token.generation, 1);
    assert_eq!(token.secret.expose_secret(), "tok-1");

    tokio::time::sleep(Duration::from_secs(100)).await;
    settle().await;
    let renewals: Vec<Duration> = server
        .seen()
        .iter()
        .filter(|seen| seen.path == "auth/token/renew-self")
        .map(|seen| seen.at - start)
        .collect();
    // Grace 9 s (15 % at the middle draw): renew at 40 + 3 s, then again
    // 43 s after that.
    assert_eq!(renewals, vec![Duration::from_secs(43), Duration::from_secs(86)]);
    let body = server.seen().iter().find(|seen| seen.path == "auth/token/renew-self").unwrap().body.clone();
    assert_eq!(body, Some(json!({"increment": 60})));
    assert_eq!(session.status().token_renewals, 2);
    assert_eq!(session.status().logins, 1);
}

#[tokio::test(start_paused = true)]
async fn token_at_max_ttl_logs_in_before_end() {
    let logins = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&logins);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "auth/approle/login" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            login_reply(&format!("tok-{number}"), 60, true)
        }
        // The max TTL caps the renewal: 30 s left instead of 60.
        "auth/token/renew-self" => login_reply("tok-1", 30, true),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let start = Instant::now();
    session.token().await.unwrap();

    tokio::time::sleep(Duration::from_secs(70)).await;
    settle().await;

    let times: Vec<(String, Duration)> = server.seen().iter().map(|seen| (seen.path.clone(), seen.at - start)).collect();
    // Renewed at 43 s with 30 s left (end 73 s); the next sleep would end
    // inside the 9 s grace, so the session logs in again at 73 - 9 = 64 s.
    assert_eq!(
        times,
        vec![
            ("auth/approle/login".to_owned(), Duration::ZERO),
            ("auth/token/renew-self".to_owned(), Duration::from_secs(43)),
            ("auth/approle/login".to_owned(), Duration::from_secs(64)),
        ]
    );
    let token = session.token().await.unwrap();
    assert_eq!(token.secret.expose_secret(), "tok-2");
    assert_eq!(token.generation, 2);
    assert_eq!(session.generation(), 2);
}

#[tokio::test(start_paused = true)]
async fn token_horizon_shrinks_at_max_ttl() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 60, true),
        "auth/token/renew-self" => login_reply("tok-1", 30, true),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    session.token().await.unwrap();
    assert_eq!(session.token_horizon(), Some(Duration::from_secs(60)));

    tokio::time::sleep(Duration::from_secs(44)).await;
    settle().await;
    assert_eq!(session.token_horizon(), Some(Duration::from_secs(29)));
    assert!(session.status().token_at_max_ttl);
}

#[tokio::test(start_paused = true)]
async fn failed_logins_back_off_without_requests() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => reply(500, json!({"errors": ["internal error"]})),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);

    let first = session.token().await.unwrap_err();
    assert_eq!(first.class(), ErrorClass::Unavailable);
    assert_eq!(
        first.message(),
        "Vault login (approle) failed: AppRole login failed with HTTP 500: internal error"
    );

    // Inside the first backoff (1 s), callers get the last error at once.
    let second = session.token().await.unwrap_err();
    assert_eq!(server.count("auth/approle/login"), 1);
    assert_eq!(second.class(), ErrorClass::Unavailable);
    assert_eq!(
        second.message(),
        "the last Vault login (approle) failed, next attempt in 1 s: AppRole login failed with HTTP 500: internal error"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    session.token().await.unwrap_err();
    assert_eq!(server.count("auth/approle/login"), 2);

    // The second failure doubles the ceiling: 2 s * 0.875 at the middle draw.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    session.token().await.unwrap_err();
    assert_eq!(server.count("auth/approle/login"), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    session.token().await.unwrap_err();
    assert_eq!(server.count("auth/approle/login"), 3);
    assert_eq!(session.status().last_login_error.unwrap().class(), ErrorClass::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_requests_share_one_login() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let session = Arc::clone(&session);
            tokio::spawn(async move { session.token().await.map(|token| token.generation) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 1);
    }
    assert_eq!(server.count("auth/approle/login"), 1);
}

#[tokio::test(start_paused = true)]
async fn forbidden_with_revoked_token_logs_in_once() {
    let logins = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&logins);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "auth/approle/login" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            login_reply(&format!("tok-{number}"), 0, false)
        }
        "auth/token/lookup-self" => reply(403, json!({"errors": ["permission denied"]})),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let first = session.token().await.unwrap();

    let fresh = session.recover_from_forbidden(&first).await.unwrap().unwrap();
    assert_eq!(fresh.secret.expose_secret(), "tok-2");
    assert_eq!(fresh.generation, 2);

    // A second request that failed with the old token reuses the new one.
    let again = session.recover_from_forbidden(&first).await.unwrap().unwrap();
    assert_eq!(again.generation, 2);
    assert_eq!(server.count("auth/approle/login"), 2);
    assert_eq!(server.count("auth/token/lookup-self"), 1);
}

#[tokio::test(start_paused = true)]
async fn forbidden_with_valid_token_does_not_log_in() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 0, false),
        "auth/token/lookup-self" => reply(200, json!({"data": {"ttl": 0, "renewable": false}})),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let token = session.token().await.unwrap();
    assert!(session.recover_from_forbidden(&token).await.unwrap().is_none());
    assert_eq!(server.count("auth/approle/login"), 1);
}

#[tokio::test(start_paused = true)]
async fn renewal_rejected_logs_in_again() {
    let logins = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&logins);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "auth/approle/login" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            login_reply(&format!("tok-{number}"), 60, true)
        }
        "auth/token/renew-self" => reply(403, json!({"errors": ["permission denied"]})),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let start = Instant::now();
    session.token().await.unwrap();

    tokio::time::sleep(Duration::from_secs(44)).await;
    settle().await;
    let times: Vec<(String, Duration)> = server.seen().iter().map(|seen| (seen.path.clone(), seen.at - start)).collect();
    assert_eq!(
        times,
        vec![
            ("auth/approle/login".to_owned(), Duration::ZERO),
            ("auth/token/renew-self".to_owned(), Duration::from_secs(43)),
            ("auth/approle/login".to_owned(), Duration::from_secs(43)),
        ]
    );
    assert_eq!(session.generation(), 2);
}

#[tokio::test(start_paused = true)]
async fn renewal_errors_retry_until_login_point() {
    let logins = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&logins);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "auth/approle/login" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            login_reply(&format!("tok-{number}"), 60, true)
        }
        "auth/token/renew-self" => reply(503, json!({"errors": ["Vault is sealed"]})),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let start = Instant::now();
    session.token().await.unwrap();

    tokio::time::sleep(Duration::from_secs(60)).await;
    settle().await;
    let times: Vec<(String, Duration)> = server.seen().iter().map(|seen| (seen.path.clone(), seen.at - start)).collect();
    // Renewal fails at 43 s. The retry 10 s later would land past the
    // login point (60 - 9 = 51 s), so the session logs in at 51 s instead.
    assert_eq!(
        times,
        vec![
            ("auth/approle/login".to_owned(), Duration::ZERO),
            ("auth/token/renew-self".to_owned(), Duration::from_secs(43)),
            ("auth/approle/login".to_owned(), Duration::from_secs(51)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn expired_token_is_replaced_on_demand() {
    let logins = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&logins);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "auth/approle/login" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            // Non-renewable, so the session logs in again at end - grace.
            login_reply(&format!("tok-{number}"), 10, false)
        }
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    let start = Instant::now();
    session.token().await.unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await;
    settle().await;
    let token = session.token().await.unwrap();
    assert_eq!(token.secret.expose_secret(), "tok-2");
    let second_login = server.seen()[1].at - start;
    assert_eq!(second_login, Duration::from_millis(8500));
}

#[tokio::test(start_paused = true)]
async fn wrapped_secret_id_is_unwrapped_once_per_wrapping_token() {
    let folder = tempfile::tempdir().unwrap();
    let wrapped_file = folder.path().join("secret-id");
    std::fs::write(&wrapped_file, "wrap-1\n").unwrap();
    let unwraps = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&unwraps);
    let server = Scripted::new(move |seen| match seen.path.as_str() {
        "sys/wrapping/unwrap" => {
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(seen.token.as_deref(), Some(format!("wrap-{number}").as_str()));
            reply(200, json!({"data": {"secret_id": format!("unwrapped-{number}"), "secret_id_accessor": "a"}}))
        }
        "auth/approle/login" => login_reply("tok", 0, false),
        other => panic!("unexpected request to {other}"),
    });
    let login = AppRoleLogin::new(
        "approle".into(),
        Source::Literal("role-1".into()),
        Some(Source::File(wrapped_file.clone())),
        true,
    );

    login.login(&*server).await.unwrap();
    login.login(&*server).await.unwrap();
    std::fs::write(&wrapped_file, "wrap-2").unwrap();
    login.login(&*server).await.unwrap();

    let bodies: Vec<serde_json::Value> = server
        .seen()
        .iter()
        .filter(|seen| seen.path == "auth/approle/login")
        .filter_map(|seen| seen.body.clone())
        .collect();
    assert_eq!(
        bodies,
        vec![
            json!({"role_id": "role-1", "secret_id": "unwrapped-1"}),
            json!({"role_id": "role-1", "secret_id": "unwrapped-1"}),
            json!({"role_id": "role-1", "secret_id": "unwrapped-2"}),
        ]
    );
    assert_eq!(unwraps.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn used_wrapping_token_is_access_denied() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "sys/wrapping/unwrap" => reply(400, json!({"errors": ["wrapping token is not valid or does not exist"]})),
        other => panic!("unexpected request to {other}"),
    });
    let login = AppRoleLogin::new(
        "approle".into(),
        Source::Literal("role-1".into()),
        Some(Source::Literal("wrap-used".into())),
        true,
    );
    let error = login.login(&*server).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied);
    assert!(error.message().contains("wrapping token is not valid"), "{}", error.message());
    assert!(!error.message().contains("wrap-used"), "{}", error.message());
}

#[tokio::test(start_paused = true)]
async fn dropping_session_stops_renewal() {
    let server = Scripted::new(|seen| match seen.path.as_str() {
        "auth/approle/login" => login_reply("tok-1", 60, true),
        "auth/token/renew-self" => login_reply("tok-1", 60, true),
        other => panic!("unexpected request to {other}"),
    });
    let session = session(&server);
    session.token().await.unwrap();
    drop(session);
    tokio::time::sleep(Duration::from_secs(200)).await;
    settle().await;
    assert_eq!(server.count("auth/token/renew-self"), 0);
}

#[test]
fn token_debug_is_redacted() {
    let token = Token {
        secret: SecretString::from("s.canary-token-77".to_owned()),
        generation: 3,
    };
    let debug = format!("{token:?}");
    assert_eq!(debug, "Token { generation: 3, secret: [REDACTED] }");
}
