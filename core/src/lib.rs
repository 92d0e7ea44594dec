//! keystead: a cached, auto-refreshing, zeroizing client for secrets and
//! machine credentials.
//!
//! A [`Client`] resolves references such as `aws-sm://prod/db#password`
//! through the provider for the reference's scheme, and keeps each value in
//! an in-process cache that refreshes ahead of expiry, serves the last good
//! value through a backend outage, drops it on an authoritative failure, and
//! wipes secret bytes from memory when the last holder lets go.
//!
//! ```no_run
//! # async fn run() -> Result<(), keystead::Error> {
//! let client = keystead::Client::from_env()?;
//! let password = client.get("aws-sm://prod/db#password").await?;
//! let text = password.expose_str()?;
//! # let _ = text;
//! # Ok(())
//! # }
//! ```

mod audit;
mod backoff;
mod blocking;
mod cache;
mod client;
pub mod clock;
pub mod config;
mod error;
mod field;
mod metrics;
pub mod provider;
mod reference;
mod secret;

pub use audit::{AuditEvent, AuditEventKind};
pub use blocking::BlockingClient;
pub use client::{Client, ClientBuilder, PrefetchOutcome, RotationEvent, SecretHandle, Subscription};
pub use config::Config;
pub use error::{Error, ErrorClass};
pub use metrics::{MetricsSnapshot, LOAD_LATENCY_BUCKETS};
pub use provider::{Fetched, Lease, Provider};
pub use reference::Reference;
pub use secret::{Encoding, Metadata, Secret, SecretValue};
