//! `#field` selection on JSON values.
//!
//! Selection walks the cached bytes with borrowed `RawValue`s, so the only
//! copy of the selected value is the zeroizing buffer returned to the caller.

use std::borrow::Cow;
use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use serde_json::value::RawValue;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorClass};
use crate::secret::SecretValue;

/// A parsed dot path such as `db.hosts.0`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FieldPath {
    source: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a dot path. Segments are split on `.` and then percent-decoded.
    pub(crate) fn parse(source: &str) -> Result<FieldPath, Error> {
        if source.is_empty() {
            return Err(Error::invalid_reference(
                "the field selector after '#' is empty",
            ));
        }
        let mut segments = Vec::new();
        for raw in source.split('.') {
            if raw.is_empty() {
                return Err(Error::invalid_reference(format!(
                    "field selector `{source}` has an empty segment; write a literal dot in a key as %2E"
                )));
            }
            let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| {
                Error::invalid_reference(format!(
                    "field selector `{source}` is not valid UTF-8 after percent-decoding"
                ))
            })?;
            segments.push(decoded.into_owned());
        }
        Ok(FieldPath {
            source: source.to_owned(),
            segments,
        })
    }

    /// The path as written, still percent-encoded.
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }
}

/// Selects `path` from the JSON document in `document`.
pub(crate) fn select(document: &[u8], path: &FieldPath) -> Result<SecretValue, Error> {
    let not_json = || {
        Error::new(
            ErrorClass::InvalidJson,
            format!(
                "cannot select field `{}`: the value is not a JSON object or array",
                path.source
            ),
        )
    };
    let mut current: &RawValue = serde_json::from_slice(document).map_err(|_| not_json())?;

    for (depth, segment) in path.segments.iter().enumerate() {
        let text = current.get();
        let walked = || path.segments[..=depth].join(".");
        let next = match text.as_bytes().first() {
            Some(b'{') => {
                let object: HashMap<Cow<'_, str>, &RawValue> =
                    serde_json::from_str(text).map_err(|_| not_json())?;
                object.get(segment.as_str()).copied()
            }
            Some(b'[') => {
                let array: Vec<&RawValue> = serde_json::from_str(text).map_err(|_| not_json())?;
                segment.parse::<usize>().ok().and_then(|index| array.get(index).copied())
            }
            _ if depth == 0 => return Err(not_json()),
            _ => None,
        };
        current = next.ok_or_else(|| {
            Error::new(
                ErrorClass::FieldNotFound,
                format!("the JSON value has no field `{}`", walked()),
            )
        })?;
    }

    leaf_value(current, path)
}

fn leaf_value(raw: &RawValue, path: &FieldPath) -> Result<SecretValue, Error> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let decoded: Cow<'_, str> = serde_json::from_str(text).map_err(|_| {
                Error::new(ErrorClass::InvalidJson, "the selected string is not valid JSON")
            })?;
            // Limitation: when the string holds escapes, serde_json unescapes
            // it through an internal scratch buffer that keystead cannot wipe.
            let value = match decoded {
                Cow::Borrowed(borrowed) => borrowed.to_owned(),
                Cow::Owned(owned) => owned,
            };
            Ok(SecretValue::text(value))
        }
        Some(b'n') => Err(Error::new(
            ErrorClass::FieldNotFound,
            format!("field `{}` is null", path.source),
        )),
        _ => Ok(SecretValue::text(compact(text))),
    }
}

/// Copies a JSON text without insignificant whitespace. The buffer is sized
/// up front so that no reallocation leaves a stray copy behind.
fn compact(text: &str) -> String {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text.as_bytes() {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => {
                in_string = true;
                out.push(byte);
            }
            _ => out.push(byte),
        }
    }
    let bytes = std::mem::take(&mut *out);
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            // Unreachable for text that came from a &str, but never leave
            // the bytes behind if it happens.
            let mut bytes = error.into_bytes();
            bytes.zeroize();
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(document: &str, path: &str) -> Result<String, Error> {
        let path = FieldPath::parse(path)?;
        let value = select(document.as_bytes(), &path)?;
        Ok(String::from_utf8(value.expose_bytes().to_vec()).unwrap())
    }

    #[test]
    fn string_field_is_unquoted() {
        assert_eq!(pick(r#"{"password":"s3cr\"et"}"#, "password").unwrap(), "s3cr\"et");
    }

    #[test]
    fn nested_path_and_array_index() {
        let document = r#"{"db": {"hosts": ["a", "b"], "port": 5432}}"#;
        assert_eq!(pick(document, "db.hosts.1").unwrap(), "b");
        assert_eq!(pick(document, "db.port").unwrap(), "5432");
    }

    #[test]
    fn non_string_values_are_compact_json() {
        let document = r#"{"flag": true, "limits": { "max" : 3, "names": [ "x y" , 2 ] }}"#;
        assert_eq!(pick(document, "flag").unwrap(), "true");
        assert_eq!(pick(document, "limits").unwrap(), r#"{"max":3,"names":["x y",2]}"#);
    }

    #[test]
    fn missing_field_names_the_path() {
        let error = pick(r#"{"db": {"user": "app"}}"#, "db.password").unwrap_err();
        assert_eq!(error.class(), ErrorClass::FieldNotFound);
        assert!(error.message().contains("db.password"), "{}", error.message());
    }

    #[test]
    fn null_field_is_an_error_not_text() {
        let error = pick(r#"{"token": null}"#, "token").unwrap_err();
        assert_eq!(error.class(), ErrorClass::FieldNotFound);
    }

    #[test]
    fn plain_text_is_not_json() {
        let error = pick("just-a-password", "user").unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidJson);
    }

    #[test]
    fn scalar_document_is_not_json_container() {
        let error = pick("42", "user").unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidJson);
    }

    #[test]
    fn escaped_dot_selects_dotted_key() {
        assert_eq!(pick(r#"{"a.b": "dotted", "a": {"b": "nested"}}"#, "a%2Eb").unwrap(), "dotted");
    }

    #[test]
    fn empty_segment_is_rejected() {
        let error = FieldPath::parse("a..b").unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidReference);
    }

    #[test]
    fn index_on_object_is_not_found() {
        let error = pick(r#"{"a": "x"}"#, "a.0").unwrap_err();
        assert_eq!(error.class(), ErrorClass::FieldNotFound);
    }
}
