//! Checking arguments that arrive as raw pointers, and turning panics into
//! a status.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use keystead::{Error, ErrorClass};

use crate::error::{report, ErrorHandle};
use crate::status::Status;

/// Runs the body of an exported function. A returned error is stored in
/// `*error_out`; a panic becomes [`Status::Internal`] instead of unwinding
/// into C, where unwinding is undefined behaviour.
///
/// # Safety
/// `error_out` is NULL or valid for one pointer write.
pub(crate) unsafe fn guard(
    function: &'static str,
    error_out: *mut *mut ErrorHandle,
    body: impl FnOnce() -> Result<(), Error>,
) -> Status {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| Err(panicked(function)));
    match result {
        Ok(()) => Status::Ok,
        // SAFETY: forwarded from the caller.
        Err(error) => unsafe { report(&error, error_out) },
    }
}

/// Builds the error for a panic. The panic hook already printed the panic's
/// own message to standard error. It is not repeated here, so that no text
/// from the panic (which could in theory quote data) reaches an error.
pub(crate) fn panicked(function: &str) -> Error {
    Error::new(
        ErrorClass::Internal,
        format!("{function} panicked; this is a bug in keystead, and the panic message was printed to standard error"),
    )
}

/// Borrows a UTF-8 string passed as pointer and length. `what` names the
/// argument in errors, and `class` is the error class for invalid text.
///
/// # Safety
/// When `length` is not zero, `pointer` points to `length` readable bytes
/// that stay unchanged for `'a`.
pub(crate) unsafe fn text<'a>(
    pointer: *const c_char,
    length: usize,
    what: &str,
    class: ErrorClass,
) -> Result<&'a str, Error> {
    if length == 0 {
        return Ok("");
    }
    if pointer.is_null() {
        return Err(Error::new(
            class,
            format!("{what} is NULL with a length of {length}"),
        ));
    }
    // SAFETY: the caller guarantees `length` readable bytes at `pointer`.
    let bytes = unsafe { std::slice::from_raw_parts(pointer.cast::<u8>(), length) };
    std::str::from_utf8(bytes).map_err(|_| Error::new(class, format!("{what} is not valid UTF-8")))
}

/// Borrows a reference argument.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn reference<'a>(
    pointer: *const c_char,
    length: usize,
) -> Result<&'a str, Error> {
    // SAFETY: forwarded from the caller.
    unsafe {
        text(
            pointer,
            length,
            "the reference",
            ErrorClass::InvalidReference,
        )
    }
}

/// Borrows a handle argument that must not be NULL.
///
/// # Safety
/// `handle` is NULL or points to a live `T` for `'a`.
pub(crate) unsafe fn handle<'a, T>(handle: *const T, what: &str) -> Result<&'a T, Error> {
    // SAFETY: the caller passes NULL or a live handle.
    unsafe { handle.as_ref() }
        .ok_or_else(|| Error::new(ErrorClass::Internal, format!("{what} is NULL")))
}

/// Stores `value` in `*out`, which must not be NULL.
///
/// # Safety
/// `out` is NULL or valid for one write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T, what: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::new(ErrorClass::Internal, format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and the caller guarantees it is writable.
    unsafe { out.write(value) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;

    #[test]
    fn panic_becomes_internal_status() {
        let mut error = ptr::null_mut();
        let status = unsafe { guard("test_function", &mut error, || panic!("boom")) };
        assert_eq!(status, Status::Internal);
        let message =
            unsafe { std::ffi::CStr::from_ptr(crate::error::keystead_error_message(error)) };
        assert!(message.to_str().unwrap().contains("test_function panicked"));
        unsafe { crate::error::keystead_error_free(error) };
    }

    #[test]
    fn empty_text_needs_no_pointer() {
        let text = unsafe { text(ptr::null(), 0, "x", ErrorClass::Config) }.unwrap();
        assert_eq!(text, "");
    }

    #[test]
    fn null_text_with_length_is_rejected() {
        let error = unsafe { reference(ptr::null(), 3) }.unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidReference);
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let bytes = [0xffu8, 0xfe];
        let error = unsafe { reference(bytes.as_ptr().cast(), 2) }.unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidReference);
        assert!(error.message().contains("UTF-8"));
    }
}
