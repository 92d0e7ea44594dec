//! The C interface to keystead: `extern "C"` functions over opaque handles,
//! described by `include/keystead.h` (generated from this crate by
//! cbindgen). The Go binding is built on it; C and C++ programs may use it
//! directly.
//!
//! Conventions every function follows:
//! - Strings passed in are a pointer and a byte length, UTF-8, not
//!   necessarily NUL-terminated. Strings handed out are NUL-terminated and
//!   owned by the handle they came from.
//! - A fallible function returns a [`Status`]; on failure it stores an
//!   error handle in `*error` when `error` is not NULL. The caller frees it
//!   with `keystead_error_free`.
//! - Every handle handed out has a matching `*_free` function.
//! - A panic inside keystead never unwinds into the caller: it becomes
//!   [`Status::Internal`].
//! - Client, secret and cancellation handles may be used from many threads
//!   at once. Only the `*_free` functions need exclusive use.

#![deny(unsafe_op_in_unsafe_fn)]

mod arguments;
mod cancel;
mod client;
mod error;
mod metrics;
mod secret;
mod status;
mod subscription;

pub use cancel::CancelToken;
pub use client::ClientHandle;
pub use error::ErrorHandle;
pub use metrics::{Metrics, KEYSTEAD_LOAD_LATENCY_BUCKET_COUNT};
pub use secret::{Bytes, Metadata, SecretHandle, Timestamp};
pub use status::{Status, KEYSTEAD_NO_TIMEOUT, KEYSTEAD_STATUS_COUNT};
pub use subscription::{RotationCallback, SubscriptionHandle};
