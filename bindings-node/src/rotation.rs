//! Rotation events, delivered to JavaScript listeners on the JavaScript
//! thread that subscribed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use napi::bindgen_prelude::{Either, Undefined, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::error::build_error;
use crate::secret::Secret;

/// A notice that a subscribed reference has a new version.
///
/// Exactly one of `secret` and `error` is set: `error` when the new
/// version no longer has the subscribed `#field`, or is not valid JSON.
#[napi]
pub struct RotationEvent {
    reference: String,
    secret: Result<keystead::Secret, keystead::Error>,
}

impl From<&keystead::RotationEvent> for RotationEvent {
    fn from(event: &keystead::RotationEvent) -> RotationEvent {
        RotationEvent {
            reference: event.reference.clone(),
            secret: event.secret.clone(),
        }
    }
}

#[napi]
impl RotationEvent {
    /// The reference as passed to `subscribe`.
    #[napi(getter)]
    pub fn reference(&self) -> String {
        self.reference.clone()
    }

    /// The new value, or `undefined` when `error` is set.
    #[napi(getter)]
    pub fn secret(&self) -> Either<Secret, Undefined> {
        match &self.secret {
            Ok(secret) => Either::A(Secret::from(secret.clone())),
            Err(_) => Either::B(()),
        }
    }

    /// Why the new version could not be delivered, or `undefined`.
    #[napi(getter, ts_return_type = "Error | undefined")]
    pub fn error<'env>(&self, env: &'env Env) -> napi::Result<Either<Unknown<'env>, Undefined>> {
        match &self.secret {
            Ok(_) => Ok(Either::B(())),
            Err(error) => Ok(Either::A(build_error(env, error)?)),
        }
    }
}

/// The live core subscriptions of one client, by id.
///
/// The client owns them rather than the `Subscription` objects handed to
/// JavaScript, so that a subscription whose handle is dropped keeps
/// delivering (like an `EventEmitter` listener) until `unsubscribe()` or
/// `close()`.
#[derive(Default)]
pub(crate) struct Subscriptions {
    next_id: u64,
    live: HashMap<u64, keystead::Subscription>,
}

pub(crate) type SharedSubscriptions = Arc<Mutex<Subscriptions>>;

impl Subscriptions {
    pub(crate) fn insert(
        shared: &SharedSubscriptions,
        subscription: keystead::Subscription,
    ) -> u64 {
        let mut subscriptions = shared.lock().unwrap_or_else(PoisonError::into_inner);
        subscriptions.next_id += 1;
        let id = subscriptions.next_id;
        subscriptions.live.insert(id, subscription);
        id
    }

    /// Drops every subscription, which releases their listeners.
    pub(crate) fn clear(shared: &SharedSubscriptions) {
        let drained: Vec<_> = {
            let mut subscriptions = shared.lock().unwrap_or_else(PoisonError::into_inner);
            subscriptions.live.drain().collect()
        };
        // Dropped outside the lock: unsubscribing takes the cache entry's
        // lock, which a notifying runtime thread may hold.
        drop(drained);
    }
}

/// A rotation subscription. Call `unsubscribe()` to stop the listener.
#[napi]
pub struct Subscription {
    id: u64,
    subscriptions: SharedSubscriptions,
}

impl Subscription {
    pub(crate) fn new(id: u64, subscriptions: SharedSubscriptions) -> Subscription {
        Subscription { id, subscriptions }
    }
}

#[napi]
impl Subscription {
    /// Stops calling the listener. Returns whether the subscription was
    /// still live; calling it again, or after `close()`, does nothing.
    #[napi]
    pub fn unsubscribe(&self) -> bool {
        let removed = {
            let mut subscriptions = self
                .subscriptions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            subscriptions.live.remove(&self.id)
        };
        removed.is_some()
    }

    /// Whether the listener is still called.
    #[napi(getter)]
    pub fn active(&self) -> bool {
        let subscriptions = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscriptions.live.contains_key(&self.id)
    }
}
