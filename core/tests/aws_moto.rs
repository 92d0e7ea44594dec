//! The AWS providers against a real moto server (started once for this
//! binary by `support::moto`), and the credential sources against fake
//! container and instance-metadata endpoints on loopback.
//!
//! Every test uses its own secret and parameter names, so the tests share
//! one server and run in parallel.

mod support;

use std::time::{Duration, SystemTime};

use keystead::provider::aws::{self, AwsEnvironment, SecretsManagerProvider, SsmProvider};
use keystead::{Encoding, ErrorClass, Fetched, Provider, Reference};
use serde_json::json;
use support::fault::{FaultServer, Reply};
use support::moto::{Moto, TestCredentials, ACCOUNT_ID, REGION};
use support::unique_prefix;

fn providers_with(moto: &Moto, environment: AwsEnvironment) -> (SecretsManagerProvider, SsmProvider) {
    aws::from_config_with_environment(&moto.aws_config(), environment).expect("the AWS providers build")
}

fn providers(moto: &Moto) -> (SecretsManagerProvider, SsmProvider) {
    providers_with(moto, moto.environment())
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).expect("the test reference parses")
}

fn text(fetched: &Fetched) -> &str {
    assert_eq!(fetched.value.encoding(), Encoding::Text);
    std::str::from_utf8(fetched.value.expose_bytes()).expect("text values are UTF-8")
}

/// Strips Secrets Manager's `-XXXXXX` suffix from an ARN.
fn partial(arn: &str) -> &str {
    &arn[..arn.len() - 7]
}

fn current_key(id: &str) -> String {
    format!("aws-sm://{id}?version_stage=AWSCURRENT")
}

fn assert_recent(time: Option<SystemTime>) {
    let time = time.expect("a creation time");
    let now = SystemTime::now();
    assert!(time <= now + Duration::from_secs(60), "{time:?} is in the future");
    assert!(time >= now - Duration::from_secs(600), "{time:?} is too old");
}

// Secrets Manager

#[tokio::test]
async fn secret_read_by_name_returns_value_and_metadata() {
    let moto = Moto::shared();
    let name = format!("{}/db", unique_prefix());
    let (arn, version_id) = moto.create_secret(&name, r#"{"password":"hunter2"}"#).await;
    let (secrets_manager, _) = providers(moto);

    let fetched = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();

    assert_eq!(text(&fetched), r#"{"password":"hunter2"}"#);
    assert_eq!(fetched.name.as_deref(), Some(name.as_str()));
    assert_eq!(fetched.arn.as_deref(), Some(arn.as_str()));
    assert_eq!(fetched.version_id.as_deref(), Some(version_id.as_str()));
    assert_eq!(fetched.version_stages, vec!["AWSCURRENT".to_owned()]);
    assert_eq!(fetched.version_number, None);
    assert_recent(fetched.created_at);
    assert_eq!(
        fetched.aliases,
        vec![current_key(&arn), current_key(partial(&arn)), current_key(&name)]
    );
}

#[tokio::test]
async fn secret_read_by_arn_matches_name() {
    let moto = Moto::shared();
    let name = unique_prefix();
    let (arn, _) = moto.create_secret(&name, "by-any-name").await;
    let (secrets_manager, _) = providers(moto);

    let by_name = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    for id in [arn.as_str(), partial(&arn)] {
        let reference = reference(&format!("aws-sm://{id}"));
        let fetched = secrets_manager.fetch(&reference).await.unwrap();
        assert_eq!(text(&fetched), "by-any-name", "{id}");
        assert_eq!(fetched.aliases, by_name.aliases, "{id}");
        assert!(fetched.aliases.contains(&secrets_manager.cache_key(&reference)), "{id}");
    }
}

#[tokio::test]
async fn rotation_moves_current_and_previous_stages() {
    let moto = Moto::shared();
    let name = unique_prefix();
    let (_, first) = moto.create_secret(&name, "v1").await;
    let second = moto.put_secret_value(&name, "v2", None).await;
    let (secrets_manager, _) = providers(moto);

    let current = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&current), "v2");
    assert_eq!(current.version_id.as_deref(), Some(second.as_str()));
    assert_eq!(current.version_stages, vec!["AWSCURRENT".to_owned()]);

    let previous = secrets_manager
        .fetch(&reference(&format!("aws-sm://{name}?version_stage=AWSPREVIOUS")))
        .await
        .unwrap();
    assert_eq!(text(&previous), "v1");
    assert_eq!(previous.version_id.as_deref(), Some(first.as_str()));
    assert_eq!(previous.version_stages, vec!["AWSPREVIOUS".to_owned()]);
    assert_eq!(previous.aliases.last(), Some(&format!("aws-sm://{name}?version_stage=AWSPREVIOUS")));
}

