//! `aws-sm://SECRET_ID[?version_stage=STAGE|?version_id=ID]`: AWS Secrets
//! Manager.
//!
//! `SECRET_ID` is a secret's name, full ARN or partial ARN (the ARN without
//! the `-` and six random characters Secrets Manager appends). With no
//! version query the reference means the `AWSCURRENT` stage.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tracing::debug;

use crate::error::{Error, ErrorClass};
use crate::provider::aws::endpoint::AwsService;
use crate::provider::aws::json::{self, epoch_seconds, parse_response};
use crate::provider::aws::service_error::batch_entry_error;
use crate::provider::aws::wipe;
use crate::provider::aws::{AwsShared, Resolved};
use crate::provider::{Fetched, Provider};
use crate::reference::Reference;
use crate::secret::{Encoding, SecretValue};

const SCHEME: &str = "aws-sm";
const TARGET_PREFIX: &str = "secretsmanager";
const STAGE_KEY: &str = "version_stage";
const VERSION_ID_KEY: &str = "version_id";

/// The stage a reference without a version query means.
const CURRENT_STAGE: &str = "AWSCURRENT";

/// Secret ids per BatchGetSecretValue call: the API's maximum.
const BATCH_LIMIT: usize = 20;

/// Maximum secret id length the API accepts, in characters.
const MAX_SECRET_ID_CHARS: usize = 2048;

/// Reads secrets from AWS Secrets Manager (`aws-sm://`).
///
/// Cloning is cheap: clones share the HTTP client and the credentials
/// cache with each other and with the [`super::SsmProvider`] built
/// alongside.
///
/// Each `fetch` is one `GetSecretValue` call, always naming a stage or
/// version id explicitly. The returned [`Fetched::aliases`] are the cache
/// keys of the same secret and version spelled by full ARN, partial ARN
/// and name, so that reads by any spelling share one cache entry.
#[derive(Clone)]
pub struct SecretsManagerProvider {
    shared: Arc<AwsShared>,
}

/// The version a reference requests.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Version {
    Stage(String),
    Id(String),
}

impl Version {
    fn query(&self) -> (&'static str, &str) {
        match self {
            Version::Stage(stage) => (STAGE_KEY, stage),
            Version::Id(id) => (VERSION_ID_KEY, id),
        }
    }
}

impl SecretsManagerProvider {
    pub(crate) fn new(shared: Arc<AwsShared>) -> SecretsManagerProvider {
        SecretsManagerProvider { shared }
    }

    async fn fetch_one(&self, reference: &Reference) -> Result<Fetched, Error> {
        let version = requested_version(reference)?;
        let resolved = self.shared.resolved()?;

        let (version_field, version_value) = match &version {
            Version::Stage(stage) => ("VersionStage", stage.as_str()),
            Version::Id(id) => ("VersionId", id.as_str()),
        };
        let body = json!({ "SecretId": reference.path(), version_field: version_value }).to_string();
        let response = call(resolved, "GetSecretValue", body.as_bytes()).await?;

        let entry: SecretValueEntry<'_> = parse_response(&response, "Secrets Manager GetSecretValue")?;
        entry.into_fetched(&version)
    }

    /// Fetches up to [`BATCH_LIMIT`] `AWSCURRENT` secrets in one call.
    /// Returns, per requested id, the secret or its own error. Ids that the
    /// response does not cover are left out, for the caller to fetch singly.
    ///
    /// # Errors
    /// The whole call's error.
    async fn fetch_batch(&self, ids: &[&str]) -> Result<HashMap<String, Result<Fetched, Error>>, Error> {
        let resolved = self.shared.resolved()?;
        let body = json!({ "SecretIdList": ids }).to_string();
        let response = call(resolved, "BatchGetSecretValue", body.as_bytes()).await?;
        let batch: BatchResponse<'_> = parse_response(&response, "Secrets Manager BatchGetSecretValue")?;

        let mut results = HashMap::new();
        for error in batch.errors {
            let Some(id) = error.secret_id.filter(|id| ids.contains(&id.as_str())) else {
                continue;
            };
            let error = batch_entry_error(
                "Secrets Manager BatchGetSecretValue",
                error.error_code.as_deref(),
                error.message.as_deref(),
            );
            results.insert(id, Err(error));
        }

        let current = Version::Stage(CURRENT_STAGE.to_owned());
        for entry in batch.secret_values {
            // BatchGetSecretValue returns the AWSCURRENT version. An entry
            // without that stage is not what was asked for (moto 5 returns
            // the old version after UpdateSecretVersionStage), so its ids
            // are fetched singly instead.
            if !entry.version_stages.iter().any(|stage| stage == CURRENT_STAGE) {
                continue;
            }
            let matching: Vec<&str> = ids.iter().copied().filter(|id| entry.is_named_by(id)).collect();
            if matching.is_empty() {
                continue;
            }
            let fetched = entry.into_fetched(&current);
            for id in matching {
                let copy = match &fetched {
                    Ok(fetched) => Ok(copy_fetched(fetched)),
                    Err(error) => Err(error.clone()),
                };
                results.insert(id.to_owned(), copy);
            }
        }
        Ok(results)
    }
}

