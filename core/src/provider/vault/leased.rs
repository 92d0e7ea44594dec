//! Reads from engines other than KV, which may return a lease (database,
//! AWS, RabbitMQ and other dynamic credentials), and the bookkeeping that
//! ties each lease to the token generation that created it.

use crate::provider::vault::backend_duration;
use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::{Error, ErrorClass};
use crate::provider::vault::http::VaultResponse;
use crate::provider::{Fetched, Lease};
use crate::secret::SecretValue;

/// Reads a logical read's response. All fields of the value come from
/// this one response, so a username and password always share a lease.
pub(crate) fn read(response: &VaultResponse, path: &str, revoke_on_close: bool) -> Result<Fetched, Error> {
    if !response.is_success() {
        let class = match response.status {
            // Vault returns 405 for a path that does not support reading
            // and 400 for a malformed request (an unknown role, for some
            // engines).
            400 | 405 => ErrorClass::InvalidReference,
            _ => response.error("").class(),
        };
        return Err(response.error_with_class(class, &format!("reading `{path}`")));
    }
    let envelope = response.envelope("read")?;
    let Some(data) = envelope.data else {
        return Err(Error::new(ErrorClass::NotFound, format!("reading `{path}` returned no data")));
    };

    let mut fetched = Fetched::new(SecretValue::text(data.get().to_owned()));
    fetched.name = Some(path.to_owned());
    if !envelope.lease_id.is_empty() {
        let duration = backend_duration(envelope.lease_duration);
        let mut lease = Lease::new(envelope.lease_id.clone(), envelope.renewable, duration);
        lease.revoke_on_close = revoke_on_close;
        fetched.version_id = Some(envelope.lease_id);
        fetched.valid_for = Some(duration);
        fetched.lease = Some(lease);
    }
    Ok(fetched)
}

/// The token generation each live lease was created under.
#[derive(Default)]
pub(crate) struct LeaseBook {
    leases: Mutex<HashMap<String, (u64, Instant)>>,
}

impl LeaseBook {
    /// Records a lease created under `generation` that ends at `ends_at`,
    /// and removes leases that have ended.
    pub(crate) fn record(&self, lease_id: &str, generation: u64, ends_at: Instant, now: Instant) {
        let mut leases = self.leases.lock();
        leases.retain(|_, (_, end)| *end > now);
        leases.insert(lease_id.to_owned(), (generation, ends_at));
    }

    /// Returns the generation a lease was created under, if it is known.
    pub(crate) fn generation(&self, lease_id: &str) -> Option<u64> {
        self.leases.lock().get(lease_id).map(|(generation, _)| *generation)
    }

    /// Moves a renewed lease's end.
    pub(crate) fn extend(&self, lease_id: &str, ends_at: Instant) {
        if let Some((_, end)) = self.leases.lock().get_mut(lease_id) {
            *end = ends_at;
        }
    }

    pub(crate) fn forget(&self, lease_id: &str) {
        self.leases.lock().remove(lease_id);
    }
}

/// Reads a `sys/leases/renew` response: the time the lease now has left.
pub(crate) fn renewal(response: &VaultResponse, lease_id: &str) -> Result<Duration, Error> {
    if response.is_success() {
        let envelope = response.envelope("sys/leases/renew")?;
        return Ok(backend_duration(envelope.lease_duration));
    }
    let action = format!("renewing lease `{lease_id}`");
    match response.status {
        // Vault returns 400 "lease not found" for a revoked or expired
        // lease, and 400 for one that is not renewable. Either way only new
        // credentials help.
        400 | 404 => Err(response.error_with_class(ErrorClass::NotFound, &action)),
        403 => Err(response.error_with_class(
            ErrorClass::AccessDenied,
            &format!("{action} (the token needs `update` on sys/leases/renew, which Vault's default policy grants)"),
        )),
        _ => Err(response.error(&action)),
    }
}

/// Checks a `sys/leases/revoke` response.
pub(crate) fn revocation(response: &VaultResponse, lease_id: &str) -> Result<(), Error> {
    if response.is_success() {
        return Ok(());
    }
    let action = format!("revoking lease `{lease_id}`");
    match response.status {
        403 => Err(response.error_with_class(
            ErrorClass::AccessDenied,
            &format!(
                "{action} (the token needs `update` on sys/leases/revoke, which Vault's default policy does not grant)"
            ),
        )),
        _ => Err(response.error(&action)),
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    fn response(status: u16, body: &str) -> VaultResponse {
        VaultResponse {
            status,
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn read_sets_lease_and_validity() {
        let body = r#"{"lease_id":"database/creds/app/AbC","renewable":true,"lease_duration":4,"data":{"password":"pw-1","username":"v-app-1"}}"#;
        let fetched = read(&response(200, body), "database/creds/app", true).unwrap();
        assert_eq!(fetched.value.expose_bytes(), br#"{"password":"pw-1","username":"v-app-1"}"#);
        assert_eq!(fetched.valid_for, Some(Duration::from_secs(4)));
        assert_eq!(fetched.version_id.as_deref(), Some("database/creds/app/AbC"));
        let lease = fetched.lease.unwrap();
        assert_eq!(lease.id, "database/creds/app/AbC");
        assert!(lease.renewable);
        assert_eq!(lease.duration, Duration::from_secs(4));
        assert!(lease.revoke_on_close);
    }

    #[test]
    fn read_without_lease_id_has_no_lease() {
        let body = r#"{"lease_id":"","lease_duration":2764800,"data":{"k":"v"}}"#;
        let fetched = read(&response(200, body), "cubbyhole/app", true).unwrap();
        assert!(fetched.lease.is_none());
        assert_eq!(fetched.valid_for, None);
    }

    #[test]
    fn read_honours_revoke_on_close_off() {
        let body = r#"{"lease_id":"aws/creds/r/1","renewable":false,"lease_duration":900,"data":{"access_key":"AKIA"}}"#;
        let lease = read(&response(200, body), "aws/creds/r", false).unwrap().lease.unwrap();
        assert!(!lease.revoke_on_close);
        assert!(!lease.renewable);
    }

    #[test]
    fn renewal_of_revoked_lease_is_not_found() {
        let error = renewal(&response(400, r#"{"errors":["lease not found"]}"#), "database/creds/app/x").unwrap_err();
        assert_eq!(error.class(), ErrorClass::NotFound);
        assert_eq!(
            error.message(),
            "renewing lease `database/creds/app/x` failed with HTTP 400: lease not found"
        );
    }

    #[test]
    fn renewal_returns_new_duration() {
        let body = r#"{"lease_id":"database/creds/app/x","renewable":true,"lease_duration":7}"#;
        assert_eq!(renewal(&response(200, body), "database/creds/app/x").unwrap(), Duration::from_secs(7));
    }

    #[test]
    fn revocation_denied_names_policy() {
        let error = revocation(&response(403, r#"{"errors":["permission denied"]}"#), "l").unwrap_err();
        assert_eq!(error.class(), ErrorClass::AccessDenied);
        assert!(error.message().contains("sys/leases/revoke"), "{}", error.message());
    }

    #[test]
    fn book_forgets_ended_leases() {
        let book = LeaseBook::default();
        let now = Instant::now();
        book.record("a", 1, now + Duration::from_secs(5), now);
        book.record("b", 2, now + Duration::from_secs(50), now + Duration::from_secs(10));
        assert_eq!(book.generation("a"), None);
        assert_eq!(book.generation("b"), Some(2));
    }
}
