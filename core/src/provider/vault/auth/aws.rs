//! AWS IAM login: a SigV4-signed `sts:GetCallerIdentity` request that the
//! client does not send itself. Vault sends it to STS and learns from the
//! response which IAM principal is logging in.

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::config::AwsIamAuth;
use crate::error::{Error, ErrorClass};
use crate::provider::vault::auth::{post_login, Login, LoginMethod};
use crate::provider::vault::http::Transport;

// The AWS provider's SigV4 signer, compiled in here as well: that module
// depends only on std and the hashing crates, for this kind of reuse.
#[allow(dead_code)]
#[path = "../../aws/sigv4.rs"]
mod sigv4;

/// The STS endpoint Vault uses unless its mount names another.
pub(crate) const DEFAULT_STS_ENDPOINT: &str = "https://sts.amazonaws.com/";

/// The region the global STS endpoint signs for.
pub(crate) const DEFAULT_STS_REGION: &str = "us-east-1";

/// The signed request's body.
const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The header Vault checks against its `iam_server_id_header_value`.
const SERVER_ID_HEADER: &str = "X-Vault-AWS-IAM-Server-ID";

/// AWS credentials for one signature.
pub(crate) struct AwsCredentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: SecretString,
    pub(crate) session_token: Option<SecretString>,
}

/// Loads credentials at each login.
type CredentialsLoader = Box<dyn Fn() -> Result<AwsCredentials, Error> + Send + Sync>;

/// Logs in to an AWS auth mount with the IAM method.
pub(crate) struct AwsIamLogin {
    mount: String,
    role: Option<String>,
    region: String,
    endpoint: Url,
    server_id: Option<String>,
    credentials: CredentialsLoader,
    /// The signing time; tests fix it.
    now: fn() -> SystemTime,
}

impl AwsIamLogin {
    /// Builds the login from `[vault.auth]` settings.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when the STS endpoint is not an http(s) URL.
    pub(crate) fn from_config(
        config: &AwsIamAuth,
        mount: String,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AwsIamLogin, Error> {
        let endpoint_text = config.sts_endpoint_url.as_deref().unwrap_or(DEFAULT_STS_ENDPOINT);
        let endpoint = Url::parse(endpoint_text)
            .ok()
            .filter(|url| matches!(url.scheme(), "https" | "http") && url.host_str().is_some())
            .ok_or_else(|| {
                Error::config(format!(
                    "`vault.auth.sts_endpoint_url` `{endpoint_text}` is not an http(s) URL"
                ))
            })?;
        let region = config
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .filter(|region| !region.is_empty())
            .unwrap_or_else(|| DEFAULT_STS_REGION.to_owned());
        Ok(AwsIamLogin {
            mount,
            role: config.role.clone(),
            region,
            endpoint,
            server_id: config.server_id.clone(),
            credentials: Box::new(|| credentials_from(&|name| std::env::var(name).ok())),
            now: SystemTime::now,
        })
    }

    /// Builds the `auth/aws/login` body: the signed request, base64-encoded
    /// piece by piece.
    pub(crate) fn login_body(&self, credentials: &AwsCredentials, time: SystemTime) -> AwsLoginBody {
        let host = match self.endpoint.port() {
            Some(port) => format!("{}:{port}", self.endpoint.host_str().unwrap_or_default()),
            None => self.endpoint.host_str().unwrap_or_default().to_owned(),
        };
        let date = sigv4::amz_date(time);
        let mut headers: Vec<(&str, String)> = vec![
            ("Host", host),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8".to_owned()),
            ("X-Amz-Date", date),
        ];
        if let Some(token) = &credentials.session_token {
            headers.push(("X-Amz-Security-Token", token.expose_secret().to_owned()));
        }
        if let Some(server_id) = &self.server_id {
            headers.push((SERVER_ID_HEADER, server_id.clone()));
        }

        let signed_headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let signature = sigv4::sign(
            &sigv4::RequestToSign {
                method: "POST",
                path: self.endpoint.path(),
                query: &[],
                headers: &signed_headers,
                body: GET_CALLER_IDENTITY.as_bytes(),
            },
            &sigv4::SigningParams {
                access_key_id: &credentials.access_key_id,
                secret_access_key: credentials.secret_access_key.expose_secret(),
                region: &self.region,
                service: "sts",
                time,
            },
        );
        headers.push(("Authorization", signature.authorization));

        // Vault decodes the headers as Go's http.Header: a map from name to
        // a list of values.
        let header_map: BTreeMap<&str, [&str; 1]> = headers.iter().map(|(name, value)| (*name, [value.as_str()])).collect();
        let header_json = zeroize::Zeroizing::new(serde_json::to_vec(&header_map).unwrap_or_default());
        AwsLoginBody {
            role: self.role.clone(),
            iam_http_request_method: "POST",
            iam_request_url: BASE64.encode(self.endpoint.as_str()),
            iam_request_body: BASE64.encode(GET_CALLER_IDENTITY),
            iam_request_headers: zeroize::Zeroizing::new(BASE64.encode(&*header_json)),
        }
    }
}

/// The body of an IAM login.
#[derive(Serialize)]
pub(crate) struct AwsLoginBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<String>,
    pub(crate) iam_http_request_method: &'static str,
    pub(crate) iam_request_url: String,
    pub(crate) iam_request_body: String,
    /// Holds the signature and session token, so it is wiped when dropped.
    #[serde(serialize_with = "serialize_zeroizing")]
    pub(crate) iam_request_headers: zeroize::Zeroizing<String>,
}

