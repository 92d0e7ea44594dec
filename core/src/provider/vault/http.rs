//! HTTP for the Vault provider: the transport seam that tests replace, the
//! reqwest transport with Vault's TLS settings, and the parsing of Vault's
//! JSON envelope and error bodies.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Certificate, Identity, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorClass};

/// Largest response body read, in bytes. Vault's own limit on a request
/// body is 32 MiB, so no secret it stores is larger.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Maximum length of the server error text copied into an error message, in
/// characters.
const MAX_SERVER_MESSAGE_CHARS: usize = 300;

/// The header that carries the client token.
pub(crate) const TOKEN_HEADER: &str = "x-vault-token";

/// The header that selects a Vault Enterprise or OpenBao namespace.
const NAMESPACE_HEADER: &str = "x-vault-namespace";

/// Vault Agent and Proxy reject requests without this header, as a guard
/// against server-side request forgery; Vault itself ignores it.
const REQUEST_HEADER: &str = "x-vault-request";

/// One request to Vault's HTTP API.
pub(crate) struct VaultRequest<'a> {
    pub(crate) method: Method,
    /// Path after `/v1/`, each segment already percent-encoded.
    pub(crate) path: &'a str,
    /// Query pairs, not secret.
    pub(crate) query: &'a [(&'a str, String)],
    pub(crate) token: Option<&'a SecretString>,
    /// JSON body. It may hold a secret id or a JWT, so callers build it in
    /// zeroizing storage.
    pub(crate) body: Option<&'a [u8]>,
}

impl<'a> VaultRequest<'a> {
    pub(crate) fn new(method: Method, path: &'a str) -> VaultRequest<'a> {
        VaultRequest {
            method,
            path,
            query: &[],
            token: None,
            body: None,
        }
    }

    pub(crate) fn token(mut self, token: &'a SecretString) -> VaultRequest<'a> {
        self.token = Some(token);
        self
    }

    pub(crate) fn body(mut self, body: &'a [u8]) -> VaultRequest<'a> {
        self.body = Some(body);
        self
    }

    pub(crate) fn query(mut self, query: &'a [(&'a str, String)]) -> VaultRequest<'a> {
        self.query = query;
        self
    }
}

/// A response whose body has been read in full.
pub(crate) struct VaultResponse {
    pub(crate) status: u16,
    /// Wiped when dropped, because it may hold secret values or tokens.
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl VaultResponse {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parses the standard Vault envelope, borrowing the secret parts from
    /// the zeroizing body.
    pub(crate) fn envelope(&self, what: &str) -> Result<Envelope<'_>, Error> {
        if self.body.is_empty() {
            return Ok(Envelope::default());
        }
        parse_json(&self.body, what)
    }

    /// Returns the server's error messages, joined and shortened.
    pub(crate) fn server_message(&self) -> String {
        let messages = serde_json::from_slice::<ErrorBody>(&self.body)
            .map(|body| body.errors)
            .unwrap_or_default();
        let joined = messages
            .iter()
            .map(|message| message.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|message| !message.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let mut shortened: String = joined.chars().take(MAX_SERVER_MESSAGE_CHARS).collect();
        if joined.chars().count() > MAX_SERVER_MESSAGE_CHARS {
            shortened.push_str("...");
        }
        shortened
    }

    /// Builds the error for a response that is not a success, in the usual
    /// mapping: 403 is access denied, 404 not found, 412, 429 and 5xx are
    /// transient, and anything else is an unexpected response.
    pub(crate) fn error(&self, action: &str) -> Error {
        let class = match self.status {
            401 | 403 => ErrorClass::AccessDenied,
            404 => ErrorClass::NotFound,
            // Vault Enterprise returns 412 ("not yet replicated") for a read
            // that arrived at a standby before the write did.
            412 | 429 | 500..=599 => ErrorClass::Unavailable,
            _ => ErrorClass::Internal,
        };
        self.error_with_class(class, action)
    }

    /// Builds the error for this response with a chosen class.
    pub(crate) fn error_with_class(&self, class: ErrorClass, action: &str) -> Error {
        let message = self.server_message();
        let detail = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        Error::new(class, format!("{action} failed with HTTP {}{detail}", self.status))
    }
}

impl fmt::Debug for VaultResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Vault's response envelope. Secret parts stay raw JSON borrowed from the
/// zeroizing body, so that no unwiped copy is made and numbers keep their
/// exact text.
#[derive(Default, Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(default)]
    pub(crate) lease_id: String,
    #[serde(default)]
    pub(crate) lease_duration: u64,
    #[serde(default)]
    pub(crate) renewable: bool,
    #[serde(default, borrow)]
    pub(crate) data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) auth: Option<AuthBlock<'a>>,
    #[serde(default)]
    pub(crate) warnings: Option<Vec<String>>,
}

/// The `auth` block of a login or token renewal response.
#[derive(Deserialize)]
pub(crate) struct AuthBlock<'a> {
    #[serde(borrow)]
    pub(crate) client_token: Option<&'a str>,
    #[serde(default)]
    pub(crate) lease_duration: u64,
    #[serde(default)]
    pub(crate) renewable: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

