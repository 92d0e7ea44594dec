//! Error handles: a status plus the message, reference and full text of a
//! keystead error, as NUL-terminated strings.

use std::ffi::{c_char, CString};
use std::ptr;

use keystead::{Error, ErrorClass};

use crate::status::Status;

/// An error: its status, message and the reference it concerns. Messages
/// never contain a secret value. Free it with `keystead_error_free`.
pub struct ErrorHandle {
    status: Status,
    message: CString,
    reference: Option<CString>,
    text: CString,
}

impl ErrorHandle {
    pub(crate) fn new(error: &Error) -> ErrorHandle {
        ErrorHandle {
            status: Status::from_class(error.class()),
            message: c_string(error.message()),
            reference: error.reference().map(c_string),
            text: c_string(&error.to_string()),
        }
    }
}

/// Copies text into a C string. An interior NUL, which a backend message
/// could in theory contain, becomes U+FFFD so that the rest is kept.
pub(crate) fn c_string(text: &str) -> CString {
    match CString::new(text) {
        Ok(text) => text,
        Err(_) => {
            let cleaned = text.replace('\0', "\u{fffd}");
            // The replacement removed every NUL, so this cannot fail.
            CString::new(cleaned).unwrap_or_default()
        }
    }
}

/// The error a blocking call returns when its cancellation token fires.
pub(crate) fn cancelled() -> Error {
    Error::new(
        ErrorClass::Unavailable,
        "the call was cancelled before it finished",
    )
}

/// The error a call on a closed client returns.
pub(crate) fn closed() -> Error {
    Error::new(ErrorClass::Closed, "the client is closed")
}

/// Stores `error` in `*out` when `out` is not NULL, and returns its status.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
pub(crate) unsafe fn report(error: &Error, out: *mut *mut ErrorHandle) -> Status {
    let handle = ErrorHandle::new(error);
    let status = handle.status;
    if !out.is_null() {
        // SAFETY: the caller guarantees `out` is writable when not NULL.
        unsafe { out.write(Box::into_raw(Box::new(handle))) };
    }
    status
}

/// Returns the error's status (never `KEYSTEAD_STATUS_OK`), or
/// `KEYSTEAD_STATUS_INTERNAL` for a NULL error.
///
/// # Safety
/// `error` is NULL or a live handle from this library.
#[no_mangle]
pub unsafe extern "C" fn keystead_error_status(error: *const ErrorHandle) -> Status {
    // SAFETY: the caller passes NULL or a live handle.
    match unsafe { error.as_ref() } {
        Some(error) => error.status,
        None => Status::Internal,
    }
}

/// Returns the error's message without the reference and class, for
/// example `"environment variable TOKEN is not set"`. The string lives as
/// long as the error handle.
///
/// # Safety
/// `error` is NULL or a live handle from this library.
#[no_mangle]
pub unsafe extern "C" fn keystead_error_message(error: *const ErrorHandle) -> *const c_char {
    // SAFETY: the caller passes NULL or a live handle.
    match unsafe { error.as_ref() } {
        Some(error) => error.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Returns the reference the error concerns, or NULL when it concerns
/// none. The string lives as long as the error handle.
///
/// # Safety
/// `error` is NULL or a live handle from this library.
#[no_mangle]
pub unsafe extern "C" fn keystead_error_reference(error: *const ErrorHandle) -> *const c_char {
    // SAFETY: the caller passes NULL or a live handle.
    match unsafe { error.as_ref() }.and_then(|error| error.reference.as_ref()) {
        Some(reference) => reference.as_ptr(),
        None => ptr::null(),
    }
}

/// Returns the full text of the error: `REFERENCE: CLASS: MESSAGE`, or
/// `CLASS: MESSAGE` when it concerns no reference. The string lives as long
/// as the error handle.
///
/// # Safety
/// `error` is NULL or a live handle from this library.
#[no_mangle]
pub unsafe extern "C" fn keystead_error_text(error: *const ErrorHandle) -> *const c_char {
    // SAFETY: the caller passes NULL or a live handle.
    match unsafe { error.as_ref() } {
        Some(error) => error.text.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Frees an error handle. NULL is ignored.
///
/// # Safety
/// `error` is NULL or a live handle from this library, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn keystead_error_free(error: *mut ErrorHandle) {
    if !error.is_null() {
        // SAFETY: the handle came from Box::into_raw in `report` and the
        // caller gives up its use.
        drop(unsafe { Box::from_raw(error) });
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn handle_keeps_message_reference_and_text() {
        let error = Error::new(ErrorClass::NotFound, "no such secret").for_reference("env://X");
        let mut out = ptr::null_mut();
        let status = unsafe { report(&error, &mut out) };
        assert_eq!(status, Status::NotFound);
        unsafe {
            assert_eq!(keystead_error_status(out), Status::NotFound);
            assert_eq!(
                CStr::from_ptr(keystead_error_message(out))
                    .to_str()
                    .unwrap(),
                "no such secret"
            );
            assert_eq!(
                CStr::from_ptr(keystead_error_reference(out))
                    .to_str()
                    .unwrap(),
                "env://X"
            );
            assert_eq!(
                CStr::from_ptr(keystead_error_text(out)).to_str().unwrap(),
                "env://X: not-found: no such secret"
            );
            keystead_error_free(out);
        }
    }

    #[test]
    fn missing_reference_is_null() {
        let error = Error::new(ErrorClass::Config, "bad");
        let handle = ErrorHandle::new(&error);
        assert!(unsafe { keystead_error_reference(&handle) }.is_null());
    }

    #[test]
    fn interior_nul_is_replaced() {
        assert_eq!(c_string("a\0b").to_str().unwrap(), "a\u{fffd}b");
    }

    #[test]
    fn null_out_pointer_still_returns_status() {
        let error = Error::new(ErrorClass::Closed, "closed");
        assert_eq!(unsafe { report(&error, ptr::null_mut()) }, Status::Closed);
    }
}
