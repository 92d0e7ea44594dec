//! Which URL each AWS service is called at.

use reqwest::Url;

use crate::config::AwsConfig;
use crate::error::Error;
use crate::provider::aws::environment::AwsEnvironment;

/// The AWS services keystead calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AwsService {
    SecretsManager,
    Ssm,
    Sts,
}

impl AwsService {
    /// The name SigV4 signs with, which is also the first label of the
    /// service's default hostname.
    pub(crate) fn signing_name(self) -> &'static str {
        match self {
            AwsService::SecretsManager => "secretsmanager",
            AwsService::Ssm => "ssm",
            AwsService::Sts => "sts",
        }
    }

    /// The service's name in messages.
    pub(crate) fn display_name(self) -> &'static str {
        match self {
            AwsService::SecretsManager => "Secrets Manager",
            AwsService::Ssm => "SSM",
            AwsService::Sts => "STS",
        }
    }

    /// The service-specific endpoint variable the AWS SDKs read.
    fn endpoint_var(self) -> &'static str {
        match self {
            AwsService::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            AwsService::Ssm => "AWS_ENDPOINT_URL_SSM",
            AwsService::Sts => "AWS_ENDPOINT_URL_STS",
        }
    }

    fn configured_endpoint(self, config: &AwsConfig) -> Option<&str> {
        let endpoint = match self {
            AwsService::SecretsManager => config.secrets_manager_endpoint_url.as_deref(),
            AwsService::Ssm => config.ssm_endpoint_url.as_deref(),
            AwsService::Sts => config.sts_endpoint_url.as_deref(),
        };
        endpoint.filter(|url| !url.is_empty())
    }

    fn configured_endpoint_key(self) -> &'static str {
        match self {
            AwsService::SecretsManager => "aws.secrets_manager_endpoint_url",
            AwsService::Ssm => "aws.ssm_endpoint_url",
            AwsService::Sts => "aws.sts_endpoint_url",
        }
    }
}

/// Resolves a service's endpoint: the service's own setting, then its
/// `AWS_ENDPOINT_URL_<SERVICE>` variable, then `aws.endpoint_url`, then
/// `AWS_ENDPOINT_URL`, then the regional AWS hostname.
///
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` skips the environment
/// variables (but not keystead's own settings), as it does in the AWS SDKs.
/// `AWS_USE_FIPS_ENDPOINT=true` picks the FIPS hostname for the regional
/// default.
///
/// # Errors
/// [`crate::ErrorClass::Config`] naming the setting or variable whose URL
/// is invalid.
pub(crate) fn resolve_endpoint(
    service: AwsService,
    config: &AwsConfig,
    environment: &AwsEnvironment,
    region: &str,
) -> Result<Url, Error> {
    let use_environment = !environment.flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    let from_environment = |name: &'static str| {
        if use_environment {
            environment.var(name).map(|url| (url, name))
        } else {
            None
        }
    };

    let chosen = service
        .configured_endpoint(config)
        .map(|url| (url, service.configured_endpoint_key()))
        .or_else(|| from_environment(service.endpoint_var()))
        .or_else(|| {
            config
                .endpoint_url
                .as_deref()
                .filter(|url| !url.is_empty())
                .map(|url| (url, "aws.endpoint_url"))
        })
        .or_else(|| from_environment("AWS_ENDPOINT_URL"));

    match chosen {
        Some((url, origin)) => parse_endpoint(url, origin),
        None => {
            let fips = environment.flag("AWS_USE_FIPS_ENDPOINT");
            parse_endpoint(&default_endpoint(service, region, fips), "the default AWS endpoint")
        }
    }
}

/// The regional hostname of a service, following the AWS partitions'
/// `{service}[-fips].{region}.{dnsSuffix}` pattern.
fn default_endpoint(service: AwsService, region: &str, fips: bool) -> String {
    let fips_suffix = if fips { "-fips" } else { "" };
    format!(
        "https://{}{fips_suffix}.{region}.{}",
        service.signing_name(),
        dns_suffix(region)
    )
}

/// The DNS suffix of the partition a region belongs to, from the
/// partition table the AWS SDKs ship (`partitions.json`). Every region
/// not listed is in the commercial partition, `amazonaws.com`, which also
/// serves GovCloud (`us-gov-*`).
fn dns_suffix(region: &str) -> &'static str {
    const PARTITION_SUFFIXES: [(&str, &str); 6] = [
        ("cn-", "amazonaws.com.cn"),
        ("us-isob-", "sc2s.sgov.gov"),
        ("us-isof-", "csp.hci.ic.gov"),
        ("us-iso-", "c2s.ic.gov"),
        ("eu-isoe-", "cloud.adc-e.uk"),
        ("eusc-", "amazonaws.eu"),
    ];
    PARTITION_SUFFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map(|(_, suffix)| *suffix)
        .unwrap_or("amazonaws.com")
}

/// Parses an endpoint URL: `http` or `https`, a host, and no user info,
/// query or fragment (those would change what is signed).
pub(crate) fn parse_endpoint(text: &str, origin: &str) -> Result<Url, Error> {
    let redacted = without_user_info(text);
    let invalid = |problem: &str| {
        Error::config(format!("invalid endpoint URL `{redacted}` from {origin}: {problem}"))
    };
    let url = Url::parse(text.trim()).map_err(|error| invalid(&error.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid("the scheme must be https or http"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("user info is not allowed"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed"));
    }
    Ok(url)
}

/// Replaces anything between `://` and `@` in URL text, so that an error
/// never echoes a password written into an endpoint URL.
fn without_user_info(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[REDACTED]@{}", &rest[at + 1..]),
        None => text.to_owned(),
    }
}

