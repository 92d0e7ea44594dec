//! Secret values and their metadata.
//!
//! A value's bytes live in one zeroizing buffer shared by reference count:
//! the cache entry, every [`Secret`] handed to callers and every pending
//! notification hold the same buffer, and the bytes are wiped when the last
//! of them is dropped.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroize;

use crate::error::{Error, ErrorClass};
use crate::field::{self, FieldPath};

/// Whether a value is text or arbitrary bytes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 text (for example AWS `SecretString`, an SSM parameter, a UTF-8 file).
    Text,
    /// Arbitrary bytes (for example AWS `SecretBinary`, or a file that is not UTF-8).
    Binary,
}

/// A secret value as a provider returns it: bytes in zeroizing storage and
/// their encoding.
pub struct SecretValue {
    bytes: SecretSlice<u8>,
    encoding: Encoding,
}

impl SecretValue {
    /// Takes ownership of text. The `String`'s buffer becomes the zeroizing
    /// buffer, so no other copy is made.
    pub fn text(text: String) -> SecretValue {
        SecretValue {
            bytes: exact_secret(text.into_bytes()),
            encoding: Encoding::Text,
        }
    }

    /// Takes ownership of binary bytes.
    pub fn binary(bytes: Vec<u8>) -> SecretValue {
        SecretValue {
            bytes: exact_secret(bytes),
            encoding: Encoding::Binary,
        }
    }

    /// Takes ownership of bytes that are text when they are valid UTF-8 and
    /// binary otherwise.
    pub fn detect(bytes: Vec<u8>) -> SecretValue {
        let encoding = if std::str::from_utf8(&bytes).is_ok() {
            Encoding::Text
        } else {
            Encoding::Binary
        };
        SecretValue {
            bytes: exact_secret(bytes),
            encoding,
        }
    }

    /// The value's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The raw bytes.
    pub fn expose_bytes(&self) -> &[u8] {
        self.bytes.expose_secret()
    }
}

/// Moves bytes into zeroizing storage without leaving a copy behind.
///
/// Turning a `Vec` with spare capacity into a boxed slice reallocates and
/// frees the old buffer unwiped, so such a `Vec` is copied into an exact
/// allocation and then wiped, spare capacity included.
fn exact_secret(mut bytes: Vec<u8>) -> SecretSlice<u8> {
    if bytes.capacity() == bytes.len() {
        return SecretSlice::from(bytes);
    }
    let exact: Box<[u8]> = Box::from(bytes.as_slice());
    bytes.zeroize();
    SecretSlice::new(exact)
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("encoding", &self.encoding)
            .field("value", &format_args!("[REDACTED]"))
            .finish()
    }
}

/// Facts about a value that travel with it. None of them is secret.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The reference the value was loaded for, in canonical form and without
    /// a field selector.
    pub reference: String,
    /// The provider scheme, for example `aws-sm`.
    pub provider: String,
    /// The backend's name for the secret, when it reports one.
    pub name: Option<String>,
    /// The backend's ARN or other unique id, when it reports one.
    pub arn: Option<String>,
    /// The backend's version id (AWS `VersionId`).
    pub version_id: Option<String>,
    /// The staging labels attached to this version (AWS `VersionStages`),
    /// or the labels of an SSM parameter version.
    pub version_stages: Vec<String>,
    /// The version number (SSM parameter version, Vault KV version).
    pub version_number: Option<u64>,
    /// When the backend created this version, when it reports that.
    pub created_at: Option<SystemTime>,
    /// When keystead fetched this value (wall clock, for display only).
    pub fetched_at: Option<SystemTime>,
    /// When keystead plans to refresh the value in the background (wall
    /// clock estimate of a monotonic deadline).
    pub refresh_at: Option<SystemTime>,
    /// When the value stops being valid at the backend (a lease or
    /// credential expiry), when there is such a time.
    pub expires_at: Option<SystemTime>,
    /// The `#field` path applied to produce this value, if any.
    pub field: Option<String>,
}

/// A secret handed to a caller: a value and its metadata.
///
/// Cloning is one reference-count increment. `Debug` and `Display` never show
/// the value; only [`Secret::expose_str`] and [`Secret::expose_bytes`] do.
///
/// ```
/// use keystead::{Secret, SecretValue, Metadata};
/// let secret = Secret::new(SecretValue::text("hunter2".into()), Metadata::default());
/// assert_eq!(secret.expose_str().unwrap(), "hunter2");
/// assert!(!format!("{secret:?} {secret}").contains("hunter2"));
/// ```
#[derive(Clone)]
pub struct Secret {
    inner: Arc<SecretInner>,
}

struct SecretInner {
    // Shared so that a refresh that returns the same bytes can attach new
    // metadata without copying the value.
    value: Arc<SecretValue>,
    metadata: Metadata,
}

impl Secret {
    /// Wraps a value and its metadata.
    pub fn new(value: SecretValue, metadata: Metadata) -> Secret {
        Secret {
            inner: Arc::new(SecretInner {
                value: Arc::new(value),
                metadata,
            }),
        }
    }

