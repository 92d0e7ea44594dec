//! `aws-ssm:///PATH/NAME` or `aws-ssm://NAME[?version=N|?label=L]`: AWS
//! Systems Manager Parameter Store.
//!
//! A parameter name with a hierarchy starts with `/`, which the reference
//! writes as a third slash: `aws-ssm:///app/db` is the parameter `/app/db`.
//! A parameter ARN also works as the path. SecureString parameters are
//! always decrypted; StringList values are returned as their
//! comma-separated text.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tracing::debug;

use crate::error::{Error, ErrorClass};
use crate::provider::aws::endpoint::AwsService;
use crate::provider::aws::json::{self, epoch_seconds, parse_response};
use crate::provider::aws::{AwsShared, Resolved};
use crate::provider::{Fetched, Provider};
use crate::reference::Reference;
use crate::secret::SecretValue;

const SCHEME: &str = "aws-ssm";
const TARGET_PREFIX: &str = "AmazonSSM";
const VERSION_KEY: &str = "version";
const LABEL_KEY: &str = "label";

/// Names per GetParameters call: the API's maximum.
const BATCH_LIMIT: usize = 10;

/// Maximum parameter name or ARN length the API accepts, in characters.
const MAX_NAME_CHARS: usize = 2048;

/// Reads parameters from AWS Systems Manager Parameter Store
/// (`aws-ssm://`).
///
/// Cloning is cheap: clones share the HTTP client and the credentials
/// cache with each other and with the [`super::SecretsManagerProvider`]
/// built alongside.
#[derive(Clone)]
pub struct SsmProvider {
    shared: Arc<AwsShared>,
}

/// The version of a parameter a reference requests.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Selector {
    Latest,
    Version(u64),
    Label(String),
}

impl Selector {
    /// Appends SSM's `:version` or `:label` suffix to `name`.
    fn apply(&self, name: &str) -> String {
        match self {
            Selector::Latest => name.to_owned(),
            Selector::Version(version) => format!("{name}:{version}"),
            Selector::Label(label) => format!("{name}:{label}"),
        }
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        match self {
            Selector::Latest => Vec::new(),
            Selector::Version(version) => vec![(VERSION_KEY, version.to_string())],
            Selector::Label(label) => vec![(LABEL_KEY, label.clone())],
        }
    }
}

impl SsmProvider {
    pub(crate) fn new(shared: Arc<AwsShared>) -> SsmProvider {
        SsmProvider { shared }
    }

    async fn fetch_one(&self, reference: &Reference) -> Result<Fetched, Error> {
        let selector = requested_selector(reference)?;
        let resolved = self.shared.resolved()?;

        let body = json!({ "Name": selector.apply(reference.path()), "WithDecryption": true }).to_string();
        let response = call(resolved, "GetParameter", body.as_bytes()).await?;

        let parsed: GetParameterResponse<'_> = parse_response(&response, "SSM GetParameter")?;
        parsed.parameter.into_fetched(&selector)
    }

    /// Fetches up to [`BATCH_LIMIT`] parameters (with their selectors) in
    /// one call. Returns, per requested name, the parameter or `NotFound`.
    /// Names the response does not cover are left out, for the caller to
    /// fetch singly.
    ///
    /// # Errors
    /// The whole call's error.
    async fn fetch_batch(&self, requests: &[(String, Selector)]) -> Result<HashMap<String, Result<Fetched, Error>>, Error> {
        let resolved = self.shared.resolved()?;
        let names: Vec<&str> = requests.iter().map(|(name, _)| name.as_str()).collect();
        let body = json!({ "Names": names, "WithDecryption": true }).to_string();
        let response = call(resolved, "GetParameters", body.as_bytes()).await?;
        let parsed: GetParametersResponse<'_> = parse_response(&response, "SSM GetParameters")?;

        let mut results = HashMap::new();
        for invalid in parsed.invalid_parameters {
            if names.contains(&invalid.as_str()) {
                let error = Error::new(
                    ErrorClass::NotFound,
                    format!("SSM GetParameters reported parameter {invalid} as not found (InvalidParameters)"),
                );
                results.insert(invalid, Err(error));
            }
        }
        for parameter in parsed.parameters {
            let Some((requested, selector)) = requests.iter().find(|(name, _)| parameter.is_named_by(name)) else {
                continue;
            };
            results.insert(requested.clone(), parameter.into_fetched(selector));
        }
        Ok(results)
    }
}

