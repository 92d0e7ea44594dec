//! Status codes: success, or the class of the error.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use keystead::ErrorClass;

/// Passed as a `timeout_ms` argument: wait without a time limit.
pub const KEYSTEAD_NO_TIMEOUT: u64 = 0;

/// Number of status codes, `KEYSTEAD_STATUS_OK` included. Arrays indexed by
/// status (such as `keystead_metrics.errors`) have this length.
pub const KEYSTEAD_STATUS_COUNT: usize = 13;

/// The result of a call: `KEYSTEAD_STATUS_OK`, or the class of the error.
///
/// Each error status is one keystead error class, and the numbers never
/// change between releases. `keystead_status_name` returns the class's
/// stable name, as used in logs, metrics and the other language bindings.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The call succeeded.
    Ok = 0,
    /// The reference does not follow `SCHEME://PATH[?QUERY][#FIELD]`, names
    /// an unknown scheme, or has a query key its provider does not accept.
    InvalidReference = 1,
    /// The configuration is invalid.
    Config = 2,
    /// The backend has no secret, version or stage by that name.
    NotFound = 3,
    /// The backend rejected the credentials or permissions.
    AccessDenied = 4,
    /// The secret is deleted, scheduled for deletion or destroyed.
    SecretDeleted = 5,
    /// The backend could not decrypt the value (usually a KMS key policy).
    DecryptionFailed = 6,
    /// The backend is unreachable or failed transiently, the call timed out,
    /// or it was cancelled. Retrying later may work.
    Unavailable = 7,
    /// Text was requested from a binary value.
    NotText = 8,
    /// A `#field` selector named a field that is missing or `null`.
    FieldNotFound = 9,
    /// A `#field` selector was applied to a value that is not JSON.
    InvalidJson = 10,
    /// The client is closed.
    Closed = 11,
    /// A bug in keystead (a panic included), an unexpected response from a
    /// backend, or a NULL pointer where a handle was required.
    Internal = 12,
}

impl Status {
    /// The status for an error class.
    pub(crate) fn from_class(class: ErrorClass) -> Status {
        match class {
            ErrorClass::InvalidReference => Status::InvalidReference,
            ErrorClass::Config => Status::Config,
            ErrorClass::NotFound => Status::NotFound,
            ErrorClass::AccessDenied => Status::AccessDenied,
            ErrorClass::SecretDeleted => Status::SecretDeleted,
            ErrorClass::DecryptionFailed => Status::DecryptionFailed,
            ErrorClass::Unavailable => Status::Unavailable,
            ErrorClass::NotText => Status::NotText,
            ErrorClass::FieldNotFound => Status::FieldNotFound,
            ErrorClass::InvalidJson => Status::InvalidJson,
            ErrorClass::Closed => Status::Closed,
            ErrorClass::Internal => Status::Internal,
            // A class added to core after this crate was written. The unit
            // test `every_class_has_its_own_status` fails until it is mapped.
            _ => Status::Internal,
        }
    }

    /// The stable name: `"ok"`, or the error class's name.
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            Status::Ok => c"ok",
            Status::InvalidReference => c"invalid-reference",
            Status::Config => c"config",
            Status::NotFound => c"not-found",
            Status::AccessDenied => c"access-denied",
            Status::SecretDeleted => c"secret-deleted",
            Status::DecryptionFailed => c"decryption-failed",
            Status::Unavailable => c"unavailable",
            Status::NotText => c"not-text",
            Status::FieldNotFound => c"field-not-found",
            Status::InvalidJson => c"invalid-json",
            Status::Closed => c"closed",
            Status::Internal => c"internal",
        }
    }

    /// The status with this number, if there is one.
    pub(crate) fn from_number(number: i32) -> Option<Status> {
        STATUSES.into_iter().find(|status| *status as i32 == number)
    }
}

const STATUSES: [Status; KEYSTEAD_STATUS_COUNT] = [
    Status::Ok,
    Status::InvalidReference,
    Status::Config,
    Status::NotFound,
    Status::AccessDenied,
    Status::SecretDeleted,
    Status::DecryptionFailed,
    Status::Unavailable,
    Status::NotText,
    Status::FieldNotFound,
    Status::InvalidJson,
    Status::Closed,
    Status::Internal,
];

/// Converts a `timeout_ms` argument; `KEYSTEAD_NO_TIMEOUT` means no limit.
pub(crate) fn timeout_from_millis(timeout_ms: u64) -> Option<Duration> {
    if timeout_ms == KEYSTEAD_NO_TIMEOUT {
        None
    } else {
        Some(Duration::from_millis(timeout_ms))
    }
}

/// Returns the stable name of a status (`"ok"`, `"not-found"`, ...), or
/// `"unknown"` for a number that is no status. The string is static.
#[no_mangle]
pub extern "C" fn keystead_status_name(status: i32) -> *const c_char {
    match Status::from_number(status) {
        Some(status) => status.name().as_ptr(),
        None => c"unknown".as_ptr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_status() {
        let mut seen = Vec::new();
        for class in ErrorClass::ALL {
            let status = Status::from_class(class);
            assert_ne!(status, Status::Ok);
            assert!(!seen.contains(&status), "{class} shares {status:?}");
            seen.push(status);
        }
        assert_eq!(seen.len(), KEYSTEAD_STATUS_COUNT - 1);
    }

    #[test]
    fn status_names_are_class_names() {
        for class in ErrorClass::ALL {
            let name = Status::from_class(class).name().to_str().unwrap();
            assert_eq!(name, class.as_str());
        }
        assert_eq!(Status::Ok.name().to_str().unwrap(), "ok");
    }

    #[test]
    fn status_numbers_follow_class_order() {
        for (position, class) in ErrorClass::ALL.into_iter().enumerate() {
            assert_eq!(Status::from_class(class) as i32, position as i32 + 1);
        }
    }

    #[test]
    fn unknown_number_has_unknown_name() {
        let name = unsafe { CStr::from_ptr(keystead_status_name(99)) };
        assert_eq!(name.to_str().unwrap(), "unknown");
        let name = unsafe { CStr::from_ptr(keystead_status_name(3)) };
        assert_eq!(name.to_str().unwrap(), "not-found");
    }
}