    /// Reveals the value as text.
    ///
    /// # Errors
    /// [`ErrorClass::NotText`] when the value is binary.
    pub fn expose_str(&self) -> Result<&str, Error> {
        let not_text = || {
            Error::new(
                ErrorClass::NotText,
                "the value is binary, not text; read its bytes instead",
            )
            .for_reference(&self.inner.metadata.reference)
        };
        if self.inner.value.encoding != Encoding::Text {
            return Err(not_text());
        }
        std::str::from_utf8(self.inner.value.expose_bytes()).map_err(|_| not_text())
    }

    /// Reveals the value's exact bytes, text or binary.
    pub fn expose_bytes(&self) -> &[u8] {
        self.inner.value.expose_bytes()
    }

    /// The value's encoding.
    pub fn encoding(&self) -> Encoding {
        self.inner.value.encoding
    }

    /// Whether the value is binary.
    pub fn is_binary(&self) -> bool {
        self.inner.value.encoding == Encoding::Binary
    }

    /// The value's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// Selects a field of a JSON value by dot path, for example `"db.port"`.
    /// Segments are percent-decoded, so a key containing a dot is written
    /// `%2E`. String fields return their text; other JSON values return
    /// their compact JSON text.
    ///
    /// # Errors
    /// [`ErrorClass::InvalidReference`] for an empty or malformed path,
    /// [`ErrorClass::InvalidJson`] when the value is not a JSON object or
    /// array, and [`ErrorClass::FieldNotFound`] when a segment is missing or
    /// its value is `null`.
    pub fn field(&self, path: &str) -> Result<Secret, Error> {
        let path = FieldPath::parse(path)?;
        self.select(&path)
    }

    pub(crate) fn select(&self, path: &FieldPath) -> Result<Secret, Error> {
        let reference = &self.inner.metadata.reference;
        let selected = field::select(self.inner.value.expose_bytes(), path)
            .map_err(|error| error.for_reference(reference))?;
        let mut metadata = self.inner.metadata.clone();
        metadata.field = Some(path.as_str().to_owned());
        Ok(Secret::new(selected, metadata))
    }

    /// Returns the same value buffer with new metadata. Used when a refresh
    /// returns bytes equal to the cached ones.
    pub(crate) fn with_metadata(&self, metadata: Metadata) -> Secret {
        Secret {
            inner: Arc::new(SecretInner {
                value: Arc::clone(&self.inner.value),
                metadata,
            }),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let metadata = &self.inner.metadata;
        f.debug_struct("Secret")
            .field("reference", &metadata.reference)
            .field("field", &metadata.field)
            .field("version_id", &metadata.version_id)
            .field("version_number", &metadata.version_number)
            .field("encoding", &self.inner.value.encoding)
            .field("value", &format_args!("[REDACTED]"))
            .finish()
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-6f1d2e-do-not-print";

    fn text_secret(value: &str) -> Secret {
        let metadata = Metadata {
            reference: "env://TOKEN".into(),
            provider: "env".into(),
            ..Metadata::default()
        };
        Secret::new(SecretValue::text(value.into()), metadata)
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = text_secret(CANARY);
        let debug = format!("{secret:?}");
        let pretty = format!("{secret:#?}");
        let display = secret.to_string();
        assert!(!debug.contains(CANARY), "{debug}");
        assert!(!pretty.contains(CANARY), "{pretty}");
        assert_eq!(display, "[REDACTED]");
        assert!(debug.contains("env://TOKEN"));
    }

    #[test]
    fn binary_value_refuses_text() {
        let secret = Secret::new(SecretValue::binary(vec![0, 159, 146, 150]), Metadata::default());
        let error = secret.expose_str().unwrap_err();
        assert_eq!(error.class(), ErrorClass::NotText);
        assert_eq!(secret.expose_bytes(), &[0, 159, 146, 150]);
    }

    #[test]
    fn binary_that_is_utf8_still_refuses_text() {
        let secret = Secret::new(SecretValue::binary(b"plain".to_vec()), Metadata::default());
        assert_eq!(secret.expose_str().unwrap_err().class(), ErrorClass::NotText);
    }

    #[test]
    fn detect_picks_encoding() {
        assert_eq!(SecretValue::detect(b"abc".to_vec()).encoding(), Encoding::Text);
        assert_eq!(SecretValue::detect(vec![0xff, 0xfe]).encoding(), Encoding::Binary);
    }

    #[test]
    fn field_selection_keeps_metadata() {
        let secret = text_secret(r#"{"user":"app","port":5432}"#);
        let port = secret.field("port").unwrap();
        assert_eq!(port.expose_str().unwrap(), "5432");
        assert_eq!(port.metadata().field.as_deref(), Some("port"));
        assert_eq!(port.metadata().reference, "env://TOKEN");
    }

    #[test]
    fn spare_capacity_keeps_exact_bytes() {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(b"short");
        let value = SecretValue::binary(bytes);
        assert_eq!(value.expose_bytes(), b"short");
    }

    #[test]
    fn value_debug_is_redacted() {
        let value = SecretValue::text(CANARY.into());
        assert!(!format!("{value:?}").contains(CANARY));
    }
}
