//! Rotation subscriptions: a C callback called for every new version.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

use keystead::{RotationEvent, Subscription};
use parking_lot::ReentrantMutex;

use crate::arguments::{guard, handle, reference, write_out};
use crate::client::ClientHandle;
use crate::error::ErrorHandle;
use crate::secret::SecretHandle;
use crate::status::Status;

/// Called once for every new version of a subscribed reference.
///
/// The callback receives the `user_data` given to `keystead_subscribe` and
/// the reference as subscribed (`reference_length` bytes, not
/// NUL-terminated). It also receives either the new value (`secret`, with
/// `error` NULL) or the error that selecting its field produced (`error`,
/// with `secret` NULL). `secret` and `error` are
/// borrowed for the duration of the call: use `keystead_secret_clone` to
/// keep the secret.
///
/// The callback runs on one of the client's worker threads and should
/// return quickly. It must not wait for a backend there: `keystead_get` of
/// a value that is not cached, `keystead_refresh`, `keystead_prefetch` and
/// `keystead_client_close` fail with `KEYSTEAD_STATUS_INTERNAL` on that
/// thread. Reads of cached values work.
pub type RotationCallback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        reference: *const c_char,
        reference_length: usize,
        secret: *const SecretHandle,
        error: *const ErrorHandle,
    ),
>;

/// A live subscription. Free it with `keystead_subscription_free` to stop
/// the calls.
pub struct SubscriptionHandle {
    target: Arc<TargetSlot>,
    subscription: Option<Subscription>,
}

/// The callback and its user data, cleared when the subscription is freed.
/// Delivery keeps the lock while the callback runs, so that freeing waits
/// for a call in progress on another thread. The lock is reentrant, so a
/// callback may free its own subscription.
type TargetSlot = ReentrantMutex<RefCell<Option<Target>>>;

#[derive(Clone, Copy)]
struct Target {
    callback: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        usize,
        *const SecretHandle,
        *const ErrorHandle,
    ),
    user_data: *mut c_void,
}

// SAFETY: `keystead_subscribe` requires the caller's `user_data` and
// callback to be usable from any thread.
unsafe impl Send for Target {}
// SAFETY: as above.
unsafe impl Sync for Target {}

fn deliver(slot: &TargetSlot, event: &RotationEvent) {
    let guard = slot.lock();
    let target = *guard.borrow();
    let Some(target) = target else {
        return;
    };

    let secret = event
        .secret
        .as_ref()
        .ok()
        .map(|secret| SecretHandle::new(secret.clone()));
    let error = event.secret.as_ref().err().map(ErrorHandle::new);
    let secret_pointer = secret
        .as_ref()
        .map_or(std::ptr::null(), |secret| secret as *const SecretHandle);
    let error_pointer = error
        .as_ref()
        .map_or(std::ptr::null(), |error| error as *const ErrorHandle);
    // SAFETY: the subscriber promised a callback and user data valid on any
    // thread until `keystead_subscription_free` returns. That cannot happen
    // on another thread while this one has the lock. A free from inside this
    // very call is allowed by the reentrant lock and only affects later
    // events.
    unsafe {
        (target.callback)(
            target.user_data,
            event.reference.as_ptr().cast(),
            event.reference.len(),
            secret_pointer,
            error_pointer,
        );
    }
    drop(guard);
}

/// Calls `callback` with `user_data` for every new version of `reference`
/// (the first load is not a rotation) and stores the subscription in
/// `*out`. A subscribed reference is refreshed in the background even when
/// no caller reads it. See `keystead_rotation_callback` for the thread the
/// callback runs on.
///
/// Fails with `KEYSTEAD_STATUS_INVALID_REFERENCE` for an invalid reference.
///
/// # Safety
/// `client` is NULL or a live client; `reference` points to
/// `reference_length` readable bytes; `callback` and `user_data` may be
/// used from any thread until `keystead_subscription_free` returns; `out`
/// and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_subscribe(
    client: *const ClientHandle,
    reference: *const c_char,
    reference_length: usize,
    callback: RotationCallback,
    user_data: *mut c_void,
    out: *mut *mut SubscriptionHandle,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_subscribe", error, || {
            let client = handle(client, "client")?;
            let reference = self::reference(reference, reference_length)?;
            let Some(callback) = callback else {
                return Err(keystead::Error::new(
                    keystead::ErrorClass::Internal,
                    "callback is NULL",
                ));
            };
            if out.is_null() {
                return Err(keystead::Error::new(
                    keystead::ErrorClass::Internal,
                    "out is NULL",
                ));
            }

            let target: Arc<TargetSlot> =
                Arc::new(ReentrantMutex::new(RefCell::new(Some(Target {
                    callback,
                    user_data,
                }))));
            let delivered = Arc::clone(&target);
            let subscription = client.with_runtime(|blocking| {
                blocking.subscribe(reference, move |event: &RotationEvent| {
                    deliver(&delivered, event)
                })
            })?;
            let subscription = SubscriptionHandle {
                target,
                subscription: Some(subscription),
            };
            write_out(out, Box::into_raw(Box::new(subscription)), "out")
        })
    }
}

