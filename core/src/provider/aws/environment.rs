//! The environment variables and home folder the AWS providers read,
//! captured once so that resolution is repeatable and testable.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A snapshot of the environment the AWS providers read: every `AWS_*`
/// variable and the home folder (for `~/.aws/config` and
/// `~/.aws/credentials`).
///
/// [`AwsEnvironment::from_process`] takes the snapshot from the running
/// process. Tests and embedders that must not depend on the process
/// environment build one with [`AwsEnvironment::empty`] and
/// [`AwsEnvironment::with_var`].
///
/// Values are wiped from memory when the snapshot is dropped, because
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` are among them. `Debug`
/// lists variable names only.
///
/// ```
/// use keystead::provider::aws::AwsEnvironment;
/// let environment = AwsEnvironment::empty()
///     .with_var("AWS_REGION", "eu-west-1")
///     .with_var("AWS_EC2_METADATA_DISABLED", "true");
/// assert_eq!(environment.var("AWS_REGION"), Some("eu-west-1"));
/// assert!(!format!("{environment:?}").contains("eu-west-1"));
/// ```
#[derive(Clone, Default)]
pub struct AwsEnvironment {
    vars: BTreeMap<String, Zeroizing<String>>,
    home: Option<PathBuf>,
}

impl AwsEnvironment {
    /// An environment with no variables and no home folder: no shared
    /// config files are read unless `AWS_CONFIG_FILE` or
    /// `AWS_SHARED_CREDENTIALS_FILE` name them.
    pub fn empty() -> AwsEnvironment {
        AwsEnvironment::default()
    }

    /// Captures every `AWS_*` variable of this process that is valid
    /// UTF-8, and the home folder from `HOME` (or `USERPROFILE` on
    /// Windows). Later changes to the process environment are not seen.
    pub fn from_process() -> AwsEnvironment {
        let mut environment = AwsEnvironment::empty();
        for (name, value) in std::env::vars_os() {
            let (Some(name), Ok(value)) = (name.to_str(), value.into_string()) else {
                continue;
            };
            if name.starts_with("AWS_") {
                environment.vars.insert(name.to_owned(), Zeroizing::new(value));
            }
        }
        environment.home = ["HOME", "USERPROFILE"]
            .iter()
            .filter_map(std::env::var_os)
            .find(|home| !home.is_empty())
            .map(PathBuf::from);
        environment
    }

    /// Returns this environment with `name` set to `value`.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> AwsEnvironment {
        self.vars.insert(name.into(), Zeroizing::new(value.into()));
        self
    }

    /// Returns this environment with `name` unset.
    pub fn without_var(mut self, name: &str) -> AwsEnvironment {
        self.vars.remove(name);
        self
    }

    /// Returns this environment with its home folder set to `home`.
    pub fn with_home(mut self, home: impl Into<PathBuf>) -> AwsEnvironment {
        self.home = Some(home.into());
        self
    }

    /// The value of a variable. An empty value counts as unset, as it does
    /// for the AWS SDKs.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|value| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// Whether a variable is set to `true` (in any letter case).
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.var(name)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }

    /// The home folder, if known.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// Expands a leading `~/` to the home folder, as the AWS CLI does for
    /// paths in `AWS_CONFIG_FILE` and similar variables.
    pub(crate) fn expand_home(&self, path: &str) -> PathBuf {
        match (path.strip_prefix("~/"), self.home()) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(path),
        }
    }
}

impl fmt::Debug for AwsEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsEnvironment")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("home", &self.home)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_value_counts_as_unset() {
        let environment = AwsEnvironment::empty().with_var("AWS_REGION", "");
        assert_eq!(environment.var("AWS_REGION"), None);
    }

    #[test]
    fn flag_accepts_any_case() {
        let environment = AwsEnvironment::empty()
            .with_var("A", "TRUE")
            .with_var("B", "yes");
        assert!(environment.flag("A"));
        assert!(!environment.flag("B"));
        assert!(!environment.flag("C"));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let environment = AwsEnvironment::empty().with_var("AWS_SECRET_ACCESS_KEY", "do-not-print");
        let debug = format!("{environment:?}");
        assert!(debug.contains("AWS_SECRET_ACCESS_KEY"), "{debug}");
        assert!(!debug.contains("do-not-print"), "{debug}");
    }

    #[test]
    fn tilde_expands_to_home() {
        let environment = AwsEnvironment::empty().with_home("/home/app");
        assert_eq!(environment.expand_home("~/.aws/config"), PathBuf::from("/home/app/.aws/config"));
        assert_eq!(environment.expand_home("/etc/aws"), PathBuf::from("/etc/aws"));
    }
}
