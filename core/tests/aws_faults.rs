//! Transient AWS failures that moto cannot produce, reproduced by a
//! scripted HTTP server on loopback: the provider must retry each of them
//! `max_attempts` times and then report `Unavailable`.

mod support;

use std::time::Duration;

use keystead::config::AwsConfig;
use keystead::provider::aws::{self, AwsEnvironment, SecretsManagerProvider, SsmProvider};
use keystead::{ErrorClass, Provider, Reference};
use support::fault::{FaultServer, Reply};

const MAX_ATTEMPTS: u32 = 3;

/// Providers that send every service to `endpoint`, with three attempts
/// per call and short timeouts.
fn providers(endpoint: &str) -> (SecretsManagerProvider, SsmProvider) {
    let mut config = AwsConfig::default();
    config.region = Some("us-east-1".to_owned());
    config.endpoint_url = Some(endpoint.to_owned());
    config.max_attempts = MAX_ATTEMPTS;
    config.connect_timeout = Duration::from_millis(500);
    config.attempt_timeout = Duration::from_millis(300);
    let environment = AwsEnvironment::empty()
        .with_var("AWS_ACCESS_KEY_ID", "AKIDFAULTS")
        .with_var("AWS_SECRET_ACCESS_KEY", "fault-test-secret-key")
        .with_var("AWS_EC2_METADATA_DISABLED", "true");
    aws::from_config_with_environment(&config, environment).expect("the AWS providers build")
}

fn secret() -> Reference {
    Reference::parse("aws-sm://prod/db").unwrap()
}