async fn call(resolved: &Resolved, operation: &str, body: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    resolved
        .api
        .call_json(AwsService::Ssm, &resolved.ssm_endpoint, TARGET_PREFIX, operation, body)
        .await
}

#[async_trait]
impl Provider for SsmProvider {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn validate(&self, reference: &Reference) -> Result<(), Error> {
        requested_selector(reference).map(|_| ())
    }

    async fn fetch(&self, reference: &Reference) -> Result<Fetched, Error> {
        self.fetch_one(reference)
            .await
            .map_err(|error| error.for_reference(&reference.to_string()))
    }

    /// Reads parameters with GetParameters, ten names per call. Names in
    /// the response's `InvalidParameters` are `NotFound`. Names the response
    /// leaves out, and every name of a batch that fails as a whole with a
    /// non-transient error, are fetched one at a time.
    async fn fetch_many(&self, references: &[Reference]) -> Vec<Result<Fetched, Error>> {
        let mut results: Vec<Option<Result<Fetched, Error>>> = references.iter().map(|_| None).collect();

        // Each distinct `name[:selector]` string once, in first-seen order.
        let mut requests: Vec<(String, Selector)> = Vec::new();
        let mut request_of: Vec<Option<String>> = Vec::with_capacity(references.len());
        for reference in references {
            let request = requested_selector(reference)
                .ok()
                .map(|selector| (selector.apply(reference.path()), selector));
            if let Some(request) = &request {
                if !requests.iter().any(|(name, _)| *name == request.0) {
                    requests.push(request.clone());
                }
            }
            request_of.push(request.map(|(name, _)| name));
        }

        let chunks: Vec<&[(String, Selector)]> = requests.chunks(BATCH_LIMIT).collect();
        let responses = join_all(chunks.iter().map(|chunk| self.fetch_batch(chunk))).await;
        for (chunk, response) in chunks.iter().zip(responses) {
            let in_chunk = |name: &String| chunk.iter().any(|(requested, _)| requested == name);
            match response {
                Ok(mut by_name) => {
                    for index in 0..references.len() {
                        let Some(name) = request_of[index].as_ref().filter(|name| in_chunk(name)) else {
                            continue;
                        };
                        let used_later = request_of[index + 1..].iter().any(|later| later.as_ref() == Some(name));
                        results[index] = if used_later {
                            by_name.get(name).map(|result| match result {
                                Ok(fetched) => Ok(copy_fetched(fetched)),
                                Err(error) => Err(error.clone()),
                            })
                        } else {
                            by_name.remove(name)
                        };
                    }
                }
                Err(error) if error.is_transient() => {
                    for index in 0..references.len() {
                        if request_of[index].as_ref().is_some_and(in_chunk) {
                            results[index] = Some(Err(error.clone()));
                        }
                    }
                }
                Err(error) => {
                    debug!(error = %error, "GetParameters failed; fetching the parameters one at a time");
                }
            }
        }

        let singles: Vec<usize> = (0..references.len()).filter(|index| results[*index].is_none()).collect();
        let fetched = join_all(singles.iter().map(|index| self.fetch(&references[*index]))).await;
        for (index, result) in singles.into_iter().zip(fetched) {
            results[index] = Some(result);
        }

        results
            .into_iter()
            .zip(references)
            .map(|(result, reference)| {
                result
                    .unwrap_or_else(|| Err(Error::new(ErrorClass::Internal, "no result was produced")))
                    .map_err(|error| error.for_reference(&reference.to_string()))
            })
            .collect()
    }
}

impl fmt::Debug for SsmProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SsmProvider");
        self.shared.debug_fields(&mut out, |resolved| &resolved.ssm_endpoint);
        out.finish()
    }
}

