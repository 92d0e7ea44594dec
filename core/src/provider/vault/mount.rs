//! `vault://` references and the secrets engine mount each one lives on.
//!
//! A reference names a logical path, `vault://MOUNT/PATH`. Whether that is
//! KV version 1, KV version 2 (where the API path gets `data/` after the
//! mount) or another engine is learned from
//! `sys/internal/ui/mounts/PATH`, which any token with some capability
//! under the mount may read, and remembered per mount.

use std::time::Duration;

use parking_lot::Mutex;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use tokio::time::Instant;

use crate::error::{Error, ErrorClass};
use crate::provider::vault::http::{parse_json, VaultResponse};
use crate::reference::Reference;

/// The query keys a `vault://` reference accepts.
pub(crate) const QUERY_KEYS: [&str; 1] = ["version"];

/// How long a mount's type is remembered. A mount is rarely moved or
/// upgraded from KV v1 to v2, so an hour bounds how long keystead keeps
/// using an old layout. A response that shows the layout changed drops the
/// mount at once.
pub(crate) const MOUNT_CACHE_TTL: Duration = Duration::from_secs(3600);

/// Characters kept as they are in a URL path segment: RFC 3986's
/// unreserved set.
const SEGMENT_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The kind of secrets engine behind a mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    KvV1,
    KvV2,
    /// Any other engine, by its type name (`database`, `aws`, ...). Reads
    /// from it may return a lease.
    Other(String),
}

/// A mount and its engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The mount path with its trailing `/`, relative to the namespace,
    /// for example `secret/`.
    pub(crate) path: String,
    pub(crate) engine: Engine,
}

/// A checked `vault://` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VaultPath {
    /// The logical path, for example `secret/app`.
    pub(crate) path: String,
    /// The KV v2 version asked for.
    pub(crate) version: Option<u64>,
}

impl VaultPath {
    /// Checks a reference's path and query.
    ///
    /// # Errors
    /// [`ErrorClass::InvalidReference`] naming the problem.
    pub(crate) fn parse(reference: &Reference) -> Result<VaultPath, Error> {
        reference.check_query_keys(&QUERY_KEYS)?;
        let invalid = |message: String| Error::invalid_reference(message).for_reference(&reference.to_string());
        let path = reference.path();

        if path.starts_with('/') {
            return Err(invalid(format!(
                "the path `{path}` starts with '/'; write vault://MOUNT/PATH, for example vault://secret/app"
            )));
        }
        if path.ends_with('/') {
            return Err(invalid(format!(
                "the path `{path}` ends with '/', which names a folder to list, not a secret"
            )));
        }
        let segments: Vec<&str> = path.split('/').collect();
        if segments.len() < 2 {
            return Err(invalid(format!(
                "the path `{path}` names no secret under a mount; write vault://MOUNT/PATH, for example vault://secret/app"
            )));
        }
        if let Some(bad) = segments.iter().find(|segment| matches!(**segment, "" | "." | "..")) {
            let shown = if bad.is_empty() { "an empty segment" } else { bad };
            return Err(invalid(format!("the path `{path}` contains {shown}, which Vault paths cannot have")));
        }

        let version = match reference.query("version") {
            None => None,
            Some(text) => match text.parse::<u64>() {
                Ok(version) if version > 0 => Some(version),
                _ => {
                    return Err(invalid(format!(
                        "version `{text}` is not a KV version number; versions count from 1"
                    )))
                }
            },
        };
        Ok(VaultPath {
            path: path.to_owned(),
            version,
        })
    }
}

/// Remembered mounts, longest path first.
#[derive(Default)]
pub(crate) struct MountCache {
    entries: Mutex<Vec<(Mount, Instant)>>,
}

impl MountCache {
    /// Returns the remembered mount that contains `path`, if any.
    pub(crate) fn find(&self, path: &str, now: Instant) -> Option<Mount> {
        let mut entries = self.entries.lock();
        entries.retain(|(_, learned_at)| now.saturating_duration_since(*learned_at) < MOUNT_CACHE_TTL);
        entries
            .iter()
            .find(|(mount, _)| contains(&mount.path, path))
            .map(|(mount, _)| mount.clone())
    }

