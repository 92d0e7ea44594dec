//! KV version 1 and version 2 reads.
//!
//! The value is the JSON text of the secret's `data` object exactly as
//! Vault sent it, so numbers, booleans and nested objects come back
//! faithfully and a `#field` selector works on them. KV secrets have no
//! lease: they are read again on the cache's schedule.

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, ErrorClass};
use crate::provider::vault::http::{parse_json, VaultResponse};
use crate::provider::Fetched;
use crate::secret::SecretValue;

/// The warning Vault adds when a KV v1-style path is used on a KV v2 mount:
/// the mount was upgraded since its layout was learned.
const VERSIONED_KV_WARNING: &str = "Invalid path for a versioned K/V secrets engine";

/// The outcome of a KV read.
pub(crate) enum KvRead {
    Value(Box<Fetched>),
    /// The response shows the mount's layout is not the one remembered.
    LayoutChanged,
}

/// Reads a KV version 2 response for `path` (the logical path, for
/// messages).
pub(crate) fn read_v2(response: &VaultResponse, path: &str, version: Option<u64>) -> Result<KvRead, Error> {
    let shown = match version {
        Some(version) => format!("version {version} of `{path}`"),
        None => format!("`{path}`"),
    };
    if response.status == 404 {
        return not_found_v2(response, path, version);
    }
    if !response.is_success() {
        return Err(response.error(&format!("reading {shown}")));
    }

    let envelope = response.envelope("KV read")?;
    let Some(raw) = envelope.data else {
        return Err(Error::new(ErrorClass::Internal, format!("the KV read of {shown} returned no data")));
    };
    let versioned: Kv2Data<'_> = parse_json(raw.get().as_bytes(), "KV version 2 read")?;
    let metadata = versioned.metadata.unwrap_or_default();
    let Some(data) = versioned.data else {
        return Err(deleted_error(path, version, &metadata));
    };

    let mut fetched = Fetched::new(SecretValue::text(data.get().to_owned()));
    fetched.name = Some(path.to_owned());
    fetched.version_number = metadata.version;
    fetched.version_id = metadata.version.map(|version| version.to_string());
    fetched.created_at = metadata.created_time.as_deref().and_then(parse_time);
    Ok(KvRead::Value(Box::new(fetched)))
}

/// Reads a KV version 1 response for `path`.
pub(crate) fn read_v1(response: &VaultResponse, path: &str) -> Result<KvRead, Error> {
    if response.status == 404 {
        let envelope = response.envelope("KV read").unwrap_or_default();
        if has_versioned_warning(&envelope.warnings) {
            return Ok(KvRead::LayoutChanged);
        }
        return Err(Error::new(ErrorClass::NotFound, format!("no secret at `{path}`")));
    }
    if !response.is_success() {
        return Err(response.error(&format!("reading `{path}`")));
    }

    let envelope = response.envelope("KV read")?;
    if has_versioned_warning(&envelope.warnings) {
        return Ok(KvRead::LayoutChanged);
    }
    let Some(data) = envelope.data else {
        return Err(Error::new(ErrorClass::NotFound, format!("no secret at `{path}`")));
    };
    // KV v1 responses carry a `lease_duration` that is only a refresh hint
    // with no lease behind it, so it is not a validity.
    let mut fetched = Fetched::new(SecretValue::text(data.get().to_owned()));
    fetched.name = Some(path.to_owned());
    Ok(KvRead::Value(Box::new(fetched)))
}

fn not_found_v2(response: &VaultResponse, path: &str, version: Option<u64>) -> Result<KvRead, Error> {
    // A deleted or destroyed version comes back as 404 with its metadata
    // in the body; a path that never existed as 404 with `{"errors":[]}`.
    let envelope = response.envelope("KV read").unwrap_or_default();
    if has_versioned_warning(&envelope.warnings) {
        return Ok(KvRead::LayoutChanged);
    }
    let metadata = envelope
        .data
        .and_then(|raw| serde_json::from_str::<Kv2Data<'_>>(raw.get()).ok())
        .and_then(|versioned| versioned.metadata);
    match (metadata, version) {
        (Some(metadata), _) => Err(deleted_error(path, version, &metadata)),
        (None, Some(version)) => Err(Error::new(
            ErrorClass::NotFound,
            format!("`{path}` has no version {version}"),
        )),
        (None, None) => Err(Error::new(ErrorClass::NotFound, format!("no secret at `{path}`"))),
    }
}

fn deleted_error(path: &str, requested: Option<u64>, metadata: &Kv2Metadata) -> Error {
    let shown = match (requested, metadata.version) {
        (Some(version), _) => format!("version {version} of `{path}`"),
        (None, Some(version)) => format!("the latest version ({version}) of `{path}`"),
        (None, None) => format!("the latest version of `{path}`"),
    };
    let message = if metadata.destroyed.unwrap_or(false) {
        format!("{shown} is destroyed; write a new version or read an earlier one with ?version=N")
    } else {
        let when = metadata
            .deletion_time
            .as_deref()
            .filter(|time| !time.is_empty())
            .map(|time| format!(" at {time}"))
            .unwrap_or_default();
        format!("{shown} was deleted{when}; undelete it or write a new version")
    };
    Error::new(ErrorClass::SecretDeleted, message)
}

fn has_versioned_warning(warnings: &Option<Vec<String>>) -> bool {
    warnings
        .iter()
        .flatten()
        .any(|warning| warning.contains(VERSIONED_KV_WARNING))
}

fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(text).ok()
}

