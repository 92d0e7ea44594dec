//! Node.js binding for keystead, built with napi-rs.
//!
//! This native module is private. `index.js` loads it through the generated
//! `binding.js`, registers the JavaScript error classes, and adds the
//! redaction hooks that need JavaScript symbols (`util.inspect.custom`).
//!
//! Caching, refresh, error classes and redaction live in the `keystead`
//! crate. This crate converts types, runs loads on the client's own tokio
//! runtime so that the event loop does not wait for them, and turns
//! `keystead::Error` into the JavaScript error classes.

// Limitation: core's `tracing` events are not forwarded to Node.js. No
// subscriber is installed, so they are dropped; applications observe the
// client through `metrics()`, errors and rotation listeners instead.

mod client;
mod config;
mod error;
mod metrics;
mod promise;
mod reader;
mod rotation;
mod secret;