/// Checks a reference's name and query and returns the selector it
/// requests.
fn requested_selector(reference: &Reference) -> Result<Selector, Error> {
    let invalid = |message: String| Error::invalid_reference(message).for_reference(&reference.to_string());
    reference.check_query_keys(&[VERSION_KEY, LABEL_KEY])?;

    let name = reference.path();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(format!("the parameter name is longer than {MAX_NAME_CHARS} characters")));
    }
    if !name.starts_with("arn:") {
        if name.contains('/') && !name.starts_with('/') {
            return Err(invalid(format!(
                "SSM parameter names with a hierarchy start with '/'; write aws-ssm:///{name} (three slashes) \
                 for the parameter /{name}"
            )));
        }
        if name.contains(':') {
            return Err(invalid(format!(
                "SSM parameter names cannot contain ':'; select a version with ?{VERSION_KEY}=N or a label with ?{LABEL_KEY}=NAME"
            )));
        }
    }

    match (reference.query(VERSION_KEY), reference.query(LABEL_KEY)) {
        (Some(_), Some(_)) => Err(invalid(format!("give either {VERSION_KEY} or {LABEL_KEY}, not both"))),
        (Some(version), None) => match version.parse::<u64>() {
            Ok(number) if number > 0 => Ok(Selector::Version(number)),
            _ => Err(invalid(format!(
                "{VERSION_KEY} must be a positive integer, not `{version}`"
            ))),
        },
        (None, Some("")) => Err(invalid(format!("{LABEL_KEY} is empty"))),
        (None, Some(label)) => Ok(Selector::Label(label.to_owned())),
        (None, None) => Ok(Selector::Latest),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParameterResponse<'a> {
    #[serde(borrow)]
    parameter: Parameter<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParametersResponse<'a> {
    #[serde(borrow, default)]
    parameters: Vec<Parameter<'a>>,
    #[serde(default)]
    invalid_parameters: Vec<String>,
}

/// One parameter version as GetParameter and GetParameters return it.
/// `Value` is borrowed raw from the response body so that serde_json makes
/// no copy of it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parameter<'a> {
    name: Option<String>,
    #[serde(rename = "ARN")]
    arn: Option<String>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    version: Option<u64>,
    /// `:3` or `:label` when the request named a selector.
    selector: Option<String>,
    last_modified_date: Option<f64>,
}

impl Parameter<'_> {
    /// Checks whether `requested` (`name[:selector]` or `arn[:selector]`)
    /// names this parameter.
    fn is_named_by(&self, requested: &str) -> bool {
        let selector = self.selector.as_deref().unwrap_or("");
        [self.name.as_deref(), self.arn.as_deref()]
            .into_iter()
            .flatten()
            .any(|name| requested.strip_prefix(name) == Some(selector))
    }

    fn into_fetched(self, selector: &Selector) -> Result<Fetched, Error> {
        let Some(raw) = self.value else {
            return Err(Error::new(ErrorClass::Internal, "SSM returned a parameter without a Value"));
        };
        let value = SecretValue::text(json::decode_string(raw, "Value")?);

        let mut fetched = Fetched::new(value);
        fetched.aliases = aliases(self.name.as_deref(), self.arn.as_deref(), selector);
        fetched.version_number = self.version;
        fetched.created_at = self.last_modified_date.and_then(epoch_seconds);
        // GetParameter does not list a version's labels; the one asked for
        // is known to be on it.
        if let Selector::Label(label) = selector {
            fetched.version_stages = vec![label.clone()];
        }
        fetched.name = self.name;
        fetched.arn = self.arn;
        Ok(fetched)
    }
}

