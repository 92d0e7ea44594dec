//! Promises settled from the client's tokio runtime.
//!
//! A load runs on a runtime worker thread. Its result travels back to the
//! JavaScript thread through the deferred's thread-safe function, and only
//! there becomes a JavaScript value. A pending promise keeps the event loop
//! alive, like any pending I/O, until it settles.

use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::{sys, Env, JsDeferred, JsValue};

use keystead::{Error, ErrorClass};

use crate::error::to_js_error;

/// A result on its way to JavaScript: `Ok` resolves the promise, `Err`
/// rejects it with the keystead error class.
pub(crate) struct Outcome<T>(pub(crate) Result<T, Error>);

impl<T: ToNapiValue> ToNapiValue for Outcome<T> {
    unsafe fn to_napi_value(env: sys::napi_env, outcome: Self) -> napi::Result<sys::napi_value> {
        match outcome.0 {
            Ok(value) => unsafe { T::to_napi_value(env, value) },
            Err(error) => Err(to_js_error(&Env::from_raw(env), &error)),
        }
    }
}

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<Outcome<T>> + Send>;

/// The settling side of a promise, safe to move to a runtime thread.
///
/// A deferred that is dropped unsettled would hold the event loop open
/// forever, so dropping a `PendingPromise` without calling
/// [`PendingPromise::settle`] rejects it with a `closed` error. That happens
/// when the client's runtime shuts down with the load still running.
pub(crate) struct PendingPromise<T: ToNapiValue + Send + 'static> {
    deferred: Option<JsDeferred<Outcome<T>, Resolver<T>>>,
    reference: Option<String>,
}

impl<T: ToNapiValue + Send + 'static> PendingPromise<T> {
    /// Creates a promise and its settling side. `reference` names the
    /// reference in the error used when the promise is dropped unsettled.
    pub(crate) fn new<'env>(
        env: &'env Env,
        reference: Option<&str>,
    ) -> napi::Result<(Self, PromiseRaw<'env, T>)> {
        let (deferred, promise) = env.create_deferred::<Outcome<T>, Resolver<T>>()?;
        let pending = PendingPromise {
            deferred: Some(deferred),
            reference: reference.map(str::to_owned),
        };
        Ok((pending, PromiseRaw::new(env.raw(), promise.raw())))
    }

    /// Resolves or rejects the promise. Callable from any thread.
    pub(crate) fn settle(mut self, result: Result<T, Error>) {
        if let Some(deferred) = self.deferred.take() {
            let outcome = Outcome(result);
            deferred.resolve(Box::new(move |_env| Ok(outcome)));
        }
    }
}

impl<T: ToNapiValue + Send + 'static> Drop for PendingPromise<T> {
    fn drop(&mut self) {
        if let Some(deferred) = self.deferred.take() {
            let error = closed_error(self.reference.as_deref());
            deferred.resolve(Box::new(move |_env| Ok(Outcome(Err(error)))));
        }
    }
}

/// Returns the error for a call made on, or cut short by, a closed client.
/// Core returns the same class for reads after `close`. This one covers
/// calls that never reached core because the runtime had already stopped.
pub(crate) fn closed_error(reference: Option<&str>) -> Error {
    let error = Error::new(ErrorClass::Closed, "the client is closed");
    match reference {
        Some(reference) => error.for_reference(reference),
        None => error,
    }
}

/// Returns a promise that is already resolved, for reads served from the
/// cache without a trip through the runtime.
pub(crate) fn resolved<T: ToNapiValue>(env: &Env, value: T) -> napi::Result<PromiseRaw<'_, T>> {
    PromiseRaw::resolve(env, value)
}

/// Returns a promise that is already rejected with a keystead error.
pub(crate) fn rejected<'env, T: ToNapiValue>(
    env: &'env Env,
    error: &Error,
) -> napi::Result<PromiseRaw<'env, T>> {
    let js_error = to_js_error(env, error);
    PromiseRaw::reject(env, js_error)
}