#[tokio::test]
async fn moved_current_stage_is_followed() {
    // moto returns the old version for a read without a stage after
    // UpdateSecretVersionStage; the provider always names the stage.
    let moto = Moto::shared();
    let name = unique_prefix();
    let (_, first) = moto.create_secret(&name, "v1").await;
    let second = moto.put_secret_value(&name, "v2", None).await;
    moto.move_version_stage(&name, "AWSCURRENT", &first, &second).await;
    let (secrets_manager, _) = providers(moto);

    let current = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&current), "v1");
    assert_eq!(current.version_id.as_deref(), Some(first.as_str()));
}

#[tokio::test]
async fn pending_stage_is_readable_before_it_becomes_current() {
    let moto = Moto::shared();
    let name = unique_prefix();
    moto.create_secret(&name, "live").await;
    let pending = moto.put_secret_value(&name, "next", Some(&["AWSPENDING"])).await;
    let (secrets_manager, _) = providers(moto);

    let fetched = secrets_manager
        .fetch(&reference(&format!("aws-sm://{name}?version_stage=AWSPENDING")))
        .await
        .unwrap();
    assert_eq!(text(&fetched), "next");
    assert_eq!(fetched.version_id.as_deref(), Some(pending.as_str()));
    let current = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&current), "live");
}

#[tokio::test]
async fn version_id_pins_one_version() {
    let moto = Moto::shared();
    let name = unique_prefix();
    let (_, first) = moto.create_secret(&name, "v1").await;
    moto.put_secret_value(&name, "v2", None).await;
    let (secrets_manager, _) = providers(moto);

    let pinned = reference(&format!("aws-sm://{name}?version_id={first}"));
    let fetched = secrets_manager.fetch(&pinned).await.unwrap();
    assert_eq!(text(&fetched), "v1");
    assert_eq!(fetched.version_id.as_deref(), Some(first.as_str()));
    assert_eq!(fetched.aliases.last(), Some(&format!("aws-sm://{name}?version_id={first}")));
    assert_eq!(secrets_manager.cache_key(&pinned), format!("aws-sm://{name}?version_id={first}"));
}

#[tokio::test]
async fn binary_secret_keeps_exact_bytes() {
    let moto = Moto::shared();
    let name = unique_prefix();
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    moto.create_binary_secret(&name, &bytes).await;
    let (secrets_manager, _) = providers(moto);

    let fetched = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(fetched.value.encoding(), Encoding::Binary);
    assert_eq!(fetched.value.expose_bytes(), bytes.as_slice());
}

#[tokio::test]
async fn deleted_secret_is_secret_deleted() {
    let moto = Moto::shared();
    let name = unique_prefix();
    moto.create_secret(&name, "soon gone").await;
    moto.delete_secret(&name).await;
    let (secrets_manager, _) = providers(moto);

    let reference_text = format!("aws-sm://{name}");
    let error = secrets_manager.fetch(&reference(&reference_text)).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::SecretDeleted, "{error}");
    assert_eq!(error.reference(), Some(reference_text.as_str()));
    assert!(error.message().contains("InvalidRequestException"), "{error}");
}

#[tokio::test]
async fn missing_secret_stage_and_version_are_not_found() {
    let moto = Moto::shared();
    let name = unique_prefix();
    moto.create_secret(&name, "present").await;
    let (secrets_manager, _) = providers(moto);

    for missing in [
        format!("aws-sm://{name}-missing"),
        format!("aws-sm://{name}?version_stage=NOSUCHSTAGE"),
        format!("aws-sm://{name}?version_id=00000000-0000-0000-0000-000000000000"),
    ] {
        let error = secrets_manager.fetch(&reference(&missing)).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::NotFound, "{missing}: {error}");
        assert!(error.message().contains("ResourceNotFoundException"), "{error}");
    }
}