async fn call(resolved: &Resolved, operation: &str, body: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    resolved
        .api
        .call_json(
            AwsService::SecretsManager,
            &resolved.secrets_manager_endpoint,
            TARGET_PREFIX,
            operation,
            body,
        )
        .await
}

#[async_trait]
impl Provider for SecretsManagerProvider {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn validate(&self, reference: &Reference) -> Result<(), Error> {
        requested_version(reference).map(|_| ())
    }

    /// Adds `version_stage=AWSCURRENT` when no version is given, so that
    /// `aws-sm://x` and `aws-sm://x?version_stage=AWSCURRENT` share a key.
    fn cache_key(&self, reference: &Reference) -> String {
        if reference.query(STAGE_KEY).is_none() && reference.query(VERSION_ID_KEY).is_none() {
            reference.with_query(STAGE_KEY, CURRENT_STAGE).canonical()
        } else {
            reference.canonical()
        }
    }

    async fn fetch(&self, reference: &Reference) -> Result<Fetched, Error> {
        self.fetch_one(reference)
            .await
            .map_err(|error| error.for_reference(&reference.to_string()))
    }

    /// Reads `AWSCURRENT` references with BatchGetSecretValue, twenty ids
    /// per call, and everything else (pinned stages or version ids, and
    /// any id a batch response leaves out) with single fetches.
    ///
    /// A batch call that fails as a whole with a transient error fails
    /// every reference in it; any other whole-call failure (for example a
    /// policy that allows GetSecretValue but not BatchGetSecretValue)
    /// falls back to single fetches, which report each secret's own error.
    async fn fetch_many(&self, references: &[Reference]) -> Vec<Result<Fetched, Error>> {
        let mut results: Vec<Option<Result<Fetched, Error>>> = references.iter().map(|_| None).collect();

        // BatchGetSecretValue returns the AWSCURRENT version only, so only
        // references to that stage go into a batch.
        let batchable: Vec<bool> = references
            .iter()
            .map(|reference| {
                matches!(requested_version(reference), Ok(Version::Stage(stage)) if stage == CURRENT_STAGE)
            })
            .collect();
        let mut batch_ids: Vec<&str> = Vec::new();
        for (reference, _) in references.iter().zip(&batchable).filter(|(_, batchable)| **batchable) {
            if !batch_ids.contains(&reference.path()) {
                batch_ids.push(reference.path());
            }
        }

        let chunks: Vec<&[&str]> = batch_ids.chunks(BATCH_LIMIT).collect();
        let responses = join_all(chunks.iter().map(|chunk| self.fetch_batch(chunk))).await;
        for (chunk, response) in chunks.iter().zip(responses) {
            let in_chunk: Vec<usize> = (0..references.len())
                .filter(|index| batchable[*index] && chunk.contains(&references[*index].path()))
                .collect();
            match response {
                Ok(mut by_id) => {
                    for (position, index) in in_chunk.iter().enumerate() {
                        let id = references[*index].path();
                        let used_later = in_chunk[position + 1..]
                            .iter()
                            .any(|later| references[*later].path() == id);
                        results[*index] = take_or_copy(&mut by_id, id, used_later);
                    }
                }
                Err(error) if error.is_transient() => {
                    for index in in_chunk {
                        results[index] = Some(Err(error.clone()));
                    }
                }
                Err(error) => {
                    debug!(error = %error, "BatchGetSecretValue failed; fetching the secrets one at a time");
                }
            }
        }

        let singles = results
            .iter()
            .enumerate()
            .filter(|(_, result)| result.is_none())
            .map(|(index, _)| index)
            .collect::<Vec<_>>();
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

/// Hands out the batch result for `id`: a copy when a later reference
/// also needs it, the result itself otherwise.
fn take_or_copy(
    by_id: &mut HashMap<String, Result<Fetched, Error>>,
    id: &str,
    used_later: bool,
) -> Option<Result<Fetched, Error>> {
    if used_later {
        by_id.get(id).map(|result| match result {
            Ok(fetched) => Ok(copy_fetched(fetched)),
            Err(error) => Err(error.clone()),
        })
    } else {
        by_id.remove(id)
    }
}

impl fmt::Debug for SecretsManagerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SecretsManagerProvider");
        self.shared.debug_fields(&mut out, |resolved| &resolved.secrets_manager_endpoint);
        out.finish()
    }
}

