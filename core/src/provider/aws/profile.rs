//! The shared AWS config files: `~/.aws/config` (`AWS_CONFIG_FILE`) and
//! `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`).
//!
//! Both are INI files. In the config file a profile's section is
//! `[profile NAME]` (or `[default]`); in the credentials file it is `[NAME]`.
//! When both files set a key for the same profile, the credentials file
//! wins, as it does in the AWS CLI.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::Error;
use crate::provider::aws::environment::AwsEnvironment;

/// The profile used when neither configuration nor `AWS_PROFILE` names one.
pub(crate) const DEFAULT_PROFILE: &str = "default";

/// Which profile to read, and whether the user asked for it by name (a
/// named profile that does not exist is an error; a missing `default` is
/// not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProfileSelection {
    pub(crate) name: String,
    pub(crate) explicit: bool,
}

impl ProfileSelection {
    /// Picks the profile from configuration, then `AWS_PROFILE`, then
    /// `default`.
    pub(crate) fn resolve(configured: Option<&str>, environment: &AwsEnvironment) -> ProfileSelection {
        let named = configured
            .filter(|name| !name.is_empty())
            .or_else(|| environment.var("AWS_PROFILE"));
        match named {
            Some(name) => ProfileSelection {
                name: name.to_owned(),
                explicit: true,
            },
            None => ProfileSelection {
                name: DEFAULT_PROFILE.to_owned(),
                explicit: false,
            },
        }
    }
}

/// The keys of one profile, merged from both files. Values are wiped on
/// drop because they include secret access keys.
#[derive(Default)]
pub(crate) struct Profile {
    properties: BTreeMap<String, Zeroizing<String>>,
}

impl Profile {
    /// The value of a key, trimmed; an empty value counts as unset.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(|value| value.as_str())
            .filter(|value| !value.is_empty())
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn merge(&mut self, other: BTreeMap<String, Zeroizing<String>>) {
        self.properties.extend(other);
    }
}

/// Which of the two files a text came from: they spell section names
/// differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Config,
    Credentials,
}

/// The path of the shared config file.
pub(crate) fn config_file_path(environment: &AwsEnvironment) -> Option<PathBuf> {
    match environment.var("AWS_CONFIG_FILE") {
        Some(path) => Some(environment.expand_home(path)),
        None => environment.home().map(|home| home.join(".aws").join("config")),
    }
}

/// The path of the shared credentials file.
pub(crate) fn credentials_file_path(environment: &AwsEnvironment) -> Option<PathBuf> {
    match environment.var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => Some(environment.expand_home(path)),
        None => environment.home().map(|home| home.join(".aws").join("credentials")),
    }
}

/// Loads one profile from the config file and, when `with_credentials` is
/// set, the credentials file.
///
/// Returns `Ok(None)` when the profile is in neither file and was not
/// named explicitly.
///
/// # Errors
/// [`crate::ErrorClass::Config`] when a file exists but cannot be read, or
/// when an explicitly named profile is in neither file.
pub(crate) fn load(
    environment: &AwsEnvironment,
    selection: &ProfileSelection,
    with_credentials: bool,
) -> Result<Option<Profile>, Error> {
    let config_path = config_file_path(environment);
    let credentials_path = if with_credentials {
        credentials_file_path(environment)
    } else {
        None
    };

    let mut profile = Profile::default();
    let mut found = false;
    if let Some(path) = &config_path {
        if let Some(properties) = read_profile(path, FileKind::Config, &selection.name)? {
            profile.merge(properties);
            found = true;
        }
    }
    if let Some(path) = &credentials_path {
        if let Some(properties) = read_profile(path, FileKind::Credentials, &selection.name)? {
            profile.merge(properties);
            found = true;
        }
    }

    if found {
        return Ok(Some(profile));
    }
    if selection.explicit {
        let searched: Vec<String> = [config_path, credentials_path]
            .into_iter()
            .flatten()
            .map(|path| path.display().to_string())
            .collect();
        let searched = if searched.is_empty() {
            "no file (set HOME, AWS_CONFIG_FILE or AWS_SHARED_CREDENTIALS_FILE)".to_owned()
        } else {
            searched.join(" and ")
        };
        return Err(Error::config(format!(
            "AWS profile `{}` not found in {searched}",
            selection.name
        )));
    }
    Ok(None)
}

fn read_profile(
    path: &Path,
    kind: FileKind,
    name: &str,
) -> Result<Option<BTreeMap<String, Zeroizing<String>>>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(Error::config(format!(
                "cannot read AWS shared config file {}: {error}",
                path.display()
            )))
        }
    };
    Ok(parse_profile(&text, kind, name))
}