#[tokio::test]
async fn batch_read_mixes_values_and_errors_in_order() {
    let moto = Moto::shared();
    let prefix = unique_prefix();
    let names: Vec<String> = (0..23).map(|index| format!("{prefix}-{index:02}")).collect();
    for name in &names {
        moto.create_secret(name, &format!("value of {name}")).await;
    }
    let (first_arn, first_version) = moto.create_secret(&format!("{prefix}-pinned"), "p1").await;
    moto.put_secret_value(&format!("{prefix}-pinned"), "p2", None).await;
    let deleted = format!("{prefix}-deleted");
    moto.create_secret(&deleted, "x").await;
    moto.delete_secret(&deleted).await;
    let (secrets_manager, _) = providers(moto);

    // 23 current secrets need two BatchGetSecretValue calls; the pinned
    // ones are fetched singly; the missing and deleted ones get errors.
    let mut references: Vec<Reference> = names.iter().map(|name| reference(&format!("aws-sm://{name}"))).collect();
    references.push(reference(&format!("aws-sm://{prefix}-missing")));
    references.push(reference(&format!("aws-sm://{first_arn}?version_id={first_version}")));
    references.push(reference(&format!("aws-sm://{prefix}-pinned?version_stage=AWSPREVIOUS")));
    references.push(reference(&format!("aws-sm://{deleted}")));
    references.push(reference(&format!("aws-sm://{}?version_stage=AWSCURRENT", names[0])));

    let results = secrets_manager.fetch_many(&references).await;
    assert_eq!(results.len(), references.len());
    for (index, name) in names.iter().enumerate() {
        let fetched = results[index].as_ref().unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(text(fetched), format!("value of {name}"));
        assert_eq!(fetched.name.as_deref(), Some(name.as_str()));
        assert_eq!(fetched.aliases.last(), Some(&current_key(name)));
    }
    let missing = results[23].as_ref().unwrap_err();
    assert_eq!(missing.class(), ErrorClass::NotFound, "{missing}");
    assert_eq!(missing.reference(), Some(format!("aws-sm://{prefix}-missing").as_str()));
    assert_eq!(text(results[24].as_ref().unwrap()), "p1");
    assert_eq!(text(results[25].as_ref().unwrap()), "p1");
    assert_eq!(results[26].as_ref().unwrap_err().class(), ErrorClass::SecretDeleted);
    assert_eq!(text(results[27].as_ref().unwrap()), format!("value of {}", names[0]));
}

#[tokio::test]
async fn batch_read_keeps_pinned_stage_apart() {
    let moto = Moto::shared();
    let name = unique_prefix();
    moto.create_secret(&name, "old").await;
    moto.put_secret_value(&name, "new", None).await;
    let (secrets_manager, _) = providers(moto);

    let references = [
        reference(&format!("aws-sm://{name}?version_stage=AWSPREVIOUS")),
        reference(&format!("aws-sm://{name}")),
        reference(&format!("aws-sm://{name}?version_stage=AWSPREVIOUS")),
    ];
    let results = secrets_manager.fetch_many(&references).await;

    assert_eq!(text(results[0].as_ref().unwrap()), "old");
    assert_eq!(text(results[1].as_ref().unwrap()), "new");
    assert_eq!(text(results[2].as_ref().unwrap()), "old");
}

#[tokio::test]
async fn batch_read_after_stage_move_returns_new_current() {
    // moto's BatchGetSecretValue returns the version that was current
    // before UpdateSecretVersionStage; the provider notices the missing
    // AWSCURRENT stage and reads that secret singly.
    let moto = Moto::shared();
    let name = unique_prefix();
    let (_, first) = moto.create_secret(&name, "v1").await;
    let second = moto.put_secret_value(&name, "v2", None).await;
    moto.move_version_stage(&name, "AWSCURRENT", &first, &second).await;
    let (secrets_manager, _) = providers(moto);

    let (log, _guard) = RequestLog::new();
    let results = secrets_manager.fetch_many(&[reference(&format!("aws-sm://{name}"))]).await;
    let fetched = results[0].as_ref().unwrap();
    assert_eq!(text(fetched), "v1");
    assert_eq!(fetched.version_id.as_deref(), Some(first.as_str()));
    assert_eq!(log.count("Secrets Manager BatchGetSecretValue"), 1);
    assert_eq!(log.count("Secrets Manager GetSecretValue"), 1);
}

