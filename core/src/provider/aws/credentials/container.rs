//! Container credentials: the endpoint ECS tasks (`..._RELATIVE_URI`) and
//! EKS Pod Identity or other agents (`..._FULL_URI`) expose.

use std::net::IpAddr;

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Url};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::{Error, ErrorClass};
use crate::provider::aws::credentials::{parse_credentials_document, Credentials, CredentialsSource};
use crate::provider::aws::environment::AwsEnvironment;
use crate::provider::aws::http::{sensitive_header, HttpTransport};
use crate::provider::aws::retry::RetryPolicy;

/// The ECS task metadata host that `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
/// is relative to.
const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";

/// Link-local addresses a plain-HTTP full URI may use: ECS
/// (`169.254.170.2`) and EKS Pod Identity (`169.254.170.23`,
/// `fd00:ec2::23`). Any other plain-HTTP host must be loopback, so that
/// the authorization token is never sent in clear text over a network.
const ALLOWED_LINK_LOCAL_HOSTS: [&str; 3] = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"];

/// Loads credentials from the container endpoint, if one is configured.
///
/// # Errors
/// [`ErrorClass::Config`] for an unusable URI or token file; the
/// endpoint's failure otherwise (5xx and transport failures are
/// [`ErrorClass::Unavailable`] and retried).
pub(super) async fn load(
    environment: &AwsEnvironment,
    transport: &HttpTransport,
    retry: &RetryPolicy,
    clock: &dyn Clock,
) -> Result<Option<Credentials>, Error> {
    let Some(url) = endpoint(environment)? else {
        return Ok(None);
    };
    let token = authorization_token(environment).await?;

    let what = "the container credentials endpoint";
    let credentials = retry
        .run(what, |_| async {
            let mut request = transport.local_request(Method::GET, url.clone());
            if let Some(token) = &token {
                request = request.header(AUTHORIZATION, sensitive_header(token, "the container authorization token")?);
            }
            let response = transport.send(request, transport.attempt_timeout(), what).await?;
            if !response.is_success() {
                let class = if response.status >= 500 || response.status == 429 {
                    ErrorClass::Unavailable
                } else {
                    ErrorClass::AccessDenied
                };
                return Err(Error::new(
                    class,
                    format!("{what} at {url} returned HTTP {}", response.status),
                ));
            }
            parse_credentials_document(&response.body, CredentialsSource::Container, what)
        })
        .await?;

    // A document without an expiry would be cached forever; the endpoints
    // always send one, so treat its absence as already due for refresh.
    Ok(Some(credentials.or_expiring_at(clock.wall())))
}

/// Builds the endpoint URL: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on
/// the ECS host wins over `AWS_CONTAINER_CREDENTIALS_FULL_URI`, as in the AWS SDKs.
fn endpoint(environment: &AwsEnvironment) -> Result<Option<Url>, Error> {
    if let Some(relative) = environment.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let url = Url::parse(&format!("{ECS_CREDENTIALS_HOST}{relative}")).map_err(|error| {
            Error::config(format!(
                "invalid AWS_CONTAINER_CREDENTIALS_RELATIVE_URI `{relative}`: {error}"
            ))
        })?;
        return Ok(Some(url));
    }

    let Some(full) = environment.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
        return Ok(None);
    };
    let invalid = |problem: &str| {
        Error::config(format!("invalid AWS_CONTAINER_CREDENTIALS_FULL_URI `{full}`: {problem}"))
    };
    let url = Url::parse(full).map_err(|error| invalid(&error.to_string()))?;
    match url.scheme() {
        "https" => Ok(Some(url)),
        "http" if is_allowed_plain_http_host(&url) => Ok(Some(url)),
        "http" => Err(invalid(
            "plain http is only allowed to loopback addresses and the ECS or EKS credentials addresses; use https",
        )),
        _ => Err(invalid("the scheme must be http or https")),
    }
}

fn is_allowed_plain_http_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || ALLOWED_LINK_LOCAL_HOSTS.contains(&host) {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// Reads the `Authorization` header value: the contents of
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (read on every load, because
/// EKS rotates it), else `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
async fn authorization_token(environment: &AwsEnvironment) -> Result<Option<Zeroizing<String>>, Error> {
    if let Some(path) = environment.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        let path = environment.expand_home(path);
        let text = tokio::fs::read_to_string(&path).await.map_err(|error| {
            Error::config(format!(
                "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {}: {error}",
                path.display()
            ))
        })?;
        let text = Zeroizing::new(text);
        return Ok(Some(Zeroizing::new(text.trim().to_owned())));
    }
    Ok(environment
        .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .map(|token| Zeroizing::new(token.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uri_uses_ecs_host() {
        let environment = AwsEnvironment::empty()
            .with_var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc")
            .with_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/x");
        assert_eq!(
            endpoint(&environment).unwrap().unwrap().as_str(),
            "http://169.254.170.2/v2/credentials/abc"
        );
    }

    #[test]
    fn full_uri_allows_local_plain_http() {
        for allowed in [
            "http://127.0.0.1:8080/creds",
            "http://localhost/creds",
            "http://[::1]:9/creds",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://creds.example.internal/",
        ] {
            let environment = AwsEnvironment::empty().with_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed);
            assert!(endpoint(&environment).unwrap().is_some(), "{allowed}");
        }
    }

    #[test]
    fn full_uri_rejects_plain_http_to_other_hosts() {
        for rejected in ["http://10.0.0.5/creds", "http://creds.example.internal/", "ftp://127.0.0.1/"] {
            let environment = AwsEnvironment::empty().with_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", rejected);
            let error = endpoint(&environment).unwrap_err();
            assert_eq!(error.class(), ErrorClass::Config, "{rejected}");
        }
    }

    #[tokio::test]
    async fn token_file_wins_over_token_variable() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let environment = AwsEnvironment::empty()
            .with_var("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-variable")
            .with_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path.to_str().unwrap());
        let token = authorization_token(&environment).await.unwrap().unwrap();
        assert_eq!(token.as_str(), "from-file");

        let environment = environment.without_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        let token = authorization_token(&environment).await.unwrap().unwrap();
        assert_eq!(token.as_str(), "from-variable");
    }
}