    pub(crate) fn insert(&self, mount: Mount, now: Instant) {
        let mut entries = self.entries.lock();
        entries.retain(|(known, _)| known.path != mount.path);
        entries.push((mount, now));
        entries.sort_by_key(|(known, _)| std::cmp::Reverse(known.path.len()));
    }

    /// Forgets a mount whose layout turned out to be different.
    pub(crate) fn forget(&self, mount_path: &str) {
        self.entries.lock().retain(|(known, _)| known.path != mount_path);
    }
}

fn contains(mount_path: &str, path: &str) -> bool {
    path.starts_with(mount_path) && path.len() > mount_path.len()
}

/// Returns the API path that looks up the mount of `path`.
pub(crate) fn mount_lookup_path(path: &str) -> String {
    format!("sys/internal/ui/mounts/{}", encode_path(path))
}

/// Reads a `sys/internal/ui/mounts/PATH` response.
///
/// # Errors
/// [`ErrorClass::AccessDenied`] when the token may not see the mount
/// (which is also Vault's response for a path under no mount), and the usual
/// errors for other failures.
pub(crate) fn parse_mount(response: &VaultResponse, path: &str) -> Result<Mount, Error> {
    if response.status == 403 {
        return Err(response.error_with_class(
            ErrorClass::AccessDenied,
            &format!(
                "finding the secrets engine mount of `{path}` (Vault answers 403 both when no mount contains the \
                 path and when the token's policies grant nothing under it)"
            ),
        ));
    }
    if !response.is_success() {
        return Err(response.error(&format!("finding the secrets engine mount of `{path}`")));
    }

    #[derive(Deserialize)]
    struct Body {
        data: Option<MountData>,
    }
    #[derive(Deserialize)]
    struct MountData {
        path: String,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        options: Option<serde_json::Map<String, serde_json::Value>>,
    }
    let body: Body = parse_json(&response.body, "sys/internal/ui/mounts")?;
    let Some(data) = body.data else {
        return Err(Error::new(
            ErrorClass::Internal,
            format!("the mount lookup for `{path}` returned no mount"),
        ));
    };

    let mount_path = if data.path.ends_with('/') {
        data.path
    } else {
        format!("{}/", data.path)
    };
    if !contains(&mount_path, path) {
        return Err(Error::new(
            ErrorClass::Internal,
            format!("Vault returned mount `{mount_path}` for `{path}`, which does not contain it"),
        ));
    }
    let version = data
        .options
        .as_ref()
        .and_then(|options| options.get("version"))
        .and_then(|version| match version {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        });
    let engine = match (data.kind.as_str(), version.as_deref()) {
        ("kv", Some("2")) => Engine::KvV2,
        // "generic" is what Vault before 0.8 called KV version 1.
        ("kv" | "generic", _) => Engine::KvV1,
        (other, _) => Engine::Other(other.to_owned()),
    };
    Ok(Mount {
        path: mount_path,
        engine,
    })
}