/// Stops a subscription and frees it. When it returns, the callback is not
/// running on any other thread and will not be called again. It may be
/// called from inside the subscription's own callback. NULL is ignored.
///
/// # Safety
/// `subscription` is NULL or a live subscription, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn keystead_subscription_free(subscription: *mut SubscriptionHandle) {
    if subscription.is_null() {
        return;
    }
    // SAFETY: from Box::into_raw in `keystead_subscribe`.
    let mut subscription = unsafe { Box::from_raw(subscription) };
    let stop = std::panic::AssertUnwindSafe(move || {
        {
            let guard = subscription.target.lock();
            guard.replace(None);
        }
        subscription.subscription.take();
    });
    // A free function cannot report a panic, and a panic must not unwind
    // into C. The panic hook has already printed it to standard error.
    let _ = std::panic::catch_unwind(stop);
}

#[cfg(test)]
mod tests {
    use std::ptr;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::client::{
        keystead_client_free, keystead_client_new, keystead_get, keystead_refresh,
    };
    use crate::secret::keystead_secret_free;

    struct Probe {
        client: *const ClientHandle,
        nested_status: AtomicI32,
    }

    unsafe extern "C" fn call_get_from_callback(
        user_data: *mut c_void,
        _reference: *const c_char,
        _reference_length: usize,
        _secret: *const SecretHandle,
        _error: *const ErrorHandle,
    ) {
        let probe = unsafe { &*(user_data as *const Probe) };
        // Not cached, so the read would have to wait for a load.
        let reference = "env://KEYSTEAD_CAPI_TEST_NESTED_UNREAD";
        let mut secret = ptr::null_mut();
        let status = unsafe {
            keystead_get(
                probe.client,
                reference.as_ptr().cast(),
                reference.len(),
                1_000,
                ptr::null(),
                &mut secret,
                ptr::null_mut(),
            )
        };
        probe.nested_status.store(status as i32, Ordering::SeqCst);
    }

    #[test]
    fn blocking_call_inside_callback_is_rejected() {
        std::env::set_var("KEYSTEAD_CAPI_TEST_NESTED", "first");
        let json = "{}";
        let mut client = ptr::null_mut();
        let status = unsafe {
            keystead_client_new(
                json.as_ptr().cast(),
                json.len(),
                &mut client,
                ptr::null_mut(),
            )
        };
        assert_eq!(status, Status::Ok);
        let probe = Probe {
            client,
            nested_status: AtomicI32::new(-1),
        };
        let reference = "env://KEYSTEAD_CAPI_TEST_NESTED";

        let mut subscription = ptr::null_mut();
        let status = unsafe {
            keystead_subscribe(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                Some(call_get_from_callback),
                &probe as *const Probe as *mut c_void,
                &mut subscription,
                ptr::null_mut(),
            )
        };
        assert_eq!(status, Status::Ok);
        let mut secret = ptr::null_mut();
        let status = unsafe {
            keystead_get(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                5_000,
                ptr::null(),
                &mut secret,
                ptr::null_mut(),
            )
        };
        assert_eq!(status, Status::Ok);
        unsafe { keystead_secret_free(secret) };

        std::env::set_var("KEYSTEAD_CAPI_TEST_NESTED", "second");
        let status = unsafe {
            keystead_refresh(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                5_000,
                ptr::null(),
                &mut secret,
                ptr::null_mut(),
            )
        };
        assert_eq!(status, Status::Ok);
        unsafe { keystead_secret_free(secret) };

        let deadline = Instant::now() + Duration::from_secs(5);
        while probe.nested_status.load(Ordering::SeqCst) == -1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            probe.nested_status.load(Ordering::SeqCst),
            Status::Internal as i32
        );
        unsafe {
            keystead_subscription_free(subscription);
            keystead_client_free(client);
        }
    }
}
