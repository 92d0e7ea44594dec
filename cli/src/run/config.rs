//! Settings of `keystead run`: the `[run]` table, the flags, and their
//! defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::output::Failure;
use crate::run::RunArgs;
use crate::signals;
use crate::watch::DEFAULT_DEBOUNCE;

/// How long a child may take to exit after the stop signal before it is
/// killed. Thirty seconds is Vault Agent's exec-mode default, and what
/// container runtimes give a process between SIGTERM and SIGKILL.
pub(crate) const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

/// The `[run]` table of keystead.toml.
///
/// ```toml
/// [run]
/// restart = true
/// stop_signal = "SIGTERM"
/// grace_period = "30s"
/// debounce = "2s"
/// redact = false
///
/// [run.env]
/// DB_USER = "aws-sm://prod/db#username"
/// DB_PASSWORD = "aws-sm://prod/db#password"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RunTable {
    /// Environment variable name to reference.
    pub(crate) env: BTreeMap<String, String>,
    /// Restart the child when an injected value rotates.
    pub(crate) restart: Option<bool>,
    /// Signal sent to the child to stop it before a restart.
    pub(crate) stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL.
    #[serde(with = "keystead::config::optional_duration_text")]
    pub(crate) grace_period: Option<Duration>,
    /// Quiet time after a rotation before the restart.
    #[serde(with = "keystead::config::optional_duration_text")]
    pub(crate) debounce: Option<Duration>,
    /// Mask injected values in the child's stdout and stderr.
    pub(crate) redact: Option<bool>,
}

/// The effective settings: flags over the table over the defaults.
#[derive(Debug)]
pub(crate) struct RunSettings {
    pub(crate) restart: bool,
    pub(crate) stop_signal: libc::c_int,
    pub(crate) grace_period: Duration,
    pub(crate) debounce: Duration,
    pub(crate) redact: bool,
}

impl RunSettings {
    pub(crate) fn merge(table: &RunTable, args: &RunArgs) -> Result<RunSettings, Failure> {
        let stop_signal = match args.stop_signal.as_deref().or(table.stop_signal.as_deref()) {
            Some(name) => signals::parse(name).map_err(|problem| Failure::usage(format!("invalid stop signal: {problem}")))?,
            None => libc::SIGTERM,
        };
        Ok(RunSettings {
            restart: !args.no_restart && table.restart.unwrap_or(true),
            stop_signal,
            grace_period: args.grace_period.or(table.grace_period).unwrap_or(DEFAULT_GRACE_PERIOD),
            debounce: args.debounce.or(table.debounce).unwrap_or(DEFAULT_DEBOUNCE),
            redact: args.redact || table.redact.unwrap_or(false),
        })
    }
}