/// Counts the AWS requests a block of async code sends, by operation, from
/// the provider's `sending AWS request` debug events.
struct RequestLog {
    lines: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl RequestLog {
    fn new() -> (RequestLog, tracing::subscriber::DefaultGuard) {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer_lines = std::sync::Arc::clone(&lines);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(std::sync::Arc::clone(&writer_lines)))
            .finish();
        // Tests run on a current-thread runtime, so every event of the
        // test reaches this thread-local subscriber.
        let guard = tracing::subscriber::set_default(subscriber);
        (RequestLog { lines }, guard)
    }

    fn count(&self, operation: &str) -> usize {
        let text = String::from_utf8(self.lines.lock().unwrap().clone()).unwrap();
        let needle = format!("operation=\"{operation}\"");
        text.lines()
            .filter(|line| line.contains("sending AWS request") && line.contains(&needle))
            .count()
    }
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn batch_read_sends_one_call_per_twenty_secrets() {
    let moto = Moto::shared();
    let prefix = unique_prefix();
    let names: Vec<String> = (0..21).map(|index| format!("{prefix}-{index:02}")).collect();
    for name in &names {
        moto.create_secret(name, name).await;
    }
    let (secrets_manager, _) = providers(moto);
    let references: Vec<Reference> = names.iter().map(|name| reference(&format!("aws-sm://{name}"))).collect();

    let (log, _guard) = RequestLog::new();
    let results = secrets_manager.fetch_many(&references).await;

    assert!(results.iter().all(Result::is_ok));
    assert_eq!(log.count("Secrets Manager BatchGetSecretValue"), 2);
    assert_eq!(log.count("Secrets Manager GetSecretValue"), 0);
}

// SSM Parameter Store

fn parameter_arn(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter{name}")
}

#[tokio::test]
async fn parameter_types_are_read_as_text() {
    let moto = Moto::shared();
    let prefix = format!("/{}", unique_prefix());
    let cases = [
        ("plain", "String", "hello"),
        ("secure", "SecureString", "s3cret"),
        ("list", "StringList", "a,b,c"),
    ];
    for (suffix, kind, value) in cases {
        moto.put_parameter(&format!("{prefix}/{suffix}"), value, kind).await;
    }
    let (_, ssm) = providers(moto);

    for (suffix, kind, value) in cases {
        let name = format!("{prefix}/{suffix}");
        let fetched = ssm.fetch(&reference(&format!("aws-ssm://{name}"))).await.unwrap();
        assert_eq!(text(&fetched), value, "{kind}");
        assert_eq!(fetched.name.as_deref(), Some(name.as_str()), "{kind}");
        assert_eq!(fetched.arn.as_deref(), Some(parameter_arn(&name).as_str()), "{kind}");
        assert_eq!(fetched.version_number, Some(1), "{kind}");
        assert_recent(fetched.created_at);
        assert_eq!(
            fetched.aliases,
            vec![format!("aws-ssm://{name}"), format!("aws-ssm://{}", parameter_arn(&name))],
            "{kind}"
        );
    }
}

#[tokio::test]
async fn parameter_without_hierarchy_is_read_by_bare_name() {
    let moto = Moto::shared();
    let name = unique_prefix();
    moto.put_parameter(&name, "flat", "String").await;
    let (_, ssm) = providers(moto);

    let fetched = ssm.fetch(&reference(&format!("aws-ssm://{name}"))).await.unwrap();
    assert_eq!(text(&fetched), "flat");
    assert_eq!(fetched.name.as_deref(), Some(name.as_str()));
}

#[tokio::test]
async fn parameter_versions_and_labels_select_values() {
    let moto = Moto::shared();
    let name = format!("/{}/rotating", unique_prefix());
    assert_eq!(moto.put_parameter(&name, "one", "SecureString").await, 1);
    assert_eq!(moto.put_parameter(&name, "two", "SecureString").await, 2);
    moto.label_parameter_version(&name, 1, &["stable"]).await;
    let (_, ssm) = providers(moto);

    let latest = ssm.fetch(&reference(&format!("aws-ssm://{name}"))).await.unwrap();
    assert_eq!((text(&latest), latest.version_number), ("two", Some(2)));

    let first = ssm.fetch(&reference(&format!("aws-ssm://{name}?version=1"))).await.unwrap();
    assert_eq!((text(&first), first.version_number), ("one", Some(1)));
    assert_eq!(first.aliases[0], format!("aws-ssm://{name}?version=1"));

    let labelled = ssm.fetch(&reference(&format!("aws-ssm://{name}?label=stable"))).await.unwrap();
    assert_eq!((text(&labelled), labelled.version_number), ("one", Some(1)));
    assert_eq!(labelled.version_stages, vec!["stable".to_owned()]);
}

#[tokio::test]
async fn missing_parameter_version_and_label_are_not_found() {
    let moto = Moto::shared();
    let name = format!("/{}/present", unique_prefix());
    moto.put_parameter(&name, "here", "String").await;
    let (_, ssm) = providers(moto);

    for missing in [
        format!("aws-ssm://{name}-missing"),
        format!("aws-ssm://{name}?version=9"),
        format!("aws-ssm://{name}?label=nosuchlabel"),
    ] {
        let error = ssm.fetch(&reference(&missing)).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::NotFound, "{missing}: {error}");
    }
}