/// The `Host` header value for a URL, as HTTP clients send it: the port
/// appears only when it is not the scheme's default.
pub(crate) fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    fn resolve(service: AwsService, config: &AwsConfig, environment: &AwsEnvironment, region: &str) -> String {
        resolve_endpoint(service, config, environment, region)
            .unwrap()
            .to_string()
    }

    #[test]
    fn default_is_regional_hostname() {
        let environment = AwsEnvironment::empty();
        let config = AwsConfig::default();
        assert_eq!(
            resolve(AwsService::SecretsManager, &config, &environment, "eu-west-1"),
            "https://secretsmanager.eu-west-1.amazonaws.com/"
        );
        assert_eq!(resolve(AwsService::Ssm, &config, &environment, "us-east-2"), "https://ssm.us-east-2.amazonaws.com/");
        assert_eq!(resolve(AwsService::Sts, &config, &environment, "ap-south-1"), "https://sts.ap-south-1.amazonaws.com/");
    }

    #[test]
    fn partitions_pick_their_dns_suffix() {
        let environment = AwsEnvironment::empty();
        let config = AwsConfig::default();
        let cases = [
            ("cn-north-1", "https://secretsmanager.cn-north-1.amazonaws.com.cn/"),
            ("us-gov-west-1", "https://secretsmanager.us-gov-west-1.amazonaws.com/"),
            ("us-iso-east-1", "https://secretsmanager.us-iso-east-1.c2s.ic.gov/"),
            ("us-isob-east-1", "https://secretsmanager.us-isob-east-1.sc2s.sgov.gov/"),
            ("eu-isoe-west-1", "https://secretsmanager.eu-isoe-west-1.cloud.adc-e.uk/"),
            ("us-isof-south-1", "https://secretsmanager.us-isof-south-1.csp.hci.ic.gov/"),
        ];
        for (region, expected) in cases {
            assert_eq!(resolve(AwsService::SecretsManager, &config, &environment, region), expected, "{region}");
        }
    }

    #[test]
    fn fips_flag_picks_fips_hostname() {
        let environment = AwsEnvironment::empty().with_var("AWS_USE_FIPS_ENDPOINT", "true");
        let config = AwsConfig::default();
        assert_eq!(
            resolve(AwsService::SecretsManager, &config, &environment, "us-east-1"),
            "https://secretsmanager-fips.us-east-1.amazonaws.com/"
        );
        assert_eq!(resolve(AwsService::Ssm, &config, &environment, "us-gov-west-1"), "https://ssm-fips.us-gov-west-1.amazonaws.com/");
        assert_eq!(resolve(AwsService::Sts, &config, &environment, "us-east-1"), "https://sts-fips.us-east-1.amazonaws.com/");
    }

    #[test]
    fn precedence_is_service_setting_then_service_variable_then_global() {
        let mut config = AwsConfig::default();
        let mut environment = AwsEnvironment::empty()
            .with_var("AWS_ENDPOINT_URL", "http://127.0.0.1:4")
            .with_var("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2");
        config.endpoint_url = Some("http://127.0.0.1:3".to_owned());
        config.secrets_manager_endpoint_url = Some("http://127.0.0.1:1".to_owned());

        assert_eq!(resolve(AwsService::SecretsManager, &config, &environment, "us-east-1"), "http://127.0.0.1:1/");
        config.secrets_manager_endpoint_url = None;
        assert_eq!(resolve(AwsService::SecretsManager, &config, &environment, "us-east-1"), "http://127.0.0.1:2/");
        environment = environment.without_var("AWS_ENDPOINT_URL_SECRETS_MANAGER");
        assert_eq!(resolve(AwsService::SecretsManager, &config, &environment, "us-east-1"), "http://127.0.0.1:3/");
        config.endpoint_url = None;
        assert_eq!(resolve(AwsService::SecretsManager, &config, &environment, "us-east-1"), "http://127.0.0.1:4/");
        // The SSM variable never applies to Secrets Manager.
        let environment = AwsEnvironment::empty().with_var("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:5");
        assert_eq!(
            resolve(AwsService::SecretsManager, &config, &environment, "us-east-1"),
            "https://secretsmanager.us-east-1.amazonaws.com/"
        );
        assert_eq!(resolve(AwsService::Ssm, &config, &environment, "us-east-1"), "http://127.0.0.1:5/");
    }

    #[test]
    fn ignore_flag_skips_environment_endpoints_only() {
        let mut config = AwsConfig::default();
        let environment = AwsEnvironment::empty()
            .with_var("AWS_ENDPOINT_URL", "http://127.0.0.1:4")
            .with_var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
        assert_eq!(
            resolve(AwsService::Sts, &config, &environment, "us-east-1"),
            "https://sts.us-east-1.amazonaws.com/"
        );
        config.sts_endpoint_url = Some("http://127.0.0.1:9".to_owned());
        assert_eq!(resolve(AwsService::Sts, &config, &environment, "us-east-1"), "http://127.0.0.1:9/");
    }

    #[test]
    fn invalid_endpoint_names_its_origin() {
        let environment = AwsEnvironment::empty().with_var("AWS_ENDPOINT_URL_SSM", "ftp://example.invalid");
        let error = resolve_endpoint(AwsService::Ssm, &AwsConfig::default(), &environment, "us-east-1").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.message().contains("AWS_ENDPOINT_URL_SSM"), "{}", error.message());

        for bad in ["not a url", "https://user:pw@example.invalid", "https://example.invalid/?a=1"] {
            assert!(parse_endpoint(bad, "test").is_err(), "{bad}");
        }
    }

    #[test]
    fn host_header_omits_default_port() {
        assert_eq!(host_header(&Url::parse("https://a.example:443/").unwrap()), "a.example");
        assert_eq!(host_header(&Url::parse("http://127.0.0.1:5000/").unwrap()), "127.0.0.1:5000");
        assert_eq!(host_header(&Url::parse("http://[::1]:80/").unwrap()), "[::1]");
    }

    #[test]
    fn user_info_is_not_echoed() {
        let error = parse_endpoint("http://admin:hunter2@127.0.0.1:5000", "aws.endpoint_url").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.to_string().contains("[REDACTED]@127.0.0.1:5000"), "{error}");
    }
}