fn serialize_zeroizing<S: serde::Serializer>(text: &zeroize::Zeroizing<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

#[async_trait]
impl LoginMethod for AwsIamLogin {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn login(&self, transport: &dyn Transport) -> Result<Login, Error> {
        let credentials = (self.credentials)()?;
        let body = self.login_body(&credentials, (self.now)());
        post_login(transport, &self.mount, &body, "AWS IAM login").await
    }
}

/// Reads credentials from the standard AWS environment variables.
// Limitation: only the AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN variables are read. The AWS provider's full chain
// (profiles, web identity, container and instance metadata) lives in a
// module private to `provider::aws` and is not reachable from here yet.
fn credentials_from(env: &dyn Fn(&str) -> Option<String>) -> Result<AwsCredentials, Error> {
    let access_key_id = env("AWS_ACCESS_KEY_ID").filter(|value| !value.is_empty());
    let secret_access_key = env("AWS_SECRET_ACCESS_KEY").filter(|value| !value.is_empty());
    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(AwsCredentials {
            access_key_id,
            secret_access_key: SecretString::from(secret_access_key),
            session_token: env("AWS_SESSION_TOKEN")
                .filter(|value| !value.is_empty())
                .map(SecretString::from),
        }),
        _ => Err(Error::new(
            ErrorClass::Config,
            "Vault AWS IAM login needs AWS credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn login(server_id: Option<&str>) -> AwsIamLogin {
        let config = AwsIamAuth {
            role: Some("app".into()),
            server_id: server_id.map(Into::into),
            ..AwsIamAuth::default()
        };
        AwsIamLogin::from_config(&config, "aws".into(), &|_| None).unwrap()
    }

    fn credentials() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned()),
            session_token: Some(SecretString::from("session-token-canary".to_owned())),
        }
    }

    fn decoded_headers(body: &AwsLoginBody) -> serde_json::Map<String, serde_json::Value> {
        let bytes = BASE64.decode(body.iam_request_headers.as_bytes()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn body_encodes_global_sts_request() {
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let body = login(None).login_body(&credentials(), time);
        assert_eq!(body.iam_http_request_method, "POST");
        assert_eq!(BASE64.decode(&body.iam_request_url).unwrap(), b"https://sts.amazonaws.com/");
        assert_eq!(BASE64.decode(&body.iam_request_body).unwrap(), GET_CALLER_IDENTITY.as_bytes());
        let headers = decoded_headers(&body);
        assert_eq!(headers["Host"], serde_json::json!(["sts.amazonaws.com"]));
        assert_eq!(headers["X-Amz-Date"], serde_json::json!(["20231114T221320Z"]));
        assert_eq!(headers["X-Amz-Security-Token"], serde_json::json!(["session-token-canary"]));
        let authorization = headers["Authorization"][0].as_str().unwrap();
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/sts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{authorization}"
        );
    }

    #[test]
    fn server_id_header_is_signed() {
        let body = login(Some("vault.example.com")).login_body(&credentials(), UNIX_EPOCH);
        let headers = decoded_headers(&body);
        assert_eq!(headers[SERVER_ID_HEADER], serde_json::json!(["vault.example.com"]));
        let authorization = headers["Authorization"][0].as_str().unwrap();
        assert!(authorization.contains("x-vault-aws-iam-server-id"), "{authorization}");
    }

    #[test]
    fn missing_credentials_are_explained() {
        let error = credentials_from(&|_| None).map(|_| ()).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("AWS_ACCESS_KEY_ID"), "{}", error.message());
    }
}