#[tokio::test]
async fn get_parameters_mixes_values_and_errors() {
    let moto = Moto::shared();
    let prefix = format!("/{}", unique_prefix());
    let names: Vec<String> = (0..12).map(|index| format!("{prefix}/p{index:02}")).collect();
    for name in &names {
        moto.put_parameter(name, &format!("value of {name}"), "SecureString").await;
    }
    moto.put_parameter(&names[0], "newer", "SecureString").await;
    let (_, ssm) = providers(moto);

    let mut references: Vec<Reference> = names.iter().map(|name| reference(&format!("aws-ssm://{name}"))).collect();
    references.push(reference(&format!("aws-ssm://{prefix}/missing")));
    references.push(reference(&format!("aws-ssm://{}?version=1", names[0])));
    references.push(reference(&format!("aws-ssm://{}", names[1])));

    let (log, _guard) = RequestLog::new();
    let results = ssm.fetch_many(&references).await;
    // Two GetParameters calls for the 13 distinct names. moto leaves
    // `Selector` out of GetParameters responses, so the `?version=1` name is
    // read again with GetParameter.
    assert_eq!(log.count("SSM GetParameters"), 2);
    assert_eq!(log.count("SSM GetParameter"), 1);
    assert_eq!(results.len(), 15);
    assert_eq!(text(results[0].as_ref().unwrap()), "newer");
    for (index, name) in names.iter().enumerate().skip(1) {
        let fetched = results[index].as_ref().unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(text(fetched), format!("value of {name}"));
    }
    let missing = results[12].as_ref().unwrap_err();
    assert_eq!(missing.class(), ErrorClass::NotFound, "{missing}");
    assert_eq!(missing.reference(), Some(format!("aws-ssm://{prefix}/missing").as_str()));
    assert_eq!(text(results[13].as_ref().unwrap()), format!("value of {}", names[0]));
    assert_eq!(text(results[14].as_ref().unwrap()), format!("value of {}", names[1]));
}

// Secrets never leak

#[tokio::test]
async fn canary_never_appears_in_output() {
    let moto = Moto::shared();
    let canary_value = format!("canary-value-{}", fastrand::u64(..));
    let canary_key = format!("canary-secret-key-{}", fastrand::u64(..));
    let name = unique_prefix();
    moto.create_secret(&name, &canary_value).await;
    moto.put_parameter(&format!("/{name}"), &canary_value, "SecureString").await;

    let credentials = TestCredentials {
        access_key_id: "AKIDCANARY".to_owned(),
        secret_access_key: canary_key.clone(),
        session_token: Some(format!("{canary_key}-token")),
    };
    let environment = moto.environment_with(&credentials);
    let (secrets_manager, ssm) = providers_with(moto, environment.clone());

    let secret = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    let parameter = ssm.fetch(&reference(&format!("aws-ssm:///{name}"))).await.unwrap();
    let batch = secrets_manager.fetch_many(&[reference(&format!("aws-sm://{name}"))]).await;
    assert_eq!(text(&secret), canary_value);
    assert_eq!(text(&parameter), canary_value);

    let missing = secrets_manager
        .fetch(&reference(&format!("aws-sm://{name}-missing")))
        .await
        .unwrap_err();
    let invalid = ssm.validate(&reference(&format!("aws-ssm://{name}/nested"))).unwrap_err();
    let printed = [
        format!("{secret:?}"),
        format!("{parameter:?}"),
        format!("{batch:?}"),
        format!("{secrets_manager:?}"),
        format!("{ssm:?}"),
        format!("{environment:?}"),
        format!("{missing} {missing:?}"),
        format!("{invalid} {invalid:?}"),
    ];
    for output in &printed {
        assert!(!output.contains(&canary_value), "value leaked: {output}");
        assert!(!output.contains(&canary_key), "secret key leaked: {output}");
    }
    // The credentials are in the provider's Debug output, redacted.
    assert!(printed[3].contains("AKIDCANARY"), "{}", printed[3]);
    assert!(printed[3].contains("[REDACTED]"), "{}", printed[3]);
}

