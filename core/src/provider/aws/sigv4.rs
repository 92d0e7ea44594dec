//! AWS Signature Version 4 over HMAC-SHA256.
//!
//! This module depends on nothing else in keystead (only std, `hmac`,
//! `sha2`, `hex`, `humantime` and `zeroize`), so that the moto test harness
//! can sign its seeding calls with the same code it tests.
//!
//! The algorithm follows the SigV4 specification: build a canonical request,
//! hash it into a string to sign, derive a signing key from the secret key,
//! date, region and service, and sign. Paths are URI-encoded once more on
//! top of their HTTP encoding, as every AWS service except S3 expects.

use std::fmt::Write as _;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The algorithm name that starts the `Authorization` header and the
/// string to sign.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credentials and scope a request is signed with.
pub(crate) struct SigningParams<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    pub(crate) region: &'a str,
    /// The signing name of the service, for example `secretsmanager`.
    pub(crate) service: &'a str,
    pub(crate) time: SystemTime,
}

/// The parts of an HTTP request that SigV4 covers.
pub(crate) struct RequestToSign<'a> {
    pub(crate) method: &'a str,
    /// The path as it is sent on the wire (already percent-encoded once).
    pub(crate) path: &'a str,
    /// Decoded query pairs, in any order.
    pub(crate) query: &'a [(&'a str, &'a str)],
    /// Every header to sign, `host` and `x-amz-date` included. Names may be
    /// in any case.
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: &'a [u8],
}

/// The result of signing: the `Authorization` header value and the pieces
/// tests compare against published vectors.
// Only `authorization` is sent; the other fields exist for the test-vector
// checks.
#[allow(dead_code)]
pub(crate) struct Signature {
    pub(crate) authorization: String,
    pub(crate) canonical_request: String,
    pub(crate) string_to_sign: String,
    pub(crate) signature: String,
}

/// Formats a time as SigV4's `X-Amz-Date` value, `YYYYMMDDTHHMMSSZ`.
pub(crate) fn amz_date(time: SystemTime) -> String {
    // humantime prints `YYYY-MM-DDTHH:MM:SSZ`; SigV4 wants the basic ISO 8601
    // form of the same instant, which is that text without `-` and `:`.
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// Signs a request.
///
/// The caller must already have put the `x-amz-date` header (from
/// [`amz_date`] of `params.time`) and, for temporary credentials, the
/// `x-amz-security-token` header into `request.headers`, so that both are
/// signed.
pub(crate) fn sign(request: &RequestToSign<'_>, params: &SigningParams<'_>) -> Signature {
    let date_time = amz_date(params.time);
    let date = &date_time[..8];
    let scope = format!("{date}/{}/{}/aws4_request", params.region, params.service);

    let (canonical_headers, signed_headers) = canonical_headers(request.headers);
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query),
        canonical_headers,
        signed_headers,
        hex::encode(Sha256::digest(request.body)),
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{date_time}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );

    let key = signing_key(params.secret_access_key, date, params.region, params.service);
    let signature = hex::encode(hmac(&key[..], string_to_sign.as_bytes()).as_slice());
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        params.access_key_id
    );

    Signature {
        authorization,
        canonical_request,
        string_to_sign,
        signature,
    }
}

/// Derives the signing key for one day, region and service. Every
/// intermediate key is wiped when dropped, because each one is enough to
/// sign requests for a day.
pub(crate) fn signing_key(
    secret_access_key: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Zeroizing<[u8; 32]> {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret_access_key.as_bytes());

    let date_key = hmac(&seed, date.as_bytes());
    let region_key = hmac(&date_key[..], region.as_bytes());
    let service_key = hmac(&region_key[..], service.as_bytes());
    hmac(&service_key[..], b"aws4_request")
}

fn hmac(key: &[u8], message: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(message);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// URI-encodes every byte except the unreserved characters of RFC 3986,
/// keeping `/` when `keep_slash` is set.
fn uri_encode(text: &str, keep_slash: bool, out: &mut String) {
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len());
    uri_encode(path, true, &mut out);
    out
}

fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(key, value)| {
            let mut encoded_key = String::new();
            let mut encoded_value = String::new();
            uri_encode(key, false, &mut encoded_key);
            uri_encode(value, false, &mut encoded_value);
            (encoded_key, encoded_value)
        })
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    joined.join("&")
}

