//! Providers: the backends keystead reads secrets from.
//!
//! A provider handles one reference scheme. The cache calls it to check a
//! reference, to compute the reference's cache key, and to fetch the value.
//! Everything about caching, retrying and notifying lives in the cache, so a
//! new backend is one module that implements [`Provider`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::Error;
use crate::reference::Reference;
use crate::secret::SecretValue;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "env")]
pub mod env;
#[cfg(feature = "file")]
pub mod file;
#[cfg(feature = "vault")]
pub mod vault;

/// A backend that resolves references of one scheme.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Returns the scheme this provider handles, for example `aws-sm`.
    fn scheme(&self) -> &'static str;

    /// Checks a reference's path and query keys before anything is cached,
    /// so that a typo is an [`crate::ErrorClass::InvalidReference`] instead of
    /// a backend call.
    fn validate(&self, reference: &Reference) -> Result<(), Error>;

    /// Returns the cache key for a reference (without its field). References that
    /// mean the same thing must return the same key; the default is the
    /// reference's canonical form.
    fn cache_key(&self, reference: &Reference) -> String {
        reference.canonical()
    }

    /// Returns how long a value stays fresh when configuration sets no TTL for this
    /// provider or reference. `None` uses the cache default.
    fn default_ttl(&self) -> Option<Duration> {
        None
    }

    /// Fetches the current value for a reference (without its field).
    async fn fetch(&self, reference: &Reference) -> Result<Fetched, Error>;

    /// Extends a lease by about `increment` and returns how long the lease
    /// now has left. A lease that can no longer be extended (its maximum
    /// TTL is near) returns a remaining time no longer than before, and the
    /// cache then fetches a new value before the old one expires. A lease
    /// the backend no longer knows returns [`crate::ErrorClass::NotFound`].
    ///
    /// The default says the provider has no leases.
    async fn renew(&self, lease: &Lease, increment: Duration) -> Result<Duration, Error> {
        let _ = increment;
        Err(Error::new(
            crate::ErrorClass::Internal,
            format!("the {} provider cannot renew lease {}", self.scheme(), lease.id),
        ))
    }

    /// Revokes a lease this client created, when the client closes or the
    /// value is replaced. The default does nothing.
    async fn revoke(&self, lease: &Lease) -> Result<(), Error> {
        let _ = lease;
        Ok(())
    }

    /// Fetches several references at once, in order. Providers with a batch
    /// API override this; the default fetches them one at a time.
    async fn fetch_many(&self, references: &[Reference]) -> Vec<Result<Fetched, Error>> {
        let mut results = Vec::with_capacity(references.len());
        for reference in references {
            results.push(self.fetch(reference).await);
        }
        results
    }
}

/// A value returned by a provider, with the metadata the backend reported.
#[non_exhaustive]
#[derive(Debug)]
pub struct Fetched {
    /// The value.
    pub value: SecretValue,
    /// The backend's name for the secret.
    pub name: Option<String>,
    /// The backend's ARN or unique id.
    pub arn: Option<String>,
    /// The backend's version id.
    pub version_id: Option<String>,
    /// Staging labels of this version.
    pub version_stages: Vec<String>,
    /// Version number, for backends that number versions.
    pub version_number: Option<u64>,
    /// When the backend created this version.
    pub created_at: Option<SystemTime>,
    /// How long from now the value stays valid at the backend, for leased
    /// values and credentials. The cache never hands out a value past this.
    pub valid_for: Option<Duration>,
    /// The backend lease on this value, for dynamic credentials. When set,
    /// `valid_for` should equal the lease duration.
    pub lease: Option<Lease>,
    /// Other cache keys that name this same value (for example the full and
    /// partial ARN of a secret fetched by name). Later lookups under any of
    /// them share this cache entry.
    pub aliases: Vec<String>,
}

impl Fetched {
    /// Creates a value with no metadata.
    pub fn new(value: SecretValue) -> Fetched {
        Fetched {
            value,
            name: None,
            arn: None,
            version_id: None,
            version_stages: Vec::new(),
            version_number: None,
            created_at: None,
            valid_for: None,
            lease: None,
            aliases: Vec::new(),
        }
    }
}

/// A backend lease: the value stops working when the lease ends, unless the
/// lease is renewed first.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The backend's lease id. Not secret: it cannot be used to read the
    /// value, only to renew or revoke it with a token allowed to.
    pub id: String,
    /// Whether the backend allows renewing it.
    pub renewable: bool,
    /// The lease's duration when it was issued or last renewed.
    pub duration: Duration,
    /// Whether the client should revoke the lease when it closes or
    /// replaces the value.
    pub revoke_on_close: bool,
}

impl Lease {
    /// Creates a lease with the given id and duration.
    pub fn new(id: impl Into<String>, renewable: bool, duration: Duration) -> Lease {
        Lease {
            id: id.into(),
            renewable,
            duration,
            revoke_on_close: true,
        }
    }
}

/// Whether an HTTP failure's text shows that the server's TLS certificate
/// was rejected. rustls reports "invalid peer certificate", several
/// sources deep and wrapped in `std::io::Error`, whose `source` skips the
/// wrapped error, so the text is the reliable signal.
#[cfg(feature = "http")]
pub(crate) fn is_certificate_failure(chain_text: &str) -> bool {
    chain_text.contains("invalid peer certificate")
}

/// The error for a rejected server certificate: not transient, because
/// retrying cannot help and an attacker in the path must not get the
/// cached value served on.
#[cfg(feature = "http")]
pub(crate) fn certificate_error(operation: &str, detail: &str) -> Error {
    Error::new(
        crate::ErrorClass::Config,
        format!(
            "{operation} failed: the server's TLS certificate was rejected ({detail}); trust its CA with the provider's CA bundle setting"
        ),
    )
}

/// The providers a client can use, by scheme.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    providers: Vec<Arc<dyn Provider>>,
}

impl Registry {
    /// Adds a provider, replacing any earlier one for the same scheme.
    pub(crate) fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.providers
            .retain(|existing| existing.scheme() != provider.scheme());
        self.providers.push(provider);
    }

    pub(crate) fn get(&self, scheme: &str) -> Option<&Arc<dyn Provider>> {
        self.providers
            .iter()
            .find(|provider| provider.scheme() == scheme)
    }

    pub(crate) fn schemes(&self) -> Vec<&'static str> {
        self.providers.iter().map(|provider| provider.scheme()).collect()
    }

    /// Finds the provider for a reference, or explains which schemes exist.
    pub(crate) fn for_reference(&self, reference: &Reference) -> Result<&Arc<dyn Provider>, Error> {
        self.get(reference.scheme()).ok_or_else(|| {
            let mut known = self.schemes();
            known.sort_unstable();
            Error::invalid_reference(format!(
                "no provider for scheme `{}`; configured schemes: {}",
                reference.scheme(),
                known.join(", ")
            ))
            .for_reference(&reference.to_string())
        })
    }
}
