//! Web identity credentials: an OIDC token from a file (EKS IRSA, GitHub
//! Actions and similar) exchanged for temporary credentials with STS
//! `AssumeRoleWithWebIdentity`.
//!
//! The call is unsigned (the token is the proof) and uses STS's Query
//! protocol: a form-encoded POST with an XML response.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::{Error, ErrorClass};
use crate::provider::aws::credentials::{parse_expiration, Credentials, CredentialsSource};
use crate::provider::aws::environment::AwsEnvironment;
use crate::provider::aws::http::HttpTransport;
use crate::provider::aws::profile::Profile;
use crate::provider::aws::retry::RetryPolicy;
use crate::provider::aws::xml;

/// Characters escaped in form values: everything but the unreserved set.
const FORM_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The STS API version the Query protocol requires in every call.
const STS_API_VERSION: &str = "2011-06-15";

/// A role to assume with a web identity token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WebIdentity {
    role_arn: String,
    token_file: PathBuf,
    session_name: Option<String>,
}

impl WebIdentity {
    /// Reads `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN` and the optional
    /// `AWS_ROLE_SESSION_NAME`.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when only one of the two required variables
    /// is set.
    pub(crate) fn from_environment(environment: &AwsEnvironment) -> Result<Option<WebIdentity>, Error> {
        let token_file = environment.var("AWS_WEB_IDENTITY_TOKEN_FILE");
        let role_arn = environment.var("AWS_ROLE_ARN");
        match (token_file, role_arn) {
            (None, None) => Ok(None),
            (Some(token_file), Some(role_arn)) => Ok(Some(WebIdentity {
                role_arn: role_arn.to_owned(),
                token_file: environment.expand_home(token_file),
                session_name: environment.var("AWS_ROLE_SESSION_NAME").map(str::to_owned),
            })),
            (Some(_), None) => Err(Error::config(
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set both to use web identity",
            )),
            (None, Some(_)) => Err(Error::config(
                "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not; set both to use web identity",
            )),
        }
    }

    /// Reads `role_arn`, `web_identity_token_file` and `role_session_name`
    /// from a profile.
    pub(crate) fn from_profile(profile: &Profile, name: &str) -> Result<WebIdentity, Error> {
        let (Some(role_arn), Some(token_file)) = (profile.get("role_arn"), profile.get("web_identity_token_file")) else {
            return Err(Error::config(format!(
                "AWS profile `{name}` must set both role_arn and web_identity_token_file"
            )));
        };
        Ok(WebIdentity {
            role_arn: role_arn.to_owned(),
            token_file: PathBuf::from(token_file),
            session_name: profile.get("role_session_name").map(str::to_owned),
        })
    }

    /// Exchanges the token for credentials. The token file is read on every
    /// call, because orchestrators replace the token before it expires.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when the token file cannot be read; STS's
    /// error, classified, when the exchange fails.
    pub(crate) async fn assume_role(
        &self,
        transport: &HttpTransport,
        retry: &RetryPolicy,
        sts_endpoint: &Url,
        clock: &dyn Clock,
    ) -> Result<Credentials, Error> {
        let token = self.read_token().await?;
        let session_name = self
            .session_name
            .clone()
            .unwrap_or_else(|| default_session_name(clock.wall()));

        // The body carries the token, so it lives in a buffer that is wiped
        // on drop.
        let mut body = Zeroizing::new(String::new());
        for (index, (key, value)) in [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", STS_API_VERSION),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", session_name.as_str()),
            ("WebIdentityToken", token.as_str()),
        ]
        .into_iter()
        .enumerate()
        {
            if index > 0 {
                body.push('&');
            }
            body.push_str(key);
            body.push('=');
            body.extend(utf8_percent_encode(value, FORM_ESCAPES));
        }

        let what = "STS AssumeRoleWithWebIdentity";
        let response = retry
            .run(what, |_| async {
                // Limitation: reqwest keeps its own copy of the request
                // body, token included, and frees it without wiping.
                let request = transport
                    .api_request(Method::POST, sts_endpoint.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")
                    .body(body.as_bytes().to_vec());
                let response = transport.send(request, transport.attempt_timeout(), what).await?;
                if response.is_success() {
                    Ok(response)
                } else {
                    Err(response.service_error().into_error(what, &[token.as_str()]))
                }
            })
            .await?;

        parse_assume_role_response(&response.body)
    }

