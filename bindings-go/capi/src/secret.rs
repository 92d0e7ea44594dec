//! Secret handles: a keystead secret, its value and its metadata.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use keystead::{ErrorClass, Secret};

use crate::arguments::{guard, handle, text, write_out};
use crate::error::{c_string, ErrorHandle};
use crate::status::Status;

/// A secret: a value and its metadata.
///
/// The value's bytes are shared with the client's cache and with every
/// other handle to the same version; no copy is made. They are overwritten
/// with zeros when the last holder lets go: the cache when the value is
/// refreshed, invalidated, evicted or the client is closed, and each handle
/// when it is freed with `keystead_secret_free`.
pub struct SecretHandle {
    secret: Secret,
    // Built on the first `keystead_secret_metadata` call, because most
    // reads never look at metadata.
    metadata: OnceLock<MetadataStorage>,
}

impl SecretHandle {
    pub(crate) fn new(secret: Secret) -> SecretHandle {
        SecretHandle {
            secret,
            metadata: OnceLock::new(),
        }
    }

    /// Returns whether this handle's secret is `secret` itself, with the same
    /// value and metadata rather than equal ones. Metadata lives inside the
    /// secret's shared allocation, so its address identifies that allocation.
    pub(crate) fn holds(&self, secret: &Secret) -> bool {
        std::ptr::eq(self.secret.metadata(), secret.metadata())
    }

    /// Moves a secret to the heap and hands ownership to the caller.
    pub(crate) fn into_raw(secret: Secret) -> *mut SecretHandle {
        Box::into_raw(Box::new(SecretHandle::new(secret)))
    }
}

/// A point in wall-clock time, or no time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    /// False when there is no such time; the other fields are then zero.
    pub is_set: bool,
    /// Whole seconds since 1970-01-01T00:00:00Z; negative before it.
    pub unix_seconds: i64,
    /// Nanoseconds to add to `unix_seconds`, below one billion.
    pub nanoseconds: u32,
}

impl Timestamp {
    fn new(time: Option<SystemTime>) -> Timestamp {
        let Some(time) = time else {
            return Timestamp::default();
        };
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp {
                is_set: true,
                unix_seconds: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
                nanoseconds: after.subsec_nanos(),
            },
            Err(before) => {
                // Round towards negative infinity so that nanoseconds stay
                // non-negative.
                let before = before.duration();
                let mut seconds = -i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                let mut nanoseconds = before.subsec_nanos();
                if nanoseconds > 0 {
                    seconds -= 1;
                    nanoseconds = 1_000_000_000 - nanoseconds;
                }
                Timestamp {
                    is_set: true,
                    unix_seconds: seconds,
                    nanoseconds,
                }
            }
        }
    }
}

/// Facts about a secret's value. None of them is secret. Every string is
/// NUL-terminated and lives as long as the secret handle; a string the
/// backend did not report is NULL.
#[repr(C)]
#[derive(Debug)]
pub struct Metadata {
    /// The reference the value was loaded for, in canonical form and without
    /// a field selector.
    pub reference: *const c_char,
    /// The provider scheme, for example `aws-sm`.
    pub provider: *const c_char,
    /// The backend's name for the secret.
    pub name: *const c_char,
    /// The backend's ARN or other unique id.
    pub arn: *const c_char,
    /// The backend's version id (AWS `VersionId`).
    pub version_id: *const c_char,
    /// The version's staging labels (AWS `VersionStages`, SSM labels):
    /// `version_stage_count` strings.
    pub version_stages: *const *const c_char,
    /// Number of entries in `version_stages`.
    pub version_stage_count: usize,
    /// False when the backend reports no version number.
    pub has_version_number: bool,
    /// The version number (SSM parameter version, Vault KV version).
    pub version_number: u64,
    /// When the backend created this version.
    pub created_at: Timestamp,
    /// When keystead fetched this value.
    pub fetched_at: Timestamp,
    /// When keystead plans to refresh the value in the background (an
    /// estimate).
    pub refresh_at: Timestamp,
    /// When the value stops being valid at the backend (a lease or
    /// credential expiry).
    pub expires_at: Timestamp,
    /// The `#field` path applied to produce this value.
    pub field: *const c_char,
}

/// Owns the C strings that a [`Metadata`] points into. The strings' heap
/// buffers do not move when this struct moves, so the pointers stay valid
/// for as long as the storage lives.
struct MetadataStorage {
    view: Metadata,
    _strings: Vec<CString>,
    _stages: Vec<*const c_char>,
}

// SAFETY: the raw pointers point into `_strings`, which is never changed
// after construction, so sharing or sending the storage is as safe as
// sharing or sending the `CString`s themselves.
unsafe impl Send for MetadataStorage {}
// SAFETY: as above; nothing is mutated through a shared reference.
unsafe impl Sync for MetadataStorage {}