/// Parses JSON without ever putting input text into the error: serde's
/// messages quote the offending value, which may be a secret.
pub(crate) fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|error| {
        Error::new(
            ErrorClass::Internal,
            format!(
                "the {what} response from Vault is not in the expected shape (line {}, column {})",
                error.line(),
                error.column()
            ),
        )
    })
}

/// Serializes a request body into zeroizing storage.
pub(crate) fn json_body<T: serde::Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(256));
    // Serializing the plain structs of strings and numbers used here into a
    // Vec cannot fail; if it ever did, the body would be sent empty.
    if serde_json::to_writer(&mut *buffer, value).is_err() {
        buffer.clear();
    }
    buffer
}

/// Sends requests to Vault. The provider talks to Vault only through this
/// trait, so that unit tests can script the server.
#[async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    /// Sends one request and reads the whole response.
    ///
    /// # Errors
    /// [`ErrorClass::Unavailable`] when the server cannot be reached, the
    /// request times out or the response is cut off.
    async fn send(&self, request: VaultRequest<'_>) -> Result<VaultResponse, Error>;
}

/// TLS and timeout settings resolved from configuration and environment.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) ca_path: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    pub(crate) danger_accept_invalid_certs: bool,
}

/// The real transport: reqwest over rustls.
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    /// Address up to and including `/v1/`.
    base: String,
    request_timeout: Duration,
}

impl HttpTransport {
    /// Builds the client. TLS verification stays on unless
    /// `danger_accept_invalid_certs` is set.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when the address is not a URL, a certificate
    /// or key file cannot be read or parsed, or the namespace is not a
    /// valid header value.
    pub(crate) fn new(
        address: &str,
        namespace: Option<&str>,
        tls: &TlsSettings,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<HttpTransport, Error> {
        let base = base_url(address)?;

        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static(REQUEST_HEADER), HeaderValue::from_static("true"));
        if let Some(namespace) = namespace.filter(|namespace| !namespace.is_empty()) {
            let value = HeaderValue::from_str(namespace).map_err(|_| {
                Error::config(format!("the Vault namespace `{namespace}` is not a valid HTTP header value"))
            })?;
            headers.insert(HeaderName::from_static(NAMESPACE_HEADER), value);
        }

        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(connect_timeout)
            .user_agent(concat!("keystead/", env!("CARGO_PKG_VERSION")))
            // A Vault standby may redirect to the active node. reqwest would
            // send the token header along to whatever host a redirect names,
            // so redirects are not followed.
            .redirect(reqwest::redirect::Policy::none());

        let roots = trusted_roots(tls)?;
        if !roots.is_empty() {
            // As in the Vault CLI, a configured CA replaces the public roots.
            builder = builder.tls_built_in_root_certs(false);
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            builder = builder.identity(client_identity(cert, key)?);
        } else if tls.client_cert.is_some() || tls.client_key.is_some() {
            return Err(Error::config(
                "a Vault client certificate needs both a certificate and a key (VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)",
            ));
        }
        if tls.danger_accept_invalid_certs {
            tracing::warn!(
                address = %address,
                "TLS certificate verification for Vault is off (vault.danger_accept_invalid_certs); \
                 anyone on the network path can read every secret"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }

        let client = builder
            .build()
            .map_err(|error| Error::with_source(ErrorClass::Config, "cannot build the Vault HTTP client", error))?;
        Ok(HttpTransport {
            client,
            base,
            request_timeout,
        })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, request: VaultRequest<'_>) -> Result<VaultResponse, Error> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self
            .client
            .request(request.method.clone(), &url)
            .timeout(self.request_timeout);
        if !request.query.is_empty() {
            builder = builder.query(request.query);
        }
        if let Some(token) = request.token {
            let mut value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                Error::new(
                    ErrorClass::Config,
                    "the Vault token contains characters that cannot be sent in an HTTP header",
                )
            })?;
            // Keeps the token out of hyper's Debug output and out of HTTP/2
            // header compression tables.
            value.set_sensitive(true);
            builder = builder.header(TOKEN_HEADER, value);
        }
        if let Some(body) = request.body {
            builder = builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.to_vec());
        }

        let action = format!("{} {}", request.method, request.path);
        let mut response = builder.send().await.map_err(|error| transport_error(&action, &error))?;
        let status = response.status().as_u16();
        let mut body = Zeroizing::new(Vec::new());
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) => return Err(transport_error(&action, &error)),
            };
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::new(
                    ErrorClass::Internal,
                    format!("{action}: the response from Vault is larger than {MAX_RESPONSE_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
            // Wipes the chunk when this code has the only reference. Buffers
            // that hyper still shares are freed without wiping.
            if let Ok(mut owned) = chunk.try_into_mut() {
                let bytes: &mut [u8] = &mut owned;
                bytes.zeroize();
            }
        }
        tracing::debug!(method = %request.method, path = request.path, status, "vault request");
        Ok(VaultResponse { status, body })
    }
}