    async fn read_token(&self) -> Result<Zeroizing<String>, Error> {
        let text = tokio::fs::read_to_string(&self.token_file).await.map_err(|error| {
            Error::config(format!(
                "cannot read the web identity token file {}: {error}",
                self.token_file.display()
            ))
        })?;
        let text = Zeroizing::new(text);
        let token = Zeroizing::new(text.trim().to_owned());
        if token.is_empty() {
            return Err(Error::config(format!(
                "the web identity token file {} is empty",
                self.token_file.display()
            )));
        }
        Ok(token)
    }
}

/// Builds a session name that is unique per process and second, because
/// STS requires one and CloudTrail shows it.
fn default_session_name(now: SystemTime) -> String {
    let seconds = now.duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0);
    format!("keystead-{seconds}-{}", std::process::id())
}

/// Reads the credentials out of an AssumeRoleWithWebIdentity result.
fn parse_assume_role_response(body: &[u8]) -> Result<Credentials, Error> {
    let what = "STS AssumeRoleWithWebIdentity";
    let malformed = |field: &str| {
        Error::new(
            ErrorClass::Internal,
            format!("{what} returned a response without a valid {field}"),
        )
    };
    let document = std::str::from_utf8(body).map_err(|_| malformed("UTF-8 body"))?;
    let credentials = xml::element_text(document, "Credentials").ok_or_else(|| malformed("Credentials element"))?;
    let field = |name: &str| {
        xml::element_text(credentials, name)
            .and_then(xml::unescape)
            .ok_or_else(|| malformed(name))
    };

    let access_key_id = field("AccessKeyId")?;
    let secret_access_key = field("SecretAccessKey")?;
    let session_token = field("SessionToken")?;
    let expiration = parse_expiration(&field("Expiration")?, what)?;

    Ok(Credentials::new(
        access_key_id.trim().to_owned(),
        secret_access_key,
        Some(session_token),
        Some(expiration),
        CredentialsSource::WebIdentity,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_configure_web_identity() {
        let environment = AwsEnvironment::empty()
            .with_var("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")
            .with_var("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app")
            .with_var("AWS_ROLE_SESSION_NAME", "web");
        let web_identity = WebIdentity::from_environment(&environment).unwrap().unwrap();
        assert_eq!(
            web_identity,
            WebIdentity {
                role_arn: "arn:aws:iam::123456789012:role/app".to_owned(),
                token_file: PathBuf::from("/var/run/token"),
                session_name: Some("web".to_owned()),
            }
        );
    }

    #[test]
    fn token_file_without_role_is_an_error() {
        let environment = AwsEnvironment::empty().with_var("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token");
        let error = WebIdentity::from_environment(&environment).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("AWS_ROLE_ARN"), "{}", error.message());
    }

    #[test]
    fn assume_role_response_is_parsed() {
        let body = br#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>sn/o9T5P+kc0XQp82</SecretAccessKey><SessionToken>FQoG&amp;token=</SessionToken><Expiration>2026-12-04T21:18:16.129331Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"#;
        let credentials = parse_assume_role_response(body).unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "sn/o9T5P+kc0XQp82");
        assert_eq!(credentials.session_token(), Some("FQoG&token="));
        assert_eq!(
            credentials.expires_at,
            Some(humantime::parse_rfc3339_weak("2026-12-04T21:18:16.129331Z").unwrap())
        );
        assert_eq!(credentials.source(), &CredentialsSource::WebIdentity);
    }

    #[test]
    fn response_without_credentials_is_internal_error() {
        let error = parse_assume_role_response(b"<Other/>").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Internal);
    }

    #[test]
    fn default_session_name_is_accepted_by_sts() {
        // STS accepts [\w+=,.@-]{2,64}.
        let name = default_session_name(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000));
        assert!(name.starts_with("keystead-1700000000-"), "{name}");
        assert!(name.len() <= 64);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)));
    }
}