async fn assert_retried_then_unavailable(reply: Reply, expected_in_message: &str) {
    let server = FaultServer::always(reply).await;
    let (secrets_manager, _) = providers(&server.endpoint);

    let error = secrets_manager.fetch(&secret()).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::Unavailable, "{error}");
    assert!(error.is_transient());
    assert!(error.message().contains(expected_in_message), "{error}");
    assert_eq!(server.requests(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn throttling_is_retried_then_unavailable() {
    // Secrets Manager responds to a caller over its request quota with HTTP 400
    // and `ThrottlingException` ("Rate exceeded").
    assert_retried_then_unavailable(Reply::throttling(), "ThrottlingException").await;
}

#[tokio::test]
async fn too_many_requests_status_is_retried() {
    // Gateways and proxies in front of AWS return 429 with no AWS error
    // code; the status alone marks it transient.
    assert_retried_then_unavailable(Reply::text(429, "slow down"), "HTTP 429").await;
}

#[tokio::test]
async fn internal_service_error_is_retried() {
    // Secrets Manager's own server-side failure: HTTP 500 with
    // `InternalServiceError`.
    let reply = Reply::json(500, r#"{"__type":"InternalServiceError","message":"An error occurred on the server side."}"#);
    assert_retried_then_unavailable(reply, "InternalServiceError").await;
}

#[tokio::test]
async fn service_unavailable_is_retried() {
    // A load balancer in front of the regional endpoint returns 503 with
    // an HTML or empty body during a deployment or brownout.
    assert_retried_then_unavailable(Reply::text(503, "<html>Service Unavailable</html>"), "HTTP 503").await;
}

#[tokio::test]
async fn hung_response_times_out_each_attempt() {
    // A connection that is accepted but never answered, as when a stateful
    // firewall or NAT gateway drops the return path.
    assert_retried_then_unavailable(Reply::Hang, "timed out").await;
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    // The peer closes the connection after reading the request, as an
    // idle-timeout reset or a load balancer draining a node does.
    assert_retried_then_unavailable(Reply::Drop, "Secrets Manager GetSecretValue").await;
}

#[tokio::test]
async fn refused_connection_is_unavailable() {
    // Nothing listens on the port, as when a VPC endpoint or local proxy
    // is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (secrets_manager, _) = providers(&format!("http://127.0.0.1:{port}"));

    let error = secrets_manager.fetch(&secret()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable, "{error}");
    assert!(error.message().contains("could not connect"), "{error}");
}

#[tokio::test]
async fn recovery_within_attempts_returns_value() {
    // A brief brownout: two 503s, then the normal answer.
    let answer = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf","Name":"prod/db","VersionId":"v1","SecretString":"recovered","VersionStages":["AWSCURRENT"],"CreatedDate":1700000000}"#;
    let server = FaultServer::start(move |number, _| {
        if number < 3 {
            Reply::text(503, "")
        } else {
            Reply::json(200, answer)
        }
    })
    .await;
    let (secrets_manager, _) = providers(&server.endpoint);

    let fetched = secrets_manager.fetch(&secret()).await.unwrap();
    assert_eq!(fetched.value.expose_bytes(), b"recovered");
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let reply = Reply::json(400, r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#);
    let server = FaultServer::always(reply).await;
    let (secrets_manager, _) = providers(&server.endpoint);

    let error = secrets_manager.fetch(&secret()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::NotFound, "{error}");
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn ssm_throttling_is_retried_then_unavailable() {
    // SSM's quota answer: HTTP 400 with `ThrottlingException`, code in the
    // `x-amzn-ErrorType` header as well as the body.
    let reply = Reply::Respond {
        status: 400,
        headers: vec![("x-amzn-ErrorType".to_owned(), "ThrottlingException:http://internal.amazon.com/".to_owned())],
        body: String::new(),
    };
    let server = FaultServer::always(reply).await;
    let (_, ssm) = providers(&server.endpoint);

    let error = ssm.fetch(&Reference::parse("aws-ssm:///app/db").unwrap()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Unavailable, "{error}");
    assert!(error.message().contains("SSM GetParameter failed with ThrottlingException"), "{error}");
    assert_eq!(server.requests(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn batch_throttling_fails_every_reference_in_the_batch() {
    let server = FaultServer::always(Reply::throttling()).await;
    let (secrets_manager, _) = providers(&server.endpoint);
    let references = [secret(), Reference::parse("aws-sm://prod/cache").unwrap()];

    let results = secrets_manager.fetch_many(&references).await;

    for (result, reference) in results.iter().zip(&references) {
        let error = result.as_ref().unwrap_err();
        assert_eq!(error.class(), ErrorClass::Unavailable, "{error}");
        assert_eq!(error.reference(), Some(reference.to_string().as_str()));
    }
    // One BatchGetSecretValue call with all its attempts, no single fetches.
    assert_eq!(server.requests(), MAX_ATTEMPTS as usize);
    assert!(server
        .received()
        .iter()
        .all(|request| request.header("x-amz-target") == Some("secretsmanager.BatchGetSecretValue")));
}

#[tokio::test]
async fn malformed_answer_is_internal_and_hides_the_body() {
    let canary = "malformed-canary-value";
    let server = FaultServer::always(Reply::json(200, &format!(r#"{{"Name":"prod/db","SecretString":"{canary}""#))).await;
    let (secrets_manager, _) = providers(&server.endpoint);

    let error = secrets_manager.fetch(&secret()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Internal, "{error}");
    assert!(!format!("{error} {error:?}").contains(canary), "{error}");
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn request_is_signed_awsjson() {
    let server = FaultServer::always(Reply::json(200, r#"{"Name":"prod/db","SecretString":"x","VersionStages":["AWSCURRENT"]}"#)).await;
    let (secrets_manager, _) = providers(&server.endpoint);

    secrets_manager
        .fetch(&Reference::parse("aws-sm://prod/db?version_stage=AWSPREVIOUS").unwrap())
        .await
        .unwrap();

    let request = &server.received()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/");
    assert_eq!(request.header("content-type"), Some("application/x-amz-json-1.1"));
    assert_eq!(request.header("x-amz-target"), Some("secretsmanager.GetSecretValue"));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body, serde_json::json!({ "SecretId": "prod/db", "VersionStage": "AWSPREVIOUS" }));
    let authorization = request.header("authorization").unwrap();
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFAULTS/"),
        "{authorization}"
    );
    assert!(
        authorization.contains("/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="),
        "{authorization}"
    );
    assert!(request.header("x-amz-date").is_some());
}