// Signatures, checked by moto

#[tokio::test]
async fn signed_requests_pass_moto_signature_checks() {
    let moto = Moto::with_signature_checks();
    let name = unique_prefix();
    moto.create_secret(&name, "signed").await;
    moto.put_parameter(&format!("/{name}"), "signed too", "SecureString").await;
    let (secrets_manager, ssm) = providers(moto);

    let secret = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&secret), "signed");
    let parameter = ssm.fetch(&reference(&format!("aws-ssm:///{name}"))).await.unwrap();
    assert_eq!(text(&parameter), "signed too");
    let batch = secrets_manager.fetch_many(&[reference(&format!("aws-sm://{name}"))]).await;
    assert_eq!(text(batch[0].as_ref().unwrap()), "signed");
}

#[tokio::test]
async fn session_token_is_signed_and_accepted() {
    let moto = Moto::with_signature_checks();
    let name = unique_prefix();
    moto.create_secret(&name, "via assumed role").await;
    let session = moto.session_credentials.clone().expect("the checked server has session credentials");
    let (secrets_manager, _) = providers_with(moto, moto.environment_with(&session));

    let fetched = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&fetched), "via assumed role");
}

#[tokio::test]
async fn wrong_secret_key_is_access_denied() {
    let moto = Moto::with_signature_checks();
    let name = unique_prefix();
    moto.create_secret(&name, "unreachable").await;
    let wrong = TestCredentials {
        access_key_id: moto.credentials.access_key_id.clone(),
        secret_access_key: "wrong-secret-key-canary".to_owned(),
        session_token: None,
    };
    let (secrets_manager, _) = providers_with(moto, moto.environment_with(&wrong));

    let error = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied, "{error}");
    assert!(error.message().contains("SignatureDoesNotMatch"), "{error}");
    assert!(!format!("{error} {error:?}").contains("wrong-secret-key-canary"), "{error}");
}

#[tokio::test]
async fn unknown_access_key_is_access_denied() {
    let moto = Moto::with_signature_checks();
    let stranger = TestCredentials {
        access_key_id: "AKIDNOBODYKNOWS".to_owned(),
        secret_access_key: "irrelevant".to_owned(),
        session_token: None,
    };
    let (_, ssm) = providers_with(moto, moto.environment_with(&stranger));

    let error = ssm.fetch(&reference("aws-ssm:///anything")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::AccessDenied, "{error}");
    assert!(error.message().contains("InvalidClientTokenId"), "{error}");
}

// Credential sources

/// Builds an environment with a region and no credentials.
fn environment_without_credentials() -> AwsEnvironment {
    AwsEnvironment::empty()
        .with_var("AWS_REGION", REGION)
        .with_var("AWS_EC2_METADATA_DISABLED", "true")
}

#[tokio::test]
async fn web_identity_credentials_come_from_sts() {
    // moto's AssumeRoleWithWebIdentity accepts any token (and fails when
    // signature checks are on), so this runs on the unchecked server and
    // checks that the assumed-role key signed the call.
    let moto = Moto::shared();
    let name = unique_prefix();
    moto.create_secret(&name, "via web identity").await;
    let folder = tempfile::tempdir().unwrap();
    let token_file = folder.path().join("token");
    std::fs::write(&token_file, "header.payload.signature\n").unwrap();
    let environment = environment_without_credentials()
        .with_var("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap())
        .with_var("AWS_ROLE_ARN", format!("arn:aws:iam::{ACCOUNT_ID}:role/web"))
        .with_var("AWS_ROLE_SESSION_NAME", "keystead-test");
    let (secrets_manager, _) = providers_with(moto, environment);

    let fetched = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&fetched), "via web identity");
    let debug = format!("{secrets_manager:?}");
    assert!(debug.contains("WebIdentity"), "{debug}");
    assert!(debug.contains("access_key_id: \"ASIA"), "{debug}");
    assert!(debug.contains("expires_at: Some("), "{debug}");
}

fn credentials_document(credentials: &TestCredentials, expiration: &str) -> String {
    json!({
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "Token": credentials.session_token,
        "Expiration": expiration,
        "Code": "Success",
    })
    .to_string()
}