/// Percent-encodes each segment of a logical path for a URL, keeping the
/// `/` separators. Encoding every reserved character keeps a name such as
/// `a?b` from turning into a query.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT_ESCAPES).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Returns the API path of a KV v2 read of `path` under `mount`.
///
/// # Errors
/// [`ErrorClass::InvalidReference`] when the path already starts with
/// `data/` after the mount, because keystead inserts it.
pub(crate) fn kv2_data_path(mount: &Mount, path: &str) -> Result<String, Error> {
    let relative = &path[mount.path.len()..];
    if let Some(rest) = relative.strip_prefix("data/") {
        // Limitation: a KV v2 secret whose own name starts with `data/`
        // cannot be named, because the reference would be ambiguous.
        return Err(Error::invalid_reference(format!(
            "`{path}` is under the KV version 2 mount `{}`, and keystead inserts `data/` itself; write \
             vault://{}{}",
            mount.path, mount.path, rest
        )));
    }
    Ok(format!(
        "{}/data/{}",
        encode_path(mount.path.trim_end_matches('/')),
        encode_path(relative)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn parse(text: &str) -> Result<VaultPath, Error> {
        VaultPath::parse(&Reference::parse(text).unwrap())
    }

    fn response(status: u16, body: &str) -> VaultResponse {
        VaultResponse {
            status,
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn parse_takes_path_and_version() {
        let parsed = parse("vault://secret/app/db?version=3#password").unwrap();
        assert_eq!(parsed.path, "secret/app/db");
        assert_eq!(parsed.version, Some(3));
    }

    #[test]
    fn parse_rejects_bad_paths() {
        let cases = [
            "vault:///secret/app",
            "vault://secret",
            "vault://secret/app/",
            "vault://secret//app",
            "vault://secret/../sys/raw",
            "vault://secret/./app",
            "vault://secret/app?version=0",
            "vault://secret/app?version=latest",
            "vault://secret/app?verison=2",
        ];
        for case in cases {
            let error = parse(case).unwrap_err();
            assert_eq!(error.class(), ErrorClass::InvalidReference, "{case}");
        }
    }

    #[test]
    fn mount_lookup_reads_kv_versions_and_types() {
        let kv2 = r#"{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}"#;
        let kv1 = r#"{"data":{"path":"kv1/","type":"kv","options":{"version":"1"}}}"#;
        let database = r#"{"data":{"path":"database/","type":"database","options":null}}"#;
        assert_eq!(
            parse_mount(&response(200, kv2), "secret/app").unwrap(),
            Mount {
                path: "secret/".into(),
                engine: Engine::KvV2
            }
        );
        assert_eq!(parse_mount(&response(200, kv1), "kv1/app").unwrap().engine, Engine::KvV1);
        assert_eq!(
            parse_mount(&response(200, database), "database/creds/app").unwrap().engine,
            Engine::Other("database".into())
        );
    }

    #[test]
    fn mount_lookup_denied_explains_both_causes() {
        let denied = r#"{"errors":["preflight capability check returned 403, please ensure client's policies grant access to path \"nope/x/\""]}"#;
        let error = parse_mount(&response(403, denied), "nope/x").unwrap_err();
        assert_eq!(error.class(), ErrorClass::AccessDenied);
        assert!(error.message().contains("no mount contains the path"), "{}", error.message());
    }

    #[test]
    fn kv2_path_inserts_data_once() {
        let mount = Mount {
            path: "team/kv/".into(),
            engine: Engine::KvV2,
        };
        assert_eq!(kv2_data_path(&mount, "team/kv/app/db").unwrap(), "team/kv/data/app/db");
    }

    #[test]
    fn kv2_path_with_data_prefix_is_rejected() {
        let mount = Mount {
            path: "secret/".into(),
            engine: Engine::KvV2,
        };
        let error = kv2_data_path(&mount, "secret/data/app").unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidReference);
        assert!(error.message().contains("write vault://secret/app"), "{}", error.message());
    }

    #[test]
    fn encode_path_escapes_reserved_characters() {
        assert_eq!(encode_path("secret/a b/c?d#e%f"), "secret/a%20b/c%3Fd%23e%25f");
    }

    #[test]
    fn cache_prefers_longest_mount() {
        let cache = MountCache::default();
        let now = Instant::now();
        cache.insert(
            Mount {
                path: "team/".into(),
                engine: Engine::KvV1,
            },
            now,
        );
        cache.insert(
            Mount {
                path: "team/kv/".into(),
                engine: Engine::KvV2,
            },
            now,
        );
        assert_eq!(cache.find("team/kv/app", now).unwrap().path, "team/kv/");
        assert_eq!(cache.find("team/other", now).unwrap().path, "team/");
        assert_eq!(cache.find("teamx/app", now), None);
        assert_eq!(cache.find("team/kv/app", now + MOUNT_CACHE_TTL), None);
    }
}