/// Checks a reference's query and secret id and returns the version it
/// requests.
fn requested_version(reference: &Reference) -> Result<Version, Error> {
    let invalid = |message: String| Error::invalid_reference(message).for_reference(&reference.to_string());
    reference.check_query_keys(&[STAGE_KEY, VERSION_ID_KEY])?;

    let id = reference.path();
    if id.chars().count() > MAX_SECRET_ID_CHARS {
        return Err(invalid(format!(
            "the secret id is longer than {MAX_SECRET_ID_CHARS} characters"
        )));
    }

    match (reference.query(STAGE_KEY), reference.query(VERSION_ID_KEY)) {
        (Some(_), Some(_)) => Err(invalid(format!(
            "give either {STAGE_KEY} or {VERSION_ID_KEY}, not both; a version id already names one version"
        ))),
        (Some(""), None) => Err(invalid(format!("{STAGE_KEY} is empty"))),
        (None, Some("")) => Err(invalid(format!("{VERSION_ID_KEY} is empty"))),
        (Some(stage), None) => Ok(Version::Stage(stage.to_owned())),
        (None, Some(id)) => Ok(Version::Id(id.to_owned())),
        (None, None) => Ok(Version::Stage(CURRENT_STAGE.to_owned())),
    }
}

/// One secret version as GetSecretValue and BatchGetSecretValue return it.
/// The value fields are borrowed raw from the response body so that
/// serde_json makes no copy of them.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretValueEntry<'a> {
    #[serde(rename = "ARN")]
    arn: Option<String>,
    name: Option<String>,
    version_id: Option<String>,
    #[serde(borrow)]
    secret_string: Option<&'a RawValue>,
    #[serde(borrow)]
    secret_binary: Option<&'a RawValue>,
    #[serde(default)]
    version_stages: Vec<String>,
    created_date: Option<f64>,
}

impl SecretValueEntry<'_> {
    /// Checks whether `id` (a name, full ARN or partial ARN) names this
    /// secret.
    fn is_named_by(&self, id: &str) -> bool {
        self.name.as_deref() == Some(id)
            || self.arn.as_deref() == Some(id)
            || partial_arn(self.arn.as_deref(), self.name.as_deref()).as_deref() == Some(id)
    }

    /// Decodes the value and collects the metadata. `version` is the
    /// version the reference asked for; the aliases carry the same query.
    fn into_fetched(self, version: &Version) -> Result<Fetched, Error> {
        let value = self.decode_value()?;
        let mut fetched = Fetched::new(value);
        fetched.aliases = aliases(self.arn.as_deref(), self.name.as_deref(), version);
        fetched.created_at = self.created_date.and_then(epoch_seconds);
        fetched.name = self.name;
        fetched.arn = self.arn;
        fetched.version_id = self.version_id;
        fetched.version_stages = self.version_stages;
        Ok(fetched)
    }

    fn decode_value(&self) -> Result<SecretValue, Error> {
        if let Some(text) = self.secret_string {
            return json::decode_string(text, "SecretString").map(SecretValue::text);
        }
        if let Some(encoded) = self.secret_binary {
            let encoded = json::decode_string_zeroizing(encoded, "SecretBinary")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|_| {
                    Error::new(
                        ErrorClass::Internal,
                        "Secrets Manager returned a SecretBinary that is not valid base64",
                    )
                })?;
            return Ok(SecretValue::binary(wipe::exact_bytes(bytes)));
        }
        Err(Error::new(
            ErrorClass::Internal,
            "Secrets Manager returned a secret version with neither SecretString nor SecretBinary",
        ))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchResponse<'a> {
    #[serde(borrow, default)]
    secret_values: Vec<SecretValueEntry<'a>>,
    #[serde(default)]
    errors: Vec<BatchError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchError {
    secret_id: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
}