#[derive(Deserialize)]
struct Kv2Data<'a> {
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    metadata: Option<Kv2Metadata>,
}

#[derive(Default, Deserialize)]
struct Kv2Metadata {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    deletion_time: Option<String>,
    #[serde(default)]
    destroyed: Option<bool>,
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use zeroize::Zeroizing;

    use super::*;

    fn response(status: u16, body: &str) -> VaultResponse {
        VaultResponse {
            status,
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    fn value(read: Result<KvRead, Error>) -> Fetched {
        match read {
            Ok(KvRead::Value(fetched)) => *fetched,
            Ok(KvRead::LayoutChanged) => panic!("unexpected layout change"),
            Err(error) => panic!("unexpected error: {error}"),
        }
    }

    #[test]
    fn v2_value_is_data_object_text() {
        let body = r#"{"lease_id":"","lease_duration":0,"data":{"data":{"a":1,"b":true,"c":{"d":[1,2]}},"metadata":{"created_time":"2026-12-04T20:22:20.944973462Z","deletion_time":"","destroyed":false,"version":3}}}"#;
        let fetched = value(read_v2(&response(200, body), "secret/app", None));
        assert_eq!(fetched.value.expose_bytes(), br#"{"a":1,"b":true,"c":{"d":[1,2]}}"#);
        assert_eq!(fetched.version_number, Some(3));
        assert_eq!(fetched.version_id.as_deref(), Some("3"));
        assert_eq!(fetched.name.as_deref(), Some("secret/app"));
        assert_eq!(fetched.valid_for, None);
        assert!(fetched.lease.is_none());
        let created = fetched.created_at.unwrap().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(created.as_secs(), 1_796_415_740);
        assert_eq!(created.subsec_nanos(), 944_973_462);
    }

    #[test]
    fn v2_deleted_version_is_secret_deleted() {
        let body = r#"{"data":{"data":null,"metadata":{"created_time":"2026-12-04T20:22:20.944973462Z","deletion_time":"2026-12-04T20:22:20.951985455Z","destroyed":false,"version":3}}}"#;
        let Err(error) = read_v2(&response(404, body), "secret/app", None) else {
            panic!("expected an error");
        };
        assert_eq!(error.class(), ErrorClass::SecretDeleted);
        assert_eq!(
            error.message(),
            "the latest version (3) of `secret/app` was deleted at 2026-12-04T20:22:20.951985455Z; undelete it or write a new version"
        );
    }

    #[test]
    fn v2_destroyed_version_is_secret_deleted() {
        let body = r#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":2}}}"#;
        let Err(error) = read_v2(&response(404, body), "secret/app", Some(2)) else {
            panic!("expected an error");
        };
        assert_eq!(error.class(), ErrorClass::SecretDeleted);
        assert_eq!(
            error.message(),
            "version 2 of `secret/app` is destroyed; write a new version or read an earlier one with ?version=N"
        );
    }

    #[test]
    fn v2_missing_path_is_not_found() {
        let Err(error) = read_v2(&response(404, r#"{"errors":[]}"#), "secret/nothere", None) else {
            panic!("expected an error");
        };
        assert_eq!(error.class(), ErrorClass::NotFound);
        assert_eq!(error.message(), "no secret at `secret/nothere`");
    }

    #[test]
    fn v2_missing_version_is_not_found() {
        let Err(error) = read_v2(&response(404, r#"{"errors":[]}"#), "secret/app", Some(99)) else {
            panic!("expected an error");
        };
        assert_eq!(error.class(), ErrorClass::NotFound);
        assert_eq!(error.message(), "`secret/app` has no version 99");
    }

    #[test]
    fn v1_read_of_upgraded_mount_reports_layout_change() {
        let body = r#"{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use."]}"#;
        assert!(matches!(read_v1(&response(404, body), "secret/app"), Ok(KvRead::LayoutChanged)));
    }

    #[test]
    fn v1_value_ignores_refresh_hint() {
        let body = r#"{"lease_id":"","lease_duration":2764800,"data":{"password":"pw","port":5432}}"#;
        let fetched = value(read_v1(&response(200, body), "kv1/app"));
        assert_eq!(fetched.value.expose_bytes(), br#"{"password":"pw","port":5432}"#);
        assert_eq!(fetched.valid_for, None);
        assert_eq!(fetched.version_number, None);
    }

    #[test]
    fn parse_time_keeps_nanoseconds() {
        let time = parse_time("2026-12-04T20:22:20.000000001Z").unwrap();
        assert_eq!(time.duration_since(UNIX_EPOCH).unwrap().subsec_nanos(), 1);
        assert_eq!(parse_time("not a time"), None);
    }
}