/// The cache keys of one parameter version spelled by name and by ARN.
fn aliases(name: Option<&str>, arn: Option<&str>, selector: &Selector) -> Vec<String> {
    let query = selector.query();
    let query: Vec<(&str, &str)> = query.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let mut keys: Vec<String> = Vec::with_capacity(2);
    for id in [name, arn].into_iter().flatten() {
        let key = Reference::from_parts(SCHEME, id, &query).canonical();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn copy_fetched(fetched: &Fetched) -> Fetched {
    let bytes = fetched.value.expose_bytes().to_vec();
    let value = match String::from_utf8(bytes) {
        Ok(text) => SecretValue::text(text),
        Err(error) => SecretValue::binary(error.into_bytes()),
    };
    let mut copy = Fetched::new(value);
    copy.name = fetched.name.clone();
    copy.arn = fetched.arn.clone();
    copy.version_number = fetched.version_number;
    copy.version_stages = fetched.version_stages.clone();
    copy.created_at = fetched.created_at;
    copy.aliases = fetched.aliases.clone();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AwsConfig;
    use crate::provider::aws::{from_config_with_environment, AwsEnvironment};

    fn provider() -> SsmProvider {
        let environment = AwsEnvironment::empty()
            .with_var("AWS_REGION", "us-east-1")
            .with_var("AWS_EC2_METADATA_DISABLED", "true");
        from_config_with_environment(&AwsConfig::default(), environment).unwrap().1
    }

    fn selector(text: &str) -> Result<Selector, Error> {
        requested_selector(&Reference::parse(text).unwrap())
    }

    #[test]
    fn selectors_from_query() {
        assert_eq!(selector("aws-ssm:///app/db").unwrap(), Selector::Latest);
        assert_eq!(selector("aws-ssm:///app/db?version=3").unwrap(), Selector::Version(3));
        assert_eq!(selector("aws-ssm://plain?label=prod").unwrap(), Selector::Label("prod".to_owned()));
        assert_eq!(Selector::Version(3).apply("/app/db"), "/app/db:3");
        assert_eq!(Selector::Label("prod".to_owned()).apply("plain"), "plain:prod");
    }

    #[test]
    fn invalid_references_are_rejected() {
        for bad in [
            "aws-ssm:///app/db?version=0",
            "aws-ssm:///app/db?version=-1",
            "aws-ssm:///app/db?version=latest",
            "aws-ssm:///app/db?version=1&label=prod",
            "aws-ssm:///app/db?label=",
            "aws-ssm:///app/db?stage=x",
            "aws-ssm://name:3",
        ] {
            assert_eq!(selector(bad).unwrap_err().class(), ErrorClass::InvalidReference, "{bad}");
        }
    }

    #[test]
    fn hierarchy_without_leading_slash_gets_a_hint() {
        let error = provider().validate(&Reference::parse("aws-ssm://app/db").unwrap()).unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidReference);
        assert!(error.message().contains("aws-ssm:///app/db"), "{}", error.message());
    }

    #[test]
    fn arn_path_is_accepted() {
        assert_eq!(
            selector("aws-ssm://arn:aws:ssm:us-east-1:123456789012:parameter/app/db?version=2").unwrap(),
            Selector::Version(2)
        );
    }

    #[test]
    fn parameter_becomes_fetched() {
        let body = br#"{"Parameter":{"Name":"/app/db","Type":"SecureString","Value":"s3cr\u0065t","Version":4,"Selector":":prod","LastModifiedDate":1700000000.25,"ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/app/db","DataType":"text"}}"#;
        let parsed: GetParameterResponse<'_> = parse_response(body, "test").unwrap();
        let fetched = parsed.parameter.into_fetched(&Selector::Label("prod".to_owned())).unwrap();
        assert_eq!(fetched.value.expose_bytes(), b"s3cret");
        assert_eq!(fetched.name.as_deref(), Some("/app/db"));
        assert_eq!(fetched.arn.as_deref(), Some("arn:aws:ssm:us-east-1:123456789012:parameter/app/db"));
        assert_eq!(fetched.version_number, Some(4));
        assert_eq!(fetched.version_stages, vec!["prod".to_owned()]);
        assert_eq!(fetched.created_at, epoch_seconds(1_700_000_000.25));
        assert_eq!(
            fetched.aliases,
            vec![
                "aws-ssm:///app/db?label=prod".to_owned(),
                "aws-ssm://arn:aws:ssm:us-east-1:123456789012:parameter/app/db?label=prod".to_owned(),
            ]
        );
    }

    #[test]
    fn parameter_matches_requested_name_with_selector() {
        let body = br#"{"Name":"/app/db","Value":"x","Selector":":3","ARN":"arn:aws:ssm:us-east-1:1:parameter/app/db"}"#;
        let parameter: Parameter<'_> = parse_response(body, "test").unwrap();
        assert!(parameter.is_named_by("/app/db:3"));
        assert!(parameter.is_named_by("arn:aws:ssm:us-east-1:1:parameter/app/db:3"));
        assert!(!parameter.is_named_by("/app/db"));
        assert!(!parameter.is_named_by("/app/db:4"));
    }
}