impl MetadataStorage {
    fn new(metadata: &keystead::Metadata) -> MetadataStorage {
        let mut strings = Vec::new();
        let mut keep = |text: Option<&str>| -> *const c_char {
            match text {
                Some(text) => {
                    let text = c_string(text);
                    let pointer = text.as_ptr();
                    strings.push(text);
                    pointer
                }
                None => ptr::null(),
            }
        };
        let reference = keep(Some(&metadata.reference));
        let provider = keep(Some(&metadata.provider));
        let name = keep(metadata.name.as_deref());
        let arn = keep(metadata.arn.as_deref());
        let version_id = keep(metadata.version_id.as_deref());
        let field = keep(metadata.field.as_deref());
        let stages: Vec<*const c_char> = metadata
            .version_stages
            .iter()
            .map(|stage| keep(Some(stage)))
            .collect();

        let view = Metadata {
            reference,
            provider,
            name,
            arn,
            version_id,
            version_stages: if stages.is_empty() {
                ptr::null()
            } else {
                stages.as_ptr()
            },
            version_stage_count: stages.len(),
            has_version_number: metadata.version_number.is_some(),
            version_number: metadata.version_number.unwrap_or(0),
            created_at: Timestamp::new(metadata.created_at),
            fetched_at: Timestamp::new(metadata.fetched_at),
            refresh_at: Timestamp::new(metadata.refresh_at),
            expires_at: Timestamp::new(metadata.expires_at),
            field,
        };
        MetadataStorage {
            view,
            _strings: strings,
            _stages: stages,
        }
    }
}

/// A borrowed byte string: `length` bytes at `data`, not NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes {
    /// The first byte; NULL only when `length` is zero.
    pub data: *const u8,
    /// Number of bytes.
    pub length: usize,
}

/// Returns the value's exact bytes, text or binary. They live as long as
/// the handle. A NULL handle gives NULL and a length of zero.
///
/// # Safety
/// `secret` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn keystead_secret_bytes(secret: *const SecretHandle) -> Bytes {
    // SAFETY: the caller passes NULL or a live handle.
    match unsafe { secret.as_ref() } {
        Some(secret) => {
            let bytes = secret.secret.expose_bytes();
            Bytes {
                data: bytes.as_ptr(),
                length: bytes.len(),
            }
        }
        None => Bytes {
            data: ptr::null(),
            length: 0,
        },
    }
}

/// Stores the value as UTF-8 text in `*text` and `*length`. The text is not
/// NUL-terminated and lives as long as the handle. A binary value fails
/// with `KEYSTEAD_STATUS_NOT_TEXT`; read it with `keystead_secret_bytes`.
///
/// # Safety
/// `secret` is NULL or a live handle; `text`, `length` and `error` are NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_secret_text(
    secret: *const SecretHandle,
    text: *mut *const c_char,
    length: *mut usize,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_secret_text", error, || {
            let secret = handle(secret, "secret")?;
            let value = secret.secret.expose_str()?;
            write_out(text, value.as_ptr().cast::<c_char>(), "text")?;
            write_out(length, value.len(), "length")
        })
    }
}

/// Returns whether the value is binary rather than text. NULL returns false.
///
/// # Safety
/// `secret` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn keystead_secret_is_binary(secret: *const SecretHandle) -> bool {
    // SAFETY: the caller passes NULL or a live handle.
    unsafe { secret.as_ref() }.is_some_and(|secret| secret.secret.is_binary())
}

/// Selects a field of a JSON value by dot path (for example `"db.port"`)
/// and stores a new handle in `*out`. String fields give their text; other
/// JSON values give their compact JSON text.
///
/// Fails with `KEYSTEAD_STATUS_INVALID_REFERENCE` for a malformed path,
/// `KEYSTEAD_STATUS_INVALID_JSON` when the value is not a JSON object or
/// array, and `KEYSTEAD_STATUS_FIELD_NOT_FOUND` when the field is missing
/// or `null`.
///
/// # Safety
/// `secret` is NULL or a live handle; `path` points to `path_length`
/// readable bytes; `out` and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_secret_field(
    secret: *const SecretHandle,
    path: *const c_char,
    path_length: usize,
    out: *mut *mut SecretHandle,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_secret_field", error, || {
            let secret = handle(secret, "secret")?;
            let path = text(
                path,
                path_length,
                "the field path",
                ErrorClass::InvalidReference,
            )?;
            let selected = secret.secret.field(path)?;
            write_out(out, SecretHandle::into_raw(selected), "out")
        })
    }
}

/// Returns the value's metadata. The result and its strings live as long
/// as the handle. Returns NULL for a NULL handle.
///
/// # Safety
/// `secret` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn keystead_secret_metadata(secret: *const SecretHandle) -> *const Metadata {
    // SAFETY: the caller passes NULL or a live handle.
    let Some(secret) = (unsafe { secret.as_ref() }) else {
        return ptr::null();
    };
    let storage = secret
        .metadata
        .get_or_init(|| MetadataStorage::new(secret.secret.metadata()));
    &storage.view
}

/// Returns a new handle to the same value and metadata, which the caller
/// frees separately. Use it to keep a secret passed to a rotation callback.
/// Returns NULL for a NULL handle.
///
/// # Safety
/// `secret` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn keystead_secret_clone(secret: *const SecretHandle) -> *mut SecretHandle {
    // SAFETY: the caller passes NULL or a live handle.
    match unsafe { secret.as_ref() } {
        Some(secret) => SecretHandle::into_raw(secret.secret.clone()),
        None => ptr::null_mut(),
    }
}

