//! The one error type keystead returns, and the classes every binding maps
//! to its own exceptions or error codes.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The class of an [`Error`]: what went wrong, in terms a caller can act on.
///
/// The classes are stable across the Rust, Python, Node and Go APIs: each
/// binding maps every class to one exception type or error code.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The reference string does not follow the `SCHEME://PATH[?QUERY][#FIELD]`
    /// grammar, names an unknown scheme, or carries a query key its provider
    /// does not accept.
    InvalidReference,
    /// The configuration file or a configuration value is invalid.
    Config,
    /// The backend has no secret, version or stage by that name.
    NotFound,
    /// The backend rejected the caller's credentials or permissions.
    AccessDenied,
    /// The secret exists but is deleted, scheduled for deletion or destroyed.
    SecretDeleted,
    /// The backend could not decrypt the value, usually because the caller
    /// may not use the KMS key that protects it.
    DecryptionFailed,
    /// The backend could not be reached or responded with a transient failure
    /// (timeout, connection error, 5xx, throttling). Retrying later may work.
    Unavailable,
    /// Text was requested from a secret whose value is binary.
    NotText,
    /// A `#field` selector named a field the JSON value does not contain, or
    /// whose value is `null`.
    FieldNotFound,
    /// A `#field` selector was applied to a value that is not a JSON object
    /// or array.
    InvalidJson,
    /// The client was closed.
    Closed,
    /// A bug in keystead or an unexpected response from a backend.
    Internal,
}

impl ErrorClass {
    /// Every class, in a fixed order that metrics and bindings index by.
    pub const ALL: [ErrorClass; 12] = [
        ErrorClass::InvalidReference,
        ErrorClass::Config,
        ErrorClass::NotFound,
        ErrorClass::AccessDenied,
        ErrorClass::SecretDeleted,
        ErrorClass::DecryptionFailed,
        ErrorClass::Unavailable,
        ErrorClass::NotText,
        ErrorClass::FieldNotFound,
        ErrorClass::InvalidJson,
        ErrorClass::Closed,
        ErrorClass::Internal,
    ];

    /// Returns the stable kebab-case name used in logs, metrics, CLI output and the
    /// conformance case file.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidReference => "invalid-reference",
            ErrorClass::Config => "config",
            ErrorClass::NotFound => "not-found",
            ErrorClass::AccessDenied => "access-denied",
            ErrorClass::SecretDeleted => "secret-deleted",
            ErrorClass::DecryptionFailed => "decryption-failed",
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::NotText => "not-text",
            ErrorClass::FieldNotFound => "field-not-found",
            ErrorClass::InvalidJson => "invalid-json",
            ErrorClass::Closed => "closed",
            ErrorClass::Internal => "internal",
        }
    }

    /// Parses a name produced by [`ErrorClass::as_str`].
    pub fn from_name(name: &str) -> Option<ErrorClass> {
        ErrorClass::ALL.into_iter().find(|class| class.as_str() == name)
    }

    /// Position of this class in [`ErrorClass::ALL`].
    pub(crate) fn index(self) -> usize {
        ErrorClass::ALL
            .iter()
            .position(|class| *class == self)
            .unwrap_or(ErrorClass::ALL.len() - 1)
    }

    /// Returns whether a later attempt may succeed without anything
    /// changing on the backend. The cache keeps serving the last good value after such an
    /// error, and drops it after any other backend error so that a
    /// revocation takes effect.
    pub const fn is_transient(self) -> bool {
        matches!(self, ErrorClass::Unavailable)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from keystead: a class, the reference it concerns, and a message
/// for an operator.
///
/// Messages never contain a secret value. They may contain a reference, a
/// field name, a backend's error code and the backend's own message text.
/// Cloning is cheap, because one load's error is handed to every caller that
/// waited on that load.
#[derive(Clone)]
pub struct Error {
    inner: Arc<ErrorInner>,
}

struct ErrorInner {
    class: ErrorClass,
    reference: Option<String>,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    /// Creates an error of `class` with an operator-facing `message`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Error {
        Error {
            inner: Arc::new(ErrorInner {
                class,
                reference: None,
                message: printable(&message.into()),
                source: None,
            }),
        }
    }

    /// Creates an error that keeps `source` as its cause.
    pub fn with_source(
        class: ErrorClass,
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Error {
        Error {
            inner: Arc::new(ErrorInner {
                class,
                reference: None,
                message: printable(&message.into()),
                source: Some(Box::new(source)),
            }),
        }
    }

    pub(crate) fn invalid_reference(message: impl Into<String>) -> Error {
        Error::new(ErrorClass::InvalidReference, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorClass::Config, message)
    }

    pub(crate) fn closed() -> Error {
        Error::new(ErrorClass::Closed, "the client is closed")
    }

    /// Returns this error naming `reference`, unless it already names one.
    pub fn for_reference(self, reference: &str) -> Error {
        if self.inner.reference.is_some() || reference.is_empty() {
            return self;
        }
        let reference = printable(reference);
        let reference = reference.as_str();
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.reference = Some(reference.to_owned());
                inner
            }
            Err(shared) => ErrorInner {
                class: shared.class,
                reference: Some(reference.to_owned()),
                message: shared.message.clone(),
                source: None,
            },
        };
        Error {
            inner: Arc::new(inner),
        }
    }

    /// Returns the class of this error.
    pub fn class(&self) -> ErrorClass {
        self.inner.class
    }

    /// Returns the reference this error concerns, when there is one.
    pub fn reference(&self) -> Option<&str> {
        self.inner.reference.as_deref()
    }

    /// Returns the operator-facing message, without the reference and class.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Returns whether retrying later may succeed. See [`ErrorClass::is_transient`].
    pub fn is_transient(&self) -> bool {
        self.inner.class.is_transient()
    }
}

