//! Decoding of JSON string literals that carry secrets.
//!
//! Response structs borrow secret fields as `&RawValue`, so serde_json never
//! allocates a copy of them. [`decode_string`] then unescapes the text into
//! the `String` that becomes the secret's storage, wiping any intermediate
//! buffer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorClass};
use crate::provider::aws::wipe;

/// Decodes a JSON string literal, quotes included, into a new `String`
/// with no spare capacity. The decoding buffer is allocated once at its
/// final size bound, and wiped if escapes made the text shorter.
///
/// # Errors
/// [`ErrorClass::Internal`] naming `field` when the literal is not a valid
/// JSON string. The message never contains the literal.
pub(crate) fn decode_string(raw: &RawValue, field: &str) -> Result<String, Error> {
    let invalid = |problem: &str| {
        Error::new(
            ErrorClass::Internal,
            format!("the AWS response field {field} is not a valid JSON string: {problem}"),
        )
    };

    let literal = raw.get();
    let Some(inner) = literal
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Err(invalid("expected a string"));
    };

    // Unescaping never makes text longer, so this capacity is never
    // exceeded and the buffer is never reallocated (a reallocation would
    // leave an unwiped copy behind).
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match chars.next() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => decode_unicode_escape(&mut chars).ok_or_else(|| invalid("bad \\u escape"))?,
            _ => return Err(invalid("bad escape")),
        };
        out.push(escaped);
    }
    Ok(wipe::exact_text(out))
}

/// Decodes a JSON string literal into a buffer that is wiped on drop, for
/// values that are decoded further (base64) before they are stored.
pub(crate) fn decode_string_zeroizing(raw: &RawValue, field: &str) -> Result<Zeroizing<String>, Error> {
    decode_string(raw, field).map(Zeroizing::new)
}

/// Parses a 2xx response body. `what` names the call in errors.
///
/// # Errors
/// [`ErrorClass::Internal`] with the line and column of the problem. The
/// message leaves out serde_json's own text, which can quote the
/// offending value.
pub(crate) fn parse_response<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|error| {
        Error::new(
            ErrorClass::Internal,
            format!(
                "{what} returned a response that is not the expected JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
        )
    })
}

/// Converts AWS's epoch-seconds timestamps (`1523477145.713`) to a
/// `SystemTime`; `None` for values that are negative or not finite.
pub(crate) fn epoch_seconds(seconds: f64) -> Option<SystemTime> {
    let since_epoch = Duration::try_from_secs_f64(seconds).ok()?;
    UNIX_EPOCH.checked_add(since_epoch)
}

/// Reads the four hex digits after `\u`, and a following low surrogate
/// escape when the first one is a high surrogate.
fn decode_unicode_escape(chars: &mut std::str::Chars<'_>) -> Option<char> {
    let first = read_hex4(chars)?;
    if !(0xD800..0xDC00).contains(&first) {
        return char::from_u32(first);
    }
    if chars.next() != Some('\\') || chars.next() != Some('u') {
        return None;
    }
    let second = read_hex4(chars)?;
    if !(0xDC00..0xE000).contains(&second) {
        return None;
    }
    char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
}

fn read_hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut value = 0;
    for _ in 0..4 {
        value = value * 16 + chars.next()?.to_digit(16)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(literal: &str) -> Box<RawValue> {
        RawValue::from_string(literal.to_owned()).unwrap()
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(decode_string(&raw("\"hunter2\""), "SecretString").unwrap(), "hunter2");
    }

    #[test]
    fn escapes_are_decoded() {
        let decoded = decode_string(&raw(r#""{\"user\":\"a\\b\"}\n\t\/""#), "SecretString").unwrap();
        assert_eq!(decoded, "{\"user\":\"a\\b\"}\n\t/");
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs_are_decoded() {
        let decoded = decode_string(&raw(r#""\u00e9\ud83d\ude00x""#), "SecretString").unwrap();
        assert_eq!(decoded, "é😀x");
    }

    #[test]
    fn lone_surrogate_is_rejected() {
        let error = decode_string(&raw(r#""\ud83dx""#), "SecretString").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Internal);
    }

    #[test]
    fn non_string_is_rejected_without_echoing_it() {
        let error = decode_string(&raw("12345678"), "SecretString").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Internal);
        assert!(!error.message().contains("12345678"), "{}", error.message());
    }

    #[test]
    fn epoch_seconds_keep_fraction() {
        assert_eq!(
            epoch_seconds(1_523_477_145.5),
            Some(UNIX_EPOCH + Duration::from_millis(1_523_477_145_500))
        );
        assert_eq!(epoch_seconds(-1.0), None);
        assert_eq!(epoch_seconds(f64::NAN), None);
    }

    #[test]
    fn parse_error_hides_the_offending_value() {
        #[derive(Debug, Deserialize)]
        struct Shape {
            #[allow(dead_code)]
            count: u32,
        }
        let error = parse_response::<Shape>(br#"{"count": "leaked-canary"}"#, "GetSecretValue").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Internal);
        assert!(!error.message().contains("leaked-canary"), "{}", error.message());
        assert!(error.message().contains("line 1"), "{}", error.message());
    }

    #[test]
    fn decoded_text_has_no_spare_capacity() {
        let decoded = decode_string(&raw(r#""\u0041\u0042""#), "SecretString").unwrap();
        assert_eq!(decoded, "AB");
        assert_eq!(decoded.capacity(), 2);
    }
}
