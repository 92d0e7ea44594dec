//! Which AWS region requests go to and are signed for.

use crate::config::AwsConfig;
use crate::error::Error;
use crate::provider::aws::environment::AwsEnvironment;
use crate::provider::aws::profile::{self, ProfileSelection};

/// Resolves the region from configuration, then `AWS_REGION`, then
/// `AWS_DEFAULT_REGION`, then the selected profile's `region` in the shared
/// config file.
///
/// # Errors
/// [`crate::ErrorClass::Config`] when no source sets a region (the message
/// lists every way to set one), when a region is not a valid name, or when
/// the shared config file cannot be read.
pub(crate) fn resolve_region(
    config: &AwsConfig,
    environment: &AwsEnvironment,
    selection: &ProfileSelection,
) -> Result<String, Error> {
    if let Some(region) = config.region.as_deref().filter(|region| !region.is_empty()) {
        return check_region(region, "the `aws.region` setting");
    }
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(region) = environment.var(name) {
            return check_region(region, name);
        }
    }

    let profile = profile::load(environment, selection, false)?;
    if let Some(region) = profile.as_ref().and_then(|profile| profile.get("region")) {
        return check_region(region, &format!("profile `{}`", selection.name));
    }

    let config_file = profile::config_file_path(environment)
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "the AWS config file".to_owned());
    Err(Error::config(format!(
        "no AWS region is set; set `region` in the [aws] section of the keystead config, \
         or the AWS_REGION environment variable, or `region` in profile `{}` of {config_file}",
        selection.name
    )))
}

/// Accepts region names made of lower-case letters, digits and `-`, so
/// that a region can be put into a hostname safely.
fn check_region(region: &str, origin: &str) -> Result<String, Error> {
    let region = region.trim();
    let valid = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if !valid {
        return Err(Error::config(format!(
            "invalid AWS region `{region}` from {origin}; expected a name such as us-east-1"
        )));
    }
    Ok(region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    fn selection(environment: &AwsEnvironment) -> ProfileSelection {
        ProfileSelection::resolve(None, environment)
    }

    #[test]
    fn config_wins_over_environment() {
        let config = AwsConfig {
            region: Some("eu-central-1".to_owned()),
            ..AwsConfig::default()
        };
        let environment = AwsEnvironment::empty().with_var("AWS_REGION", "us-east-1");
        let region = resolve_region(&config, &environment, &selection(&environment)).unwrap();
        assert_eq!(region, "eu-central-1");
    }

    #[test]
    fn aws_region_wins_over_default_region() {
        let environment = AwsEnvironment::empty()
            .with_var("AWS_REGION", "us-west-1")
            .with_var("AWS_DEFAULT_REGION", "us-west-2");
        let region = resolve_region(&AwsConfig::default(), &environment, &selection(&environment)).unwrap();
        assert_eq!(region, "us-west-1");

        let environment = environment.without_var("AWS_REGION");
        let region = resolve_region(&AwsConfig::default(), &environment, &selection(&environment)).unwrap();
        assert_eq!(region, "us-west-2");
    }

    #[test]
    fn profile_region_is_the_last_source() {
        let folder = tempfile::tempdir().unwrap();
        let config_file = folder.path().join("config");
        std::fs::write(&config_file, "[profile app]\nregion = ap-northeast-1\n").unwrap();
        let environment = AwsEnvironment::empty()
            .with_var("AWS_CONFIG_FILE", config_file.to_str().unwrap())
            .with_var("AWS_PROFILE", "app");
        let region = resolve_region(&AwsConfig::default(), &environment, &selection(&environment)).unwrap();
        assert_eq!(region, "ap-northeast-1");
    }

    #[test]
    fn missing_region_says_how_to_set_it() {
        let folder = tempfile::tempdir().unwrap();
        let environment = AwsEnvironment::empty().with_home(folder.path());
        let error = resolve_region(&AwsConfig::default(), &environment, &selection(&environment)).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("AWS_REGION"), "{}", error.message());
        assert!(error.message().contains("[aws]"), "{}", error.message());
        assert!(error.message().contains("profile `default`"), "{}", error.message());
    }

    #[test]
    fn region_with_hostname_characters_is_rejected() {
        let environment = AwsEnvironment::empty().with_var("AWS_REGION", "evil.example.com/");
        let error = resolve_region(&AwsConfig::default(), &environment, &selection(&environment)).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("AWS_REGION"), "{}", error.message());
    }
}
