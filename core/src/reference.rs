//! References: the one syntax callers use to name a secret on any backend.
//!
//! ```text
//! SCHEME://PATH[?QUERY][#FIELD]
//! ```
//!
//! * `SCHEME` picks the provider (`aws-sm`, `aws-ssm`, `env`, `file`, ...).
//! * `PATH` is everything up to the first `?` or `#`, percent-decoded. A
//!   literal `?`, `#` or `%` in a name is written `%3F`, `%23` or `%25`.
//! * `QUERY` is `key=value` pairs joined by `&`, percent-decoded. Which keys
//!   a provider accepts is checked by that provider.
//! * `FIELD` is a dot path into a JSON value (`#db.password`).
//!
//! Whitespace and control characters must be percent-encoded, so that a
//! reference copied from a config file with a stray newline is rejected
//! instead of naming a different secret.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::error::Error;
use crate::field::FieldPath;

/// Characters that are escaped when a path is written back out: the
/// delimiters of the grammar, `%` itself, and whitespace.
const PATH_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'?').add(b'#');

/// Characters that are escaped in query keys and values.
const QUERY_ESCAPES: &AsciiSet = &PATH_ESCAPES.add(b'&').add(b'=');

/// A parsed reference.
///
/// ```
/// use keystead::Reference;
/// let reference: Reference = "aws-sm://prod/db?version_stage=AWSPREVIOUS#password".parse().unwrap();
/// assert_eq!(reference.scheme(), "aws-sm");
/// assert_eq!(reference.path(), "prod/db");
/// assert_eq!(reference.query("version_stage"), Some("AWSPREVIOUS"));
/// assert_eq!(reference.field(), Some("password"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    scheme: String,
    path: String,
    query: Vec<(String, String)>,
    field: Option<FieldPath>,
}

impl Reference {
    /// Parses a reference string.
    ///
    /// # Errors
    /// [`crate::ErrorClass::InvalidReference`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Reference, Error> {
        parse(text).map_err(|error| error.for_reference(&printable(text)))
    }

    /// Builds a reference from parts that are already decoded.
    pub fn from_parts(scheme: &str, path: &str, query: &[(&str, &str)]) -> Reference {
        let mut query: Vec<(String, String)> = query
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        query.sort();
        Reference {
            scheme: scheme.to_owned(),
            path: path.to_owned(),
            query,
            field: None,
        }
    }

    /// The scheme, lower case, without `://`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The decoded path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The decoded value of a query key.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// All query pairs, sorted by key.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The field selector as written after `#`, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_ref().map(FieldPath::as_str)
    }

    pub(crate) fn field_path(&self) -> Option<&FieldPath> {
        self.field.as_ref()
    }

    /// This reference without its field selector.
    pub fn without_field(&self) -> Reference {
        Reference {
            field: None,
            ..self.clone()
        }
    }

    /// This reference with one query key set to `value`, replacing any
    /// earlier value.
    pub fn with_query(&self, key: &str, value: &str) -> Reference {
        let mut copy = self.clone();
        copy.query.retain(|(name, _)| name != key);
        copy.query.push((key.to_owned(), value.to_owned()));
        copy.query.sort();
        copy
    }

    /// Rejects every query key not in `allowed`, naming the first one.
    pub fn check_query_keys(&self, allowed: &[&str]) -> Result<(), Error> {
        for (key, _) in &self.query {
            if !allowed.contains(&key.as_str()) {
                let expected = if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(Error::invalid_reference(format!(
                    "unknown query key `{key}` for {}:// references (accepted: {expected})",
                    self.scheme
                ))
                .for_reference(&self.to_string()));
            }
        }
        Ok(())
    }

    /// The canonical form without the field: the cache key before a
    /// provider adds its defaults.
    pub fn canonical(&self) -> String {
        let mut out = format!("{}://{}", self.scheme, utf8_percent_encode(&self.path, PATH_ESCAPES));
        for (index, (key, value)) in self.query.iter().enumerate() {
            out.push(if index == 0 { '?' } else { '&' });
            out.extend(utf8_percent_encode(key, QUERY_ESCAPES));
            out.push('=');
            out.extend(utf8_percent_encode(value, QUERY_ESCAPES));
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())?;
        if let Some(field) = &self.field {
            write!(f, "#{}", field.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(text: &str) -> Result<Reference, Error> {
        Reference::parse(text)
    }
}

fn parse(text: &str) -> Result<Reference, Error> {
    if text.is_empty() {
        return Err(Error::invalid_reference("the reference is empty"));
    }
    if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_reference(format!(
            "the reference contains the character {bad:?}; percent-encode whitespace and control characters"
        )));
    }

    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(Error::invalid_reference(
            "expected SCHEME://PATH, for example aws-sm://prod/db or env://API_TOKEN",
        ));
    };
    let scheme = parse_scheme(scheme)?;

    let (before_field, field) = match rest.split_once('#') {
        Some((before, field)) => (before, Some(FieldPath::parse(field)?)),
        None => (rest, None),
    };
    let (raw_path, raw_query) = match before_field.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_field, None),
    };

    if raw_path.is_empty() {
        return Err(Error::invalid_reference(format!(
            "the path after {scheme}:// is empty"
        )));
    }
    let path = decode("path", raw_path)?;
    let query = match raw_query {
        Some(raw) => parse_query(raw)?,
        None => Vec::new(),
    };

    Ok(Reference {
        scheme,
        path,
        query,
        field,
    })
}