/// Maximum length of an error's message or reference, in characters. Longer
/// input (a megabyte-long reference, a server's HTML error page) is cut,
/// so one error stays one readable log line.
const MAX_ERROR_TEXT_CHARS: usize = 1000;

/// Escapes control characters, so that text decoded from a reference or
/// sent by a server cannot start a new log line or a terminal escape, and
/// cuts it to [`MAX_ERROR_TEXT_CHARS`].
fn printable(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT_CHARS && !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().min(MAX_ERROR_TEXT_CHARS + 8));
    for (count, character) in text.chars().enumerate() {
        if count == MAX_ERROR_TEXT_CHARS {
            out.push_str("...");
            break;
        }
        if character.is_control() {
            out.extend(character.escape_default());
        } else {
            out.push(character);
        }
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(reference) = &self.inner.reference {
            write!(f, "{reference}: ")?;
        }
        write!(f, "{}: {}", self.inner.class, self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("class", &self.inner.class)
            .field("reference", &self.inner.reference)
            .field("message", &self.inner.message)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::from_name(class.as_str()), Some(class));
        }
    }

    #[test]
    fn class_index_matches_position() {
        for (position, class) in ErrorClass::ALL.into_iter().enumerate() {
            assert_eq!(class.index(), position);
        }
    }

    #[test]
    fn display_names_reference_and_class() {
        let error = Error::new(ErrorClass::NotFound, "no such secret").for_reference("env://X");
        assert_eq!(error.to_string(), "env://X: not-found: no such secret");
    }

    #[test]
    fn control_characters_are_escaped() {
        let error = Error::new(ErrorClass::NotFound, "variable A\nFORGED \u{1b}[31m is not set").for_reference("env://A%0A");
        let text = error.to_string();
        assert_eq!(text, "env://A%0A: not-found: variable A\\nFORGED \\u{1b}[31m is not set");
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(5000);
        let error = Error::new(ErrorClass::NotFound, long.clone()).for_reference(&long);
        assert_eq!(error.message().chars().count(), MAX_ERROR_TEXT_CHARS + 3);
        assert!(error.reference().unwrap().ends_with("..."));
    }

    #[test]
    fn empty_reference_is_not_named() {
        let error = Error::new(ErrorClass::InvalidReference, "the reference is empty").for_reference("");
        assert_eq!(error.to_string(), "invalid-reference: the reference is empty");
    }

    #[test]
    fn only_unavailable_is_transient() {
        let transient: Vec<_> = ErrorClass::ALL
            .into_iter()
            .filter(|class| class.is_transient())
            .collect();
        assert_eq!(transient, vec![ErrorClass::Unavailable]);
    }
}
