//! Audit events: what happened to which secret, for a SIEM or an audit log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::ErrorClass;

/// What happened.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditEventKind {
    /// A value was loaded for a reference that had none cached.
    Fetched,
    /// A cached value was re-read and the backend returned the same version.
    Refreshed,
    /// A re-read returned a new version.
    Rotated,
    /// A cached value was removed: evicted for space, invalidated, dropped
    /// after its maximum staleness, or cleared on close.
    Evicted,
    /// A load failed.
    Failed,
}

impl AuditEventKind {
    /// The stable lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditEventKind::Fetched => "fetched",
            AuditEventKind::Refreshed => "refreshed",
            AuditEventKind::Rotated => "rotated",
            AuditEventKind::Evicted => "evicted",
            AuditEventKind::Failed => "failed",
        }
    }
}

/// One audit event. It names the reference and never carries the value.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditEventKind,
    /// The reference's cache key (canonical, without a field).
    pub reference: String,
    /// The version involved, when known.
    pub version_id: Option<String>,
    /// The error class of a failed load.
    pub error_class: Option<ErrorClass>,
    /// Tags that configuration attaches to this reference (owner,
    /// classification, ...).
    pub tags: Arc<BTreeMap<String, String>>,
    /// When it happened (wall clock).
    pub at: SystemTime,
}

/// Receives audit events. It runs on the thread that caused the event, so it
/// should hand the event off quickly (to a channel, for example).
pub(crate) type AuditHook = Arc<dyn Fn(&AuditEvent) + Send + Sync>;