/// Returns the canonical header block (each line ending in `\n`) and the
/// signed header list. Names are lower-cased; values are trimmed and runs
/// of spaces inside them collapse to one; repeated names join with commas.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut normalized: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), collapse_spaces(value)))
        .collect();
    // A stable sort keeps repeated headers in the order they were given,
    // which is the order their values must be joined in.
    normalized.sort_by(|left, right| left.0.cmp(&right.0));

    let mut merged: Vec<(String, String)> = Vec::with_capacity(normalized.len());
    for (name, value) in normalized {
        match merged.last_mut() {
            Some((last_name, last_value)) if *last_name == name => {
                last_value.push(',');
                last_value.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }

    let mut block = String::new();
    for (name, value) in &merged {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
    }
    let signed: Vec<&str> = merged.iter().map(|(name, _)| name.as_str()).collect();
    (block, signed.join(";"))
}

fn collapse_spaces(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(' ').filter(|word| !word.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    // Credentials, scope and time shared by every case of the AWS SigV4 test
    // suite (aws-sig-v4-test-suite, as vendored by the AWS SDKs).
    const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
    const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE_DATE: &str = "20150830T123600Z";
    const SUITE_HOST: &str = "example.amazonaws.com";
    const SUITE_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    /// 2015-08-30T12:36:00Z.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_params() -> SigningParams<'static> {
        SigningParams {
            access_key_id: ACCESS_KEY_ID,
            secret_access_key: SECRET_ACCESS_KEY,
            region: "us-east-1",
            service: "service",
            time: suite_time(),
        }
    }

    fn sign_suite_case(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra_headers: &[(&str, &str)],
        body: &[u8],
    ) -> Signature {
        let mut headers = vec![("Host", SUITE_HOST), ("X-Amz-Date", SUITE_DATE)];
        headers.extend_from_slice(extra_headers);
        let request = RequestToSign {
            method,
            path,
            query,
            headers: &headers,
            body,
        };
        sign(&request, &suite_params())
    }

    fn expected_authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn amz_date_is_basic_iso8601() {
        assert_eq!(amz_date(suite_time()), SUITE_DATE);
    }

    #[test]
    fn signing_key_matches_documented_example() {
        // The signing-key walkthrough in the SigV4 documentation (IAM, us-east-1).
        let key = signing_key(SECRET_ACCESS_KEY, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex::encode(&key[..]),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn get_vanilla_matches_suite() {
        let signed = sign_suite_case("GET", "/", &[], &[], b"");
        assert_eq!(
            signed.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            signed.authorization,
            expected_authorization(
                "host;x-amz-date",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn post_vanilla_matches_suite() {
        let signed = sign_suite_case("POST", "/", &[], &[], b"");
        assert_eq!(
            signed.signature,
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn query_order_is_canonicalized() {
        let signed = sign_suite_case("GET", "/", &[("Param2", "value2"), ("Param1", "value1")], &[], b"");
        assert_eq!(
            signed.signature,
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn unreserved_query_characters_stay_literal() {
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let signed = sign_suite_case("GET", "/", &[(unreserved, unreserved)], &[], b"");
        assert_eq!(
            signed.signature,
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        );
    }

    #[test]
    fn utf8_query_key_is_percent_encoded() {
        let signed = sign_suite_case("GET", "/", &[("\u{1234}", "bar")], &[], b"");
        assert_eq!(
            signed.signature,
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
        );
    }

    #[test]
    fn utf8_path_is_percent_encoded() {
        let signed = sign_suite_case("GET", "/\u{1234}", &[], &[], b"");
        assert!(signed.canonical_request.starts_with("GET\n/%E1%88%B4\n"), "{}", signed.canonical_request);
        assert_eq!(
            signed.signature,
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let signed = sign_suite_case(
            "GET",
            "/",
            &[],
            &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            b"",
        );
        assert!(signed.canonical_request.contains("\nmy-header2:\"a b c\"\n"), "{}", signed.canonical_request);
        assert_eq!(
            signed.authorization,
            expected_authorization(
                "host;my-header1;my-header2;x-amz-date",
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
            )
        );
    }

    #[test]
    fn header_names_are_lower_cased_and_sorted() {
        let signed = sign_suite_case("POST", "/", &[], &[("My-Header1", "VALUE1")], b"");
        assert_eq!(
            signed.authorization,
            expected_authorization(
                "host;my-header1;x-amz-date",
                "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"
            )
        );
    }

    #[test]
    fn form_body_is_hashed() {
        let signed = sign_suite_case(
            "POST",
            "/",
            &[],
            &[("Content-Type", "application/x-www-form-urlencoded; charset=utf8")],
            b"Param1=value1",
        );
        assert!(
            signed
                .canonical_request
                .ends_with("\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
            "{}",
            signed.canonical_request
        );
        assert_eq!(
            signed.authorization,
            expected_authorization(
                "content-type;host;x-amz-date",
                "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"
            )
        );
    }

    #[test]
    fn session_token_header_is_signed() {
        let signed = sign_suite_case("POST", "/", &[], &[("X-Amz-Security-Token", SUITE_TOKEN)], b"");
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"
        );
        assert_eq!(
            signed.authorization,
            expected_authorization(
                "host;x-amz-date;x-amz-security-token",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
            )
        );
    }

    #[test]
    fn encoded_path_is_encoded_again() {
        // A path that is already percent-encoded on the wire is encoded once
        // more in the canonical request, as non-S3 services expect.
        let signed = sign_suite_case("POST", "/a%20b", &[], &[], b"");
        assert!(signed.canonical_request.starts_with("POST\n/a%2520b\n"), "{}", signed.canonical_request);
    }
}
