//! EC2 instance metadata (IMDSv2): a session token from `PUT
//! /latest/api/token`, then the instance profile's role name and its
//! credentials.
//!
//! Off EC2 nothing listens at the metadata address, so a connection
//! failure or timeout means "not available" rather than an error. The
//! calls use a short timeout and no retries, so that the chain's last step
//! costs at most a few seconds where there is no instance metadata.

use std::time::Duration;

use reqwest::{Method, Url};

use crate::error::{Error, ErrorClass};
use crate::provider::aws::credentials::{parse_credentials_document, Credentials, CredentialsSource};
use crate::provider::aws::environment::AwsEnvironment;
use crate::provider::aws::http::{sensitive_header, HttpResponse, HttpTransport};

/// The IPv4 metadata endpoint.
const IPV4_ENDPOINT: &str = "http://169.254.169.254";

/// The IPv6 metadata endpoint, chosen by
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`.
const IPV6_ENDPOINT: &str = "http://[fd00:ec2::254]";

/// Time allowed for each metadata call. The AWS SDKs use one second: the
/// service is on the instance's own link and responds in milliseconds.
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);

/// Lifetime requested for the IMDSv2 session token, in seconds. Each load
/// requests a new token, so a short lifetime is enough.
const TOKEN_TTL_SECONDS: &str = "60";

const CREDENTIALS_PATH: &str = "latest/meta-data/iam/security-credentials/";

/// The result of asking instance metadata for credentials.
pub(super) enum Outcome {
    Loaded(Credentials),
    /// Instance metadata is disabled, absent or has no role. The text
    /// names the reason, for the chain's final error message.
    NotAvailable(String),
}

/// Loads the instance profile's credentials.
///
/// # Errors
/// [`ErrorClass::Unavailable`] when the metadata service responds with a
/// server error; [`ErrorClass::AccessDenied`] when it reports that the
/// role's credentials could not be issued.
pub(super) async fn load(environment: &AwsEnvironment, transport: &HttpTransport) -> Result<Outcome, Error> {
    if environment.flag("AWS_EC2_METADATA_DISABLED") {
        return Ok(Outcome::NotAvailable("disabled by AWS_EC2_METADATA_DISABLED".to_owned()));
    }
    let base = endpoint(environment)?;

    let token_url = join(&base, "latest/api/token")?;
    let request = transport
        .local_request(Method::PUT, token_url.clone())
        .header("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS);
    let response = match transport.send(request, IMDS_TIMEOUT, "EC2 instance metadata").await {
        Ok(response) => response,
        Err(error) => return Ok(Outcome::NotAvailable(format!("no answer from {base}: {}", error.message()))),
    };
    if response.status >= 500 {
        return Err(server_error(&response, &token_url));
    }
    if !response.is_success() {
        return Ok(Outcome::NotAvailable(format!(
            "the IMDSv2 token request to {base} returned HTTP {}",
            response.status
        )));
    }
    let token = std::str::from_utf8(&response.body)
        .map(str::trim)
        .map_err(|_| Error::new(ErrorClass::Internal, "EC2 instance metadata returned a token that is not text"))?;
    let token = sensitive_header(token, "the EC2 instance metadata token")?;

    let roles_url = join(&base, CREDENTIALS_PATH)?;
    let response = get(transport, &roles_url, &token).await?;
    if response.status == 404 {
        return Ok(Outcome::NotAvailable("the instance has no IAM role (instance profile)".to_owned()));
    }
    if !response.is_success() {
        return Err(server_error(&response, &roles_url));
    }
    let role = std::str::from_utf8(&response.body)
        .ok()
        .and_then(|text| text.lines().map(str::trim).find(|line| !line.is_empty()))
        .ok_or_else(|| Error::new(ErrorClass::Internal, "EC2 instance metadata returned no IAM role name"))?
        .to_owned();

    let credentials_url = join(&roles_url, &role)?;
    let response = get(transport, &credentials_url, &token).await?;
    if !response.is_success() {
        return Err(server_error(&response, &credentials_url));
    }
    parse_credentials_document(&response.body, CredentialsSource::InstanceMetadata, "EC2 instance metadata")
        .map(Outcome::Loaded)
}

/// Picks the metadata endpoint: `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the
/// IPv4 or IPv6 address by `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`.
fn endpoint(environment: &AwsEnvironment) -> Result<Url, Error> {
    let text = match environment.var("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
        Some(text) => text.to_owned(),
        None => match environment.var("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
            Some(mode) if mode.eq_ignore_ascii_case("ipv6") => IPV6_ENDPOINT.to_owned(),
            Some(mode) if mode.eq_ignore_ascii_case("ipv4") => IPV4_ENDPOINT.to_owned(),
            Some(mode) => {
                return Err(Error::config(format!(
                    "invalid AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE `{mode}`; expected IPv4 or IPv6"
                )))
            }
            None => IPV4_ENDPOINT.to_owned(),
        },
    };
    let mut url = Url::parse(&text)
        .map_err(|error| Error::config(format!("invalid AWS_EC2_METADATA_SERVICE_ENDPOINT `{text}`: {error}")))?;
    // Paths below are joined relative to the endpoint, which needs a
    // trailing slash to keep any path prefix it has.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn join(base: &Url, path: &str) -> Result<Url, Error> {
    base.join(path)
        .map_err(|error| Error::new(ErrorClass::Internal, format!("cannot build an instance metadata URL: {error}")))
}

async fn get(transport: &HttpTransport, url: &Url, token: &reqwest::header::HeaderValue) -> Result<HttpResponse, Error> {
    let request = transport
        .local_request(Method::GET, url.clone())
        .header("x-aws-ec2-metadata-token", token.clone());
    transport.send(request, IMDS_TIMEOUT, "EC2 instance metadata").await
}

fn server_error(response: &HttpResponse, url: &Url) -> Error {
    let class = if response.status >= 500 || response.status == 429 {
        ErrorClass::Unavailable
    } else {
        ErrorClass::AccessDenied
    };
    Error::new(
        class,
        format!("EC2 instance metadata at {url} returned HTTP {}", response.status),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_override_keeps_its_path() {
        let environment = AwsEnvironment::empty().with_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/prefix");
        let base = endpoint(&environment).unwrap();
        assert_eq!(join(&base, "latest/api/token").unwrap().as_str(), "http://127.0.0.1:9/prefix/latest/api/token");
    }

    #[test]
    fn endpoint_mode_picks_address_family() {
        let ipv6 = AwsEnvironment::empty().with_var("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6");
        assert_eq!(endpoint(&ipv6).unwrap().as_str(), "http://[fd00:ec2::254]/");
        assert_eq!(endpoint(&AwsEnvironment::empty()).unwrap().as_str(), "http://169.254.169.254/");
        let bad = AwsEnvironment::empty().with_var("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "carrier-pigeon");
        assert_eq!(endpoint(&bad).unwrap_err().class(), ErrorClass::Config);
    }

    #[tokio::test]
    async fn disabled_flag_skips_every_request() {
        // The transport points nowhere: a request would fail the test by
        // returning a different outcome text.
        let environment = AwsEnvironment::empty().with_var("AWS_EC2_METADATA_DISABLED", "true");
        let transport = HttpTransport::new(&crate::config::AwsConfig::default(), None).unwrap();
        let Outcome::NotAvailable(reason) = load(&environment, &transport).await.unwrap() else {
            panic!("expected instance metadata to be skipped");
        };
        assert_eq!(reason, "disabled by AWS_EC2_METADATA_DISABLED");
    }
}