/// Extracts one profile's keys from a file's text. Sections that appear
/// more than once are merged, later keys winning.
fn parse_profile(text: &str, kind: FileKind, wanted: &str) -> Option<BTreeMap<String, Zeroizing<String>>> {
    let mut properties: Option<BTreeMap<String, Zeroizing<String>>> = None;
    let mut in_wanted = false;

    for line in text.lines() {
        // An indented line continues the previous key (the nested
        // sub-properties of `s3 =` and similar), which keystead does not use.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }

        if let Some(section) = line.strip_prefix('[') {
            let Some(end) = section.find(']') else {
                in_wanted = false;
                continue;
            };
            in_wanted = section_profile_name(&section[..end], kind) == Some(wanted);
            if in_wanted && properties.is_none() {
                properties = Some(BTreeMap::new());
            }
            continue;
        }

        if !in_wanted {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if let Some(properties) = properties.as_mut() {
            properties.insert(
                key.trim().to_owned(),
                Zeroizing::new(strip_inline_comment(value).trim().to_owned()),
            );
        }
    }
    properties
}

/// The profile a section header names, or `None` for sections that are
/// not profiles (`[sso-session x]`, `[services x]`, or in the config file a
/// bare `[name]` other than `[default]`).
fn section_profile_name(header: &str, kind: FileKind) -> Option<&str> {
    let header = header.trim();
    match kind {
        FileKind::Credentials => Some(header),
        FileKind::Config => {
            if header == DEFAULT_PROFILE {
                return Some(header);
            }
            let rest = header.strip_prefix("profile")?;
            if !rest.starts_with([' ', '\t']) {
                return None;
            }
            Some(rest.trim())
        }
    }
}

/// Removes a `#` or `;` comment that follows whitespace. Keys, tokens and
/// region names never contain whitespace, so no value is cut short.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if (*byte == b'#' || *byte == b';') && index > 0 && bytes[index - 1].is_ascii_whitespace() {
            return &value[..index];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(properties: &BTreeMap<String, Zeroizing<String>>) -> Vec<(String, String)> {
        properties
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().to_owned()))
            .collect()
    }

    #[test]
    fn config_file_uses_profile_prefix() {
        let text = "[default]\nregion = us-east-1\n\n[profile prod]\nregion = eu-west-1 # Ireland\n[prod]\nregion = wrong\n";
        let prod = parse_profile(text, FileKind::Config, "prod").unwrap();
        assert_eq!(keys(&prod), vec![("region".to_owned(), "eu-west-1".to_owned())]);
        let default = parse_profile(text, FileKind::Config, "default").unwrap();
        assert_eq!(keys(&default), vec![("region".to_owned(), "us-east-1".to_owned())]);
    }

    #[test]
    fn credentials_file_uses_bare_names() {
        let text = "; comment\n[prod]\naws_access_key_id=AKIDPROD\naws_secret_access_key = secret/with+chars=\n\n[other]\naws_access_key_id = AKIDOTHER\n";
        let prod = parse_profile(text, FileKind::Credentials, "prod").unwrap();
        assert_eq!(
            keys(&prod),
            vec![
                ("aws_access_key_id".to_owned(), "AKIDPROD".to_owned()),
                ("aws_secret_access_key".to_owned(), "secret/with+chars=".to_owned()),
            ]
        );
    }

    #[test]
    fn missing_profile_is_none() {
        assert!(parse_profile("[a]\nx = 1\n", FileKind::Credentials, "b").is_none());
    }

    #[test]
    fn indented_sub_properties_are_skipped() {
        let text = "[profile p]\ns3 =\n  max_concurrent_requests = 20\nregion = ap-south-1\n";
        let profile = parse_profile(text, FileKind::Config, "p").unwrap();
        assert_eq!(
            keys(&profile),
            vec![
                ("region".to_owned(), "ap-south-1".to_owned()),
                ("s3".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn repeated_sections_merge() {
        let text = "[p]\na = 1\nb = 2\n[q]\na = 9\n[p]\nb = 3\n";
        let profile = parse_profile(text, FileKind::Credentials, "p").unwrap();
        assert_eq!(
            keys(&profile),
            vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "3".to_owned())]
        );
    }

    #[test]
    fn non_profile_sections_are_ignored() {
        let text = "[sso-session p]\nregion = x\n[services p]\nregion = y\n[profilep]\nregion = z\n";
        assert!(parse_profile(text, FileKind::Config, "p").is_none());
    }

    #[test]
    fn credentials_file_overrides_config_file() {
        let folder = tempfile::tempdir().unwrap();
        let config = folder.path().join("config");
        let credentials = folder.path().join("credentials");
        std::fs::write(&config, "[profile p]\nregion = us-west-2\naws_access_key_id = FROMCONFIG\n").unwrap();
        std::fs::write(&credentials, "[p]\naws_access_key_id = FROMCREDENTIALS\n").unwrap();
        let environment = AwsEnvironment::empty()
            .with_var("AWS_CONFIG_FILE", config.to_str().unwrap())
            .with_var("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap());
        let selection = ProfileSelection::resolve(Some("p"), &environment);

        let profile = load(&environment, &selection, true).unwrap().unwrap();
        assert_eq!(profile.get("aws_access_key_id"), Some("FROMCREDENTIALS"));
        assert_eq!(profile.get("region"), Some("us-west-2"));

        let config_only = load(&environment, &selection, false).unwrap().unwrap();
        assert_eq!(config_only.get("aws_access_key_id"), Some("FROMCONFIG"));
    }

    #[test]
    fn named_profile_that_is_missing_is_an_error() {
        let folder = tempfile::tempdir().unwrap();
        let environment = AwsEnvironment::empty().with_home(folder.path());
        let named = ProfileSelection::resolve(None, &environment.clone().with_var("AWS_PROFILE", "ghost"));
        let error = load(&environment, &named, true).err().unwrap();
        assert_eq!(error.class(), crate::ErrorClass::Config);
        assert!(error.message().contains("`ghost`"), "{}", error.message());

        let default = ProfileSelection::resolve(None, &environment);
        assert_eq!(default.name, "default");
        assert!(load(&environment, &default, true).unwrap().is_none());
    }
}
