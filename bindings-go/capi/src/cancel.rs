//! Cancellation tokens: let another thread abort a blocking call.

use tokio_util::sync::CancellationToken;

/// A cancellation token. Pass it to blocking calls; `keystead_cancel_token_cancel`
/// from any thread makes those calls return `KEYSTEAD_STATUS_UNAVAILABLE`
/// promptly. A cancelled token stays cancelled. Free it with
/// `keystead_cancel_token_free` once no call is using it.
pub struct CancelToken {
    token: CancellationToken,
}

impl CancelToken {
    /// Completes when the token is cancelled.
    pub(crate) async fn cancelled(&self) {
        self.token.cancelled().await;
    }
}

/// Creates a cancellation token. Never returns NULL.
#[no_mangle]
pub extern "C" fn keystead_cancel_token_new() -> *mut CancelToken {
    Box::into_raw(Box::new(CancelToken {
        token: CancellationToken::new(),
    }))
}

/// Cancels every call that uses the token, now and later. Safe to call from
/// any thread, more than once, and while calls are using the token. NULL is
/// ignored.
///
/// # Safety
/// `token` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn keystead_cancel_token_cancel(token: *const CancelToken) {
    // SAFETY: the caller passes NULL or a live token.
    if let Some(token) = unsafe { token.as_ref() } {
        token.token.cancel();
    }
}

/// Returns whether the token was cancelled. NULL returns false.
///
/// # Safety
/// `token` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn keystead_cancel_token_is_cancelled(token: *const CancelToken) -> bool {
    // SAFETY: the caller passes NULL or a live token.
    unsafe { token.as_ref() }.is_some_and(|token| token.token.is_cancelled())
}

/// Frees a token. No call may be using it and no thread may be cancelling
/// it. NULL is ignored.
///
/// # Safety
/// `token` is NULL or a live token, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn keystead_cancel_token_free(token: *mut CancelToken) {
    if !token.is_null() {
        // SAFETY: from Box::into_raw in `keystead_cancel_token_new`.
        drop(unsafe { Box::from_raw(token) });
    }
}