/// Builds the cache key of `secret_id` at `version`, as
/// [`Provider::cache_key`] computes it.
fn key_for(secret_id: &str, version: &Version) -> String {
    Reference::from_parts(SCHEME, secret_id, &[version.query()]).canonical()
}

/// The cache keys of one secret version spelled by full ARN, partial ARN
/// and name, without duplicates.
fn aliases(arn: Option<&str>, name: Option<&str>, version: &Version) -> Vec<String> {
    let partial = partial_arn(arn, name);
    let mut keys: Vec<String> = Vec::with_capacity(3);
    for id in [arn, partial.as_deref(), name].into_iter().flatten() {
        let key = key_for(id, version);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Strips the `-XXXXXX` suffix Secrets Manager appends to the name from
/// an ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf`
/// becomes `...:secret:prod/db`. `None` when the ARN does not end in
/// `:secret:NAME-` plus six characters.
fn partial_arn(arn: Option<&str>, name: Option<&str>) -> Option<String> {
    let (arn, name) = (arn?, name?);
    const SUFFIX_CHARS: usize = 7;
    let split = arn.len().checked_sub(SUFFIX_CHARS)?;
    let (partial, suffix) = (arn.get(..split)?, arn.get(split..)?);
    let suffix_is_random = suffix.starts_with('-') && suffix[1..].bytes().all(|byte| byte.is_ascii_alphanumeric());
    let names_secret = partial
        .strip_suffix(name)
        .is_some_and(|prefix| prefix.ends_with(":secret:"));
    (suffix_is_random && names_secret).then(|| partial.to_owned())
}

/// Copies a `Fetched`, for when one batch entry serves two references. The value is copied straight into new
/// zeroizing storage.
fn copy_fetched(fetched: &Fetched) -> Fetched {
    let bytes = fetched.value.expose_bytes().to_vec();
    let value = match (fetched.value.encoding(), String::from_utf8(bytes)) {
        (Encoding::Text, Ok(text)) => SecretValue::text(text),
        (_, Ok(text)) => SecretValue::binary(text.into_bytes()),
        (_, Err(error)) => SecretValue::binary(error.into_bytes()),
    };
    let mut copy = Fetched::new(value);
    copy.name = fetched.name.clone();
    copy.arn = fetched.arn.clone();
    copy.version_id = fetched.version_id.clone();
    copy.version_stages = fetched.version_stages.clone();
    copy.version_number = fetched.version_number;
    copy.created_at = fetched.created_at;
    copy.valid_for = fetched.valid_for;
    copy.aliases = fetched.aliases.clone();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AwsConfig;
    use crate::provider::aws::{from_config_with_environment, AwsEnvironment};

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";

    fn provider() -> SecretsManagerProvider {
        let environment = AwsEnvironment::empty()
            .with_var("AWS_REGION", "us-east-1")
            .with_var("AWS_EC2_METADATA_DISABLED", "true");
        from_config_with_environment(&AwsConfig::default(), environment).unwrap().0
    }

    fn reference(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    #[test]
    fn cache_key_defaults_to_current_stage() {
        let provider = provider();
        assert_eq!(provider.cache_key(&reference("aws-sm://prod/db")), "aws-sm://prod/db?version_stage=AWSCURRENT");
        assert_eq!(
            provider.cache_key(&reference("aws-sm://prod/db?version_stage=AWSCURRENT")),
            provider.cache_key(&reference("aws-sm://prod/db"))
        );
        assert_eq!(
            provider.cache_key(&reference("aws-sm://prod/db?version_stage=AWSPREVIOUS")),
            "aws-sm://prod/db?version_stage=AWSPREVIOUS"
        );
        assert_eq!(provider.cache_key(&reference("aws-sm://prod/db?version_id=v1")), "aws-sm://prod/db?version_id=v1");
    }

    #[test]
    fn validate_rejects_both_version_keys() {
        let error = provider()
            .validate(&reference("aws-sm://prod/db?version_stage=AWSCURRENT&version_id=v1"))
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::InvalidReference);
        assert!(error.message().contains("not both"), "{}", error.message());
    }

    #[test]
    fn validate_rejects_unknown_and_empty_keys() {
        let provider = provider();
        for bad in ["aws-sm://prod/db?stage=AWSCURRENT", "aws-sm://prod/db?version_stage=", "aws-sm://prod/db?version_id="] {
            assert_eq!(provider.validate(&reference(bad)).unwrap_err().class(), ErrorClass::InvalidReference, "{bad}");
        }
        assert!(provider.validate(&reference(&format!("aws-sm://{ARN}?version_id=v1"))).is_ok());
    }

    #[test]
    fn partial_arn_drops_random_suffix() {
        assert_eq!(
            partial_arn(Some(ARN), Some("prod/db")).as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db")
        );
        // A name that itself ends like a suffix is not cut twice.
        assert_eq!(
            partial_arn(Some("arn:aws:secretsmanager:us-east-1:1:secret:app-abcdef-XyZ123"), Some("app-abcdef")).as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:1:secret:app-abcdef")
        );
        assert_eq!(partial_arn(Some(ARN), Some("other")), None);
        assert_eq!(partial_arn(Some("short"), Some("x")), None);
        assert_eq!(partial_arn(None, Some("prod/db")), None);
    }

    #[test]
    fn aliases_cover_every_spelling_with_same_version() {
        let version = Version::Stage("AWSPREVIOUS".to_owned());
        assert_eq!(
            aliases(Some(ARN), Some("prod/db"), &version),
            vec![
                format!("aws-sm://{ARN}?version_stage=AWSPREVIOUS"),
                "aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db?version_stage=AWSPREVIOUS".to_owned(),
                "aws-sm://prod/db?version_stage=AWSPREVIOUS".to_owned(),
            ]
        );
        let version = Version::Id("v1".to_owned());
        assert_eq!(aliases(None, Some("prod/db"), &version), vec!["aws-sm://prod/db?version_id=v1".to_owned()]);
    }

    #[test]
    fn aliases_match_cache_keys() {
        let provider = provider();
        let version = Version::Stage(CURRENT_STAGE.to_owned());
        let keys = aliases(Some(ARN), Some("prod/db"), &version);
        assert!(keys.contains(&provider.cache_key(&reference("aws-sm://prod/db"))));
        assert!(keys.contains(&provider.cache_key(&reference(&format!("aws-sm://{ARN}")))));
    }

    #[test]
    fn secret_string_entry_becomes_fetched() {
        let body = br#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf","Name":"prod/db","VersionId":"v-1","SecretString":"{\"password\":\"p\u00e4ss\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1523477145.713}"#;
        let entry: SecretValueEntry<'_> = parse_response(body, "test").unwrap();
        let fetched = entry.into_fetched(&Version::Stage(CURRENT_STAGE.to_owned())).unwrap();
        assert_eq!(fetched.value.expose_bytes(), "{\"password\":\"päss\"}".as_bytes());
        assert_eq!(fetched.value.encoding(), Encoding::Text);
        assert_eq!(fetched.name.as_deref(), Some("prod/db"));
        assert_eq!(fetched.arn.as_deref(), Some(ARN));
        assert_eq!(fetched.version_id.as_deref(), Some("v-1"));
        assert_eq!(fetched.version_stages, vec!["AWSCURRENT".to_owned()]);
        assert_eq!(fetched.created_at, epoch_seconds(1523477145.713));
        assert_eq!(fetched.aliases.len(), 3);
    }

    #[test]
    fn secret_binary_entry_is_base64_decoded() {
        let body = br#"{"Name":"bin","SecretBinary":"AAEC\/w==","VersionStages":["AWSCURRENT"]}"#;
        let entry: SecretValueEntry<'_> = parse_response(body, "test").unwrap();
        let fetched = entry.into_fetched(&Version::Stage(CURRENT_STAGE.to_owned())).unwrap();
        assert_eq!(fetched.value.expose_bytes(), &[0u8, 1, 2, 255]);
        assert_eq!(fetched.value.encoding(), Encoding::Binary);
    }

    #[test]
    fn entry_without_value_is_internal_error() {
        let entry: SecretValueEntry<'_> = parse_response(br#"{"Name":"x"}"#, "test").unwrap();
        let error = entry.into_fetched(&Version::Stage(CURRENT_STAGE.to_owned())).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Internal);
    }

    #[test]
    fn entry_is_named_by_name_and_both_arns() {
        let body = format!(r#"{{"ARN":"{ARN}","Name":"prod/db","SecretString":"x"}}"#);
        let entry: SecretValueEntry<'_> = parse_response(body.as_bytes(), "test").unwrap();
        assert!(entry.is_named_by("prod/db"));
        assert!(entry.is_named_by(ARN));
        assert!(entry.is_named_by("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db"));
        assert!(!entry.is_named_by("prod"));
    }
}