fn parse_scheme(scheme: &str) -> Result<String, Error> {
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
    if !valid {
        return Err(Error::invalid_reference(format!(
            "`{scheme}` is not a valid scheme; expected letters, digits, '-', '+' or '.'"
        )));
    }
    Ok(scheme.to_ascii_lowercase())
}

fn parse_query(raw: &str) -> Result<Vec<(String, String)>, Error> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if raw.is_empty() {
        return Ok(pairs);
    }
    for part in raw.split('&') {
        let Some((key, value)) = part.split_once('=') else {
            return Err(Error::invalid_reference(format!(
                "query part `{part}` is not KEY=VALUE"
            )));
        };
        let key = decode("query key", key)?;
        let value = decode("query value", value)?;
        if key.is_empty() {
            return Err(Error::invalid_reference("a query key is empty"));
        }
        if pairs.iter().any(|(existing, _)| *existing == key) {
            return Err(Error::invalid_reference(format!(
                "query key `{key}` appears more than once"
            )));
        }
        pairs.push((key, value));
    }
    pairs.sort();
    Ok(pairs)
}

fn decode(what: &str, raw: &str) -> Result<String, Error> {
    let bytes = raw.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'%' {
            let hex = bytes.get(index + 1..index + 3);
            if !hex.is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit)) {
                return Err(Error::invalid_reference(format!(
                    "the {what} has a '%' that is not followed by two hex digits; write a literal '%' as %25"
                )));
            }
        }
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| {
            Error::invalid_reference(format!("the {what} is not valid UTF-8 after percent-decoding"))
        })
}

/// A reference as it may appear in an error: control characters escaped so
/// that a log line stays one line.
fn printable(text: &str) -> String {
    const MAX_CHARS: usize = 256;
    let mut out: String = text.chars().take(MAX_CHARS).flat_map(char::escape_debug).collect();
    if text.chars().count() > MAX_CHARS {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn parses_every_part() {
        let reference = Reference::parse("aws-sm://prod/db?version_id=abc#creds.password").unwrap();
        assert_eq!(reference.scheme(), "aws-sm");
        assert_eq!(reference.path(), "prod/db");
        assert_eq!(reference.query("version_id"), Some("abc"));
        assert_eq!(reference.field(), Some("creds.password"));
    }

    #[test]
    fn triple_slash_keeps_leading_slash() {
        let reference = Reference::parse("aws-ssm:///app/db").unwrap();
        assert_eq!(reference.path(), "/app/db");
        assert_eq!(reference.canonical(), "aws-ssm:///app/db");
    }

    #[test]
    fn percent_encoding_escapes_delimiters() {
        let reference = Reference::parse("env://A%23B%3FC%25").unwrap();
        assert_eq!(reference.path(), "A#B?C%");
        assert_eq!(reference.canonical(), "env://A%23B%3FC%25");
        assert_eq!(Reference::parse(&reference.canonical()).unwrap(), reference);
    }

    #[test]
    fn query_is_sorted_in_canonical_form() {
        let first = Reference::parse("x://p?b=2&a=1").unwrap();
        let second = Reference::parse("x://p?a=1&b=2").unwrap();
        assert_eq!(first.canonical(), "x://p?a=1&b=2");
        assert_eq!(first, second);
    }

    #[test]
    fn scheme_is_lower_cased() {
        assert_eq!(Reference::parse("ENV://HOME").unwrap().scheme(), "env");
    }

    #[test]
    fn rejects_malformed_input() {
        let cases = [
            "",
            "prod/db",
            "aws-sm:/prod/db",
            "aws-sm://",
            "aws-sm://?version_id=1",
            "1aws://x",
            "aws sm://x",
            "aws-sm://a b",
            "aws-sm://a\nb",
            "aws-sm://x?version_id",
            "aws-sm://x?a=1&a=2",
            "aws-sm://x?=1",
            "aws-sm://x#",
            "aws-sm://x#a..b",
            "aws-sm://bad%zz",
            "aws-sm://bad%",
            "aws-sm://%ff%fe",
        ];
        for case in cases {
            let error = Reference::parse(case).unwrap_err();
            assert_eq!(error.class(), ErrorClass::InvalidReference, "{case:?}");
        }
    }

    #[test]
    fn error_escapes_control_characters() {
        let error = Reference::parse("env://a\nb").unwrap_err();
        assert!(!error.to_string().contains('\n'), "{error}");
    }

    #[test]
    fn unknown_query_key_is_named() {
        let reference = Reference::parse("env://X?verison=1").unwrap();
        let error = reference.check_query_keys(&[]).unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidReference);
        assert!(error.message().contains("verison"), "{}", error.message());
    }

    #[test]
    fn display_includes_field() {
        let reference = Reference::parse("aws-sm://a#b").unwrap();
        assert_eq!(reference.to_string(), "aws-sm://a#b");
        assert_eq!(reference.without_field().to_string(), "aws-sm://a");
    }
}