fn in_one_hour() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600)).to_string()
}

#[tokio::test]
async fn container_credentials_are_fetched_with_authorization_token() {
    let moto = Moto::with_signature_checks();
    let name = unique_prefix();
    moto.create_secret(&name, "via container").await;
    let session = moto.session_credentials.clone().expect("session credentials");
    let document = credentials_document(&session, &in_one_hour());
    let endpoint = FaultServer::always(Reply::json(200, &document)).await;
    let folder = tempfile::tempdir().unwrap();
    let token_file = folder.path().join("token");
    std::fs::write(&token_file, "pod-identity-token\n").unwrap();
    let environment = environment_without_credentials()
        .with_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", format!("{}/v1/credentials", endpoint.endpoint))
        .with_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.to_str().unwrap());
    let (secrets_manager, _) = providers_with(moto, environment);

    let fetched = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&fetched), "via container");
    let received = endpoint.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "GET");
    assert_eq!(received[0].path, "/v1/credentials");
    assert_eq!(received[0].header("authorization"), Some("pod-identity-token"));
}

#[tokio::test]
async fn instance_metadata_credentials_use_imdsv2_session_token() {
    let moto = Moto::with_signature_checks();
    let name = unique_prefix();
    moto.create_secret(&name, "via instance metadata").await;
    let session = moto.session_credentials.clone().expect("session credentials");
    let document = credentials_document(&session, &in_one_hour());
    let imds = FaultServer::start(move |_, request| match (request.method.as_str(), request.path.as_str()) {
        ("PUT", "/latest/api/token") => Reply::text(200, "imds-session-token"),
        ("GET", "/latest/meta-data/iam/security-credentials/") => Reply::text(200, "app-role\n"),
        ("GET", "/latest/meta-data/iam/security-credentials/app-role") => Reply::json(200, &document),
        _ => Reply::text(404, "not found"),
    })
    .await;
    let environment = environment_without_credentials()
        .without_var("AWS_EC2_METADATA_DISABLED")
        .with_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint.as_str());
    let (secrets_manager, _) = providers_with(moto, environment);

    let fetched = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&fetched), "via instance metadata");
    let received = imds.received();
    let calls: Vec<(&str, &str)> = received.iter().map(|request| (request.method.as_str(), request.path.as_str())).collect();
    assert_eq!(
        calls,
        vec![
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/iam/security-credentials/"),
            ("GET", "/latest/meta-data/iam/security-credentials/app-role"),
        ]
    );
    assert!(received[0].header("x-aws-ec2-metadata-token-ttl-seconds").is_some());
    assert_eq!(received[1].header("x-aws-ec2-metadata-token"), Some("imds-session-token"));
    assert_eq!(received[2].header("x-aws-ec2-metadata-token"), Some("imds-session-token"));
}

#[tokio::test]
async fn shared_credentials_file_profile_is_used() {
    let moto = Moto::with_signature_checks();
    let name = unique_prefix();
    moto.create_secret(&name, "via profile").await;
    let folder = tempfile::tempdir().unwrap();
    let credentials_file = folder.path().join("credentials");
    std::fs::write(
        &credentials_file,
        format!(
            "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n\n[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.credentials.access_key_id, moto.credentials.secret_access_key
        ),
    )
    .unwrap();
    let environment = environment_without_credentials()
        .with_home(folder.path())
        .with_var("AWS_SHARED_CREDENTIALS_FILE", credentials_file.to_str().unwrap())
        .with_var("AWS_PROFILE", "ci");
    let (secrets_manager, _) = providers_with(moto, environment);

    let fetched = secrets_manager.fetch(&reference(&format!("aws-sm://{name}"))).await.unwrap();
    assert_eq!(text(&fetched), "via profile");
    assert!(format!("{secrets_manager:?}").contains("Profile(\"ci\")"));
}

#[tokio::test]
async fn no_credentials_anywhere_is_config_error() {
    let moto = Moto::shared();
    let folder = tempfile::tempdir().unwrap();
    let environment = environment_without_credentials().with_home(folder.path());
    let (secrets_manager, _) = providers_with(moto, environment);

    let error = secrets_manager.fetch(&reference("aws-sm://anything")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(error.message().contains("no AWS credentials found"), "{error}");
    assert!(error.message().contains("disabled by AWS_EC2_METADATA_DISABLED"), "{error}");
}