fn transport_error(action: &str, error: &reqwest::Error) -> Error {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "lost the connection while reading the response"
    } else {
        "failed"
    };
    // reqwest's message names the URL, which contains no secret because
    // tokens go in a header and request bodies are never part of it.
    let chain = error_chain(error);
    if crate::provider::is_certificate_failure(&chain) {
        return crate::provider::certificate_error(action, &chain);
    }
    Error::new(ErrorClass::Unavailable, format!("{action} {what}: {chain}"))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn base_url(address: &str) -> Result<String, Error> {
    let trimmed = address.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed).map_err(|error| {
        Error::config(format!(
            "the Vault address `{trimmed}` is not a URL ({error}); write for example https://vault.internal:8200"
        ))
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Error::config(format!(
            "the Vault address `{trimmed}` must start with https:// or http://"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!(
            "the Vault address `{trimmed}` must not have a query or fragment"
        )));
    }
    Ok(format!("{trimmed}/v1/"))
}

fn trusted_roots(tls: &TlsSettings) -> Result<Vec<Certificate>, Error> {
    let mut roots = Vec::new();
    if let Some(file) = &tls.ca_cert {
        roots.extend(read_certificates(file)?);
    }
    if let Some(folder) = &tls.ca_path {
        let entries = std::fs::read_dir(folder).map_err(|error| {
            Error::config(format!("cannot read the Vault CA folder {}: {error}", folder.display()))
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for file in files {
            roots.extend(read_certificates(&file)?);
        }
    }
    Ok(roots)
}

fn read_certificates(file: &Path) -> Result<Vec<Certificate>, Error> {
    let pem = std::fs::read(file)
        .map_err(|error| Error::config(format!("cannot read the Vault CA file {}: {error}", file.display())))?;
    let certificates = Certificate::from_pem_bundle(&pem).map_err(|error| {
        Error::config(format!("the Vault CA file {} is not PEM: {error}", file.display()))
    })?;
    if certificates.is_empty() {
        return Err(Error::config(format!(
            "the Vault CA file {} contains no certificate",
            file.display()
        )));
    }
    Ok(certificates)
}

fn client_identity(cert: &Path, key: &Path) -> Result<Identity, Error> {
    let mut pem = Zeroizing::new(std::fs::read(cert).map_err(|error| {
        Error::config(format!("cannot read the Vault client certificate {}: {error}", cert.display()))
    })?);
    pem.push(b'\n');
    let key_pem = Zeroizing::new(std::fs::read(key).map_err(|error| {
        Error::config(format!("cannot read the Vault client key {}: {error}", key.display()))
    })?);
    pem.extend_from_slice(&key_pem);
    Identity::from_pem(&pem).map_err(|error| {
        Error::config(format!(
            "the Vault client certificate {} and key {} are not a PEM certificate and private key: {error}",
            cert.display(),
            key.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> VaultResponse {
        VaultResponse {
            status,
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn base_url_appends_api_prefix() {
        assert_eq!(base_url("http://127.0.0.1:8200").unwrap(), "http://127.0.0.1:8200/v1/");
        assert_eq!(base_url("https://vault.internal:8200/").unwrap(), "https://vault.internal:8200/v1/");
    }

    #[test]
    fn base_url_rejects_other_schemes() {
        let error = base_url("vault.internal:8200").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
    }

    #[test]
    fn error_maps_status_to_class() {
        let cases = [
            (403, ErrorClass::AccessDenied),
            (404, ErrorClass::NotFound),
            (412, ErrorClass::Unavailable),
            (429, ErrorClass::Unavailable),
            (500, ErrorClass::Unavailable),
            (503, ErrorClass::Unavailable),
            (400, ErrorClass::Internal),
        ];
        for (status, class) in cases {
            assert_eq!(response(status, "{}").error("read").class(), class, "HTTP {status}");
        }
    }

    #[test]
    fn error_message_quotes_server_errors() {
        let error = response(403, r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#)
            .error("GET secret/data/app");
        assert_eq!(
            error.message(),
            "GET secret/data/app failed with HTTP 403: 1 error occurred: * permission denied"
        );
    }

    #[test]
    fn parse_error_does_not_quote_input() {
        let body = br#"{"lease_duration":"s3cr3t-canary"}"#;
        let error = parse_json::<Envelope<'_>>(body, "read").map(|_| ()).unwrap_err();
        assert!(!error.message().contains("s3cr3t-canary"), "{}", error.message());
        assert_eq!(error.class(), ErrorClass::Internal);
    }

    #[test]
    fn envelope_keeps_data_as_raw_text() {
        let response = response(200, r#"{"lease_id":"","data":{"n":1.50,"big":12345678901234567890}}"#);
        let envelope = response.envelope("read").unwrap();
        assert_eq!(envelope.data.unwrap().get(), r#"{"n":1.50,"big":12345678901234567890}"#);
    }
}
