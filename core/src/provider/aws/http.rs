//! HTTP for the AWS providers: one shared reqwest client, bounded
//! zeroizing response bodies, and the signed awsJson1.1 call that Secrets
//! Manager and SSM speak.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Certificate, Method, RequestBuilder, Url};
use tracing::debug;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::config::AwsConfig;
use crate::error::{Error, ErrorClass};
use crate::provider::aws::credentials::{Credentials, CredentialsCache};
use crate::provider::aws::endpoint::{host_header, AwsService};
use crate::provider::aws::retry::RetryPolicy;
use crate::provider::aws::service_error::ServiceError;
use crate::provider::aws::sigv4::{self, RequestToSign, SigningParams};
use crate::provider::aws::wipe;

/// Maximum response body size, in bytes. A BatchGetSecretValue response
/// for 20 secrets of the 64 KiB maximum, base64-encoded, is under 2 MiB,
/// so anything far larger is not an AWS response.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The awsJson1.1 content type.
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The shared HTTP clients.
///
/// `api` reaches AWS endpoints and honours the `HTTPS_PROXY`/`NO_PROXY`
/// variables, as the AWS SDKs do. `local` reaches the container
/// credentials and instance metadata endpoints, which are link-local or
/// loopback addresses that a proxy cannot reach, so it never uses one.
#[derive(Clone)]
pub(crate) struct HttpTransport {
    api: reqwest::Client,
    local: reqwest::Client,
    attempt_timeout: Duration,
}

/// A response whose body has been read in full.
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    /// `x-amzn-RequestId` (or `x-amz-request-id`), for support cases.
    pub(crate) request_id: Option<String>,
    /// `x-amzn-ErrorType`, which some JSON services use for the error code.
    pub(crate) error_type: Option<String>,
    /// The body, wiped when dropped because it may hold secret values.
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl HttpResponse {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parses this non-2xx response as an AWS error.
    pub(crate) fn service_error(&self) -> ServiceError {
        ServiceError::parse(
            self.status,
            self.error_type.as_deref(),
            self.request_id.as_deref(),
            &self.body,
        )
    }
}

impl HttpTransport {
    /// Builds the clients. TLS verification is always on; `ca_bundle`
    /// (or `AWS_CA_BUNDLE`, passed in as `ca_bundle_path`) adds trusted
    /// roots to the built-in ones.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when the CA bundle cannot be read or contains
    /// no certificate.
    pub(crate) fn new(config: &AwsConfig, ca_bundle_path: Option<&Path>) -> Result<HttpTransport, Error> {
        let roots = match ca_bundle_path {
            Some(path) => read_ca_bundle(path)?,
            None => Vec::new(),
        };
        let api = build_client(config, &roots, true)?;
        let local = build_client(config, &roots, false)?;
        Ok(HttpTransport {
            api,
            local,
            attempt_timeout: config.attempt_timeout,
        })
    }

    /// Returns the configured time allowed for one attempt.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// Starts a request to an AWS endpoint.
    pub(crate) fn api_request(&self, method: Method, url: Url) -> RequestBuilder {
        self.api.request(method, url)
    }

    /// Starts a request to a container or instance metadata endpoint.
    pub(crate) fn local_request(&self, method: Method, url: Url) -> RequestBuilder {
        self.local.request(method, url)
    }

    /// Sends one request and reads the whole response within `timeout`.
    /// `what` names the call in errors, for example
    /// `Secrets Manager GetSecretValue`.
    ///
    /// # Errors
    /// [`ErrorClass::Unavailable`] for timeouts, connection failures and
    /// bodies cut short; [`ErrorClass::Internal`] for a body over the size
    /// limit. A non-2xx status is not an error here: the caller parses it.
    pub(crate) async fn send(&self, request: RequestBuilder, timeout: Duration, what: &str) -> Result<HttpResponse, Error> {
        let exchange = async {
            let response = request.send().await.map_err(|error| transport_error(what, &error))?;
            read_response(response, what).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorClass::Unavailable,
                format!("{what} timed out after {}", humantime::format_duration(timeout)),
            )),
        }
    }
}