/// Frees a secret handle. When it was the last holder of the value, the
/// value's bytes are overwritten with zeros. NULL is ignored.
///
/// # Safety
/// `secret` is NULL or a live handle, not used afterwards. Pointers
/// returned by `keystead_secret_bytes`, `keystead_secret_text` and
/// `keystead_secret_metadata` for it become invalid.
#[no_mangle]
pub unsafe extern "C" fn keystead_secret_free(secret: *mut SecretHandle) {
    if !secret.is_null() {
        // SAFETY: from Box::into_raw in `SecretHandle::into_raw`.
        drop(unsafe { Box::from_raw(secret) });
    }
}

/// Wraps a text value for tests.
#[cfg(test)]
pub(crate) fn test_secret(value: &str) -> Secret {
    let mut metadata = keystead::Metadata::default();
    metadata.reference = "env://TEST".into();
    metadata.provider = "env".into();
    metadata.version_stages = vec!["AWSCURRENT".into(), "LABEL".into()];
    metadata.version_number = Some(4);
    Secret::new(keystead::SecretValue::text(value.into()), metadata)
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::time::Duration;

    use super::*;

    #[test]
    fn bytes_and_text_point_at_the_value() {
        let handle = SecretHandle::into_raw(test_secret("hunter2"));
        unsafe {
            let bytes = keystead_secret_bytes(handle);
            assert_eq!(
                std::slice::from_raw_parts(bytes.data, bytes.length),
                b"hunter2"
            );

            let mut text = ptr::null();
            let mut text_length = 0;
            let status = keystead_secret_text(handle, &mut text, &mut text_length, ptr::null_mut());
            assert_eq!(status, Status::Ok);
            assert_eq!(
                std::slice::from_raw_parts(text.cast::<u8>(), text_length),
                b"hunter2"
            );
            assert!(!keystead_secret_is_binary(handle));
            keystead_secret_free(handle);
        }
    }

    #[test]
    fn binary_value_is_not_text() {
        let secret = Secret::new(
            keystead::SecretValue::binary(vec![0, 255]),
            keystead::Metadata::default(),
        );
        let handle = SecretHandle::into_raw(secret);
        unsafe {
            let mut text = ptr::null();
            let mut length = 0;
            let status = keystead_secret_text(handle, &mut text, &mut length, ptr::null_mut());
            assert_eq!(status, Status::NotText);
            assert!(keystead_secret_is_binary(handle));
            keystead_secret_free(handle);
        }
    }

    #[test]
    fn metadata_strings_and_stages() {
        let handle = SecretHandle::into_raw(test_secret("x"));
        unsafe {
            let metadata = &*keystead_secret_metadata(handle);
            assert_eq!(
                CStr::from_ptr(metadata.reference).to_str().unwrap(),
                "env://TEST"
            );
            assert_eq!(CStr::from_ptr(metadata.provider).to_str().unwrap(), "env");
            assert!(metadata.name.is_null());
            assert_eq!(metadata.version_stage_count, 2);
            let stages = std::slice::from_raw_parts(metadata.version_stages, 2);
            assert_eq!(CStr::from_ptr(stages[1]).to_str().unwrap(), "LABEL");
            assert!(metadata.has_version_number);
            assert_eq!(metadata.version_number, 4);
            assert!(!metadata.created_at.is_set);
            // A second call returns the same storage.
            assert!(std::ptr::eq(metadata, keystead_secret_metadata(handle)));
            keystead_secret_free(handle);
        }
    }

    #[test]
    fn field_selects_json() {
        let handle = SecretHandle::into_raw(test_secret(r#"{"user":"app"}"#));
        unsafe {
            let mut out = ptr::null_mut();
            let status =
                keystead_secret_field(handle, c"user".as_ptr(), 4, &mut out, ptr::null_mut());
            assert_eq!(status, Status::Ok);
            let bytes = keystead_secret_bytes(out);
            assert_eq!(std::slice::from_raw_parts(bytes.data, bytes.length), b"app");
            keystead_secret_free(out);

            let status =
                keystead_secret_field(handle, c"pass".as_ptr(), 4, &mut out, ptr::null_mut());
            assert_eq!(status, Status::FieldNotFound);
            keystead_secret_free(handle);
        }
    }

    #[test]
    fn timestamps_before_and_after_epoch() {
        let after = Timestamp::new(Some(UNIX_EPOCH + Duration::new(5, 250)));
        assert_eq!(
            after,
            Timestamp {
                is_set: true,
                unix_seconds: 5,
                nanoseconds: 250
            }
        );
        let before = Timestamp::new(Some(UNIX_EPOCH - Duration::new(1, 500_000_000)));
        assert_eq!(
            before,
            Timestamp {
                is_set: true,
                unix_seconds: -2,
                nanoseconds: 500_000_000
            }
        );
        assert_eq!(Timestamp::new(None), Timestamp::default());
    }
}