fn build_client(config: &AwsConfig, roots: &[Certificate], use_proxy: bool) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .user_agent(concat!("keystead/", env!("CARGO_PKG_VERSION")))
        // AWS APIs never redirect; following one would send a signed
        // request (and its session token) somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(true);
    if !use_proxy {
        builder = builder.no_proxy();
    }
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder
        .build()
        .map_err(|error| Error::with_source(ErrorClass::Config, format!("cannot build the HTTPS client: {error}"), error))
}

fn read_ca_bundle(path: &Path) -> Result<Vec<Certificate>, Error> {
    let pem = std::fs::read(path)
        .map_err(|error| Error::config(format!("cannot read CA bundle {}: {error}", path.display())))?;
    let certificates = Certificate::from_pem_bundle(&pem)
        .map_err(|error| Error::config(format!("invalid CA bundle {}: {error}", path.display())))?;
    if certificates.is_empty() {
        return Err(Error::config(format!(
            "CA bundle {} contains no PEM certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

async fn read_response(mut response: reqwest::Response, what: &str) -> Result<HttpResponse, Error> {
    let status = response.status().as_u16();
    let headers = response.headers();
    let request_id = header_text(headers, "x-amzn-requestid").or_else(|| header_text(headers, "x-amz-request-id"));
    let error_type = header_text(headers, "x-amzn-errortype");

    let expected = response
        .content_length()
        .map(|length| usize::try_from(length).unwrap_or(usize::MAX))
        .unwrap_or(0);
    if expected > MAX_RESPONSE_BYTES {
        return Err(too_large(what));
    }
    let mut body = Zeroizing::new(Vec::with_capacity(expected));
    // Limitation: hyper's and rustls's own read buffers also held these
    // bytes and are freed without being wiped; only the copy assembled
    // here is wiped.
    while let Some(chunk) = response.chunk().await.map_err(|error| transport_error(what, &error))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large(what));
        }
        wipe::append(&mut body, &chunk);
    }

    Ok(HttpResponse {
        status,
        request_id,
        error_type,
        body,
    })
}

fn too_large(what: &str) -> Error {
    Error::new(
        ErrorClass::Internal,
        format!("{what} returned a response larger than {MAX_RESPONSE_BYTES} bytes"),
    )
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Describes a reqwest failure with its whole cause chain ("connection
/// refused" sits several sources deep). All of them are transient except a
/// rejected server certificate.
fn transport_error(what: &str, error: &reqwest::Error) -> Error {
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = cause.source();
    }
    if crate::provider::is_certificate_failure(&detail) {
        return crate::provider::certificate_error(what, &detail);
    }
    let verb = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    Error::new(ErrorClass::Unavailable, format!("{what} {verb}: {detail}"))
}

/// Signed awsJson1.1 calls with retries, shared by the Secrets Manager and
/// SSM providers.
pub(crate) struct AwsApi {
    transport: HttpTransport,
    credentials: CredentialsCache,
    region: String,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl AwsApi {
    pub(crate) fn new(
        transport: HttpTransport,
        credentials: CredentialsCache,
        region: String,
        retry: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> AwsApi {
        AwsApi {
            transport,
            credentials,
            region,
            retry,
            clock,
        }
    }

    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    pub(crate) fn credentials(&self) -> &CredentialsCache {
        &self.credentials
    }

    /// Calls `operation` on `service` at `endpoint` with a JSON `body`,
    /// signing each attempt afresh, and returns the 2xx response body.
    ///
    /// `target_prefix` is the service's `X-Amz-Target` namespace
    /// (`secretsmanager` or `AmazonSSM`).
    ///
    /// # Errors
    /// The classified AWS error, a transport error, or the credentials
    /// chain's error. Transient failures are retried first.
    pub(crate) async fn call_json(
        &self,
        service: AwsService,
        endpoint: &Url,
        target_prefix: &str,
        operation: &str,
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let what = format!("{} {operation}", service.display_name());
        let target = format!("{target_prefix}.{operation}");
        // Loaded once per call, because the credentials chain retries on its
        // own. Credentials are refreshed five minutes before they expire,
        // which outlasts one call's attempts at the default settings.
        let credentials = self.credentials.get().await?;
        self.retry
            .run(&what, |attempt| {
                let what = what.as_str();
                let target = target.as_str();
                let credentials = credentials.as_ref();
                async move {
                    debug!(operation = what, attempt, "sending AWS request");
                    self.attempt_json(service, endpoint, target, what, body, credentials).await
                }
            })
            .await
    }

    async fn attempt_json(
        &self,
        service: AwsService,
        endpoint: &Url,
        target: &str,
        what: &str,
        body: &[u8],
        credentials: &Credentials,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        // One reading of the clock: the header and the signature must name
        // the same second.
        let now = self.clock.wall();
        let amz_date = sigv4::amz_date(now);
        let host = host_header(endpoint);

        let mut signed_headers: Vec<(&str, &str)> = vec![
            ("content-type", JSON_CONTENT_TYPE),
            ("host", &host),
            ("x-amz-date", &amz_date),
            ("x-amz-target", target),
        ];
        if let Some(token) = credentials.session_token() {
            signed_headers.push(("x-amz-security-token", token));
        }
        let signature = sigv4::sign(
            &RequestToSign {
                method: "POST",
                path: endpoint.path(),
                query: &[],
                headers: &signed_headers,
                body,
            },
            &SigningParams {
                access_key_id: credentials.access_key_id(),
                secret_access_key: credentials.secret_access_key(),
                region: &self.region,
                service: service.signing_name(),
                time: now,
            },
        );

        let mut request = self
            .transport
            .api_request(Method::POST, endpoint.clone())
            .header(CONTENT_TYPE, JSON_CONTENT_TYPE)
            .header("x-amz-date", amz_date.as_str())
            .header("x-amz-target", target)
            .header(AUTHORIZATION, sensitive_header(&signature.authorization, "Authorization")?)
            // Limitation: reqwest keeps its own copy of the request body
            // and headers (the session token among them) and frees it
            // without wiping.
            .body(body.to_vec());
        if let Some(token) = credentials.session_token() {
            request = request.header(
                HeaderName::from_static("x-amz-security-token"),
                sensitive_header(token, "the session token")?,
            );
        }

        let response = self.transport.send(request, self.transport.attempt_timeout(), what).await?;
        if response.is_success() {
            return Ok(response.body);
        }

        let service_error = response.service_error();
        if service_error.is_expired_token() {
            // The next call reloads credentials instead of reusing the
            // expired ones until their advertised expiry.
            self.credentials.invalidate();
        }
        let redact: Vec<&str> = [Some(credentials.secret_access_key()), credentials.session_token()]
            .into_iter()
            .flatten()
            .collect();
        Err(service_error.into_error(what, &redact))
    }
}

/// Builds a header value that HTTP logging redacts. `what` names it in
/// errors, and the value itself never appears in one.
pub(crate) fn sensitive_header(value: &str, what: &str) -> Result<HeaderValue, Error> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        Error::new(
            ErrorClass::Config,
            format!("{what} contains characters that are not allowed in an HTTP header"),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_header_rejects_newlines_without_echoing() {
        let error = sensitive_header("abc\ndef", "the session token").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(!error.message().contains("abc"), "{}", error.message());
    }

    #[test]
    fn missing_ca_bundle_is_config_error() {
        let error = read_ca_bundle(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("/nonexistent/ca.pem"), "{}", error.message());
    }

    #[test]
    fn ca_bundle_without_certificates_is_rejected() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = read_ca_bundle(&path).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
    }
}
