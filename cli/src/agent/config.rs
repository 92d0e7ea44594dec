//! Settings of `keystead agent`: the `[agent]` table, the flags, the
//! environment variables the AWS extension reads, and the defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use crate::agent::AgentArgs;
use crate::output::Failure;

/// The port of the AWS Parameters and Secrets Lambda extension and the AWS
/// Secrets Manager Agent, so callers written for them need no change.
pub(crate) const DEFAULT_PORT: u16 = 2773;

/// Open connections served at once; more get status 429. 800 is the AWS
/// Secrets Manager Agent's default, sized for a busy host where slow
/// backend calls keep many requests waiting.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 800;

/// Time allowed for one request. A cold read makes up to three backend
/// attempts of ten seconds each (the AWS provider's defaults), plus retry
/// backoff, so 40 seconds lets a slow read finish instead of cutting it
/// short.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

/// How long a connection may take to send a request's headers, idle
/// keep-alive time included. Closing idle connections frees their place
/// under the connection limit.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request body accepted. Every route is a GET without a body; a
/// small allowance covers clients that send an empty JSON object.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1024;

/// Environment variables the token is read from: the first that is set,
/// in this order, as the AWS extension and agent read it.
pub(crate) const DEFAULT_TOKEN_VARIABLES: [&str; 3] = ["AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"];

/// Request headers that may carry the token. The second is the one the AWS
/// Secrets Manager Agent also accepts.
pub(crate) const DEFAULT_TOKEN_HEADERS: [&str; 2] = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"];

/// Path prefix of the Secrets Manager Agent's path form, `/v1/SECRET_ID`.
pub(crate) const DEFAULT_PATH_PREFIX: &str = "/v1/";

/// Reference schemes `/v1/secret?ref=` serves unless `allowed_schemes` is
/// set: the remote backends only. `env` and `file` would hand any
/// caller holding the token the agent's own environment (its AWS
/// credentials included) and every file the agent can read.
pub(crate) const DEFAULT_ALLOWED_SCHEMES: [&str; 3] = ["aws-sm", "aws-ssm", "vault"];

/// Extension name registered with the Lambda Extensions API. Lambda
/// requires it to equal the file name in /opt/extensions.
pub(crate) const DEFAULT_EXTENSION_NAME: &str = "keystead";

/// Environment variable the Lambda extension takes its port from.
const PORT_VARIABLE: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";

/// Environment variable the Lambda extension takes its connection limit
/// from.
const MAX_CONNECTIONS_VARIABLE: &str = "PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS";

/// The `[agent]` table of keystead.toml.
///
/// ```toml
/// [agent]
/// listen = "127.0.0.1:2773"
/// max_connections = 800
/// request_timeout = "40s"
/// prefetch = ["aws-sm://prod/db"]
/// allowed_schemes = ["aws-sm", "aws-ssm", "vault", "env"]
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AgentTable {
    /// Address and port to listen on.
    pub(crate) listen: Option<SocketAddr>,
    /// Open connections served at once.
    pub(crate) max_connections: Option<usize>,
    /// Time allowed for one request.
    #[serde(with = "keystead::config::optional_duration_text")]
    pub(crate) request_timeout: Option<Duration>,
    /// Time allowed to send request headers, idle keep-alive included.
    #[serde(with = "keystead::config::optional_duration_text")]
    pub(crate) idle_timeout: Option<Duration>,
    /// Largest request body accepted, in bytes.
    pub(crate) max_body_bytes: Option<usize>,
    /// Environment variables to read the token from, first set wins.
    pub(crate) token_variables: Option<Vec<String>>,
    /// Request headers that may carry the token.
    pub(crate) token_headers: Option<Vec<String>>,
    /// Prefix of the `/v1/SECRET_ID` path form.
    pub(crate) path_prefix: Option<String>,
    /// Reference schemes served by `/v1/secret?ref=`, replacing
    /// `DEFAULT_ALLOWED_SCHEMES`.
    pub(crate) allowed_schemes: Option<Vec<String>>,
    /// References to load at start.
    pub(crate) prefetch: Vec<String>,
    /// Register as a Lambda external extension.
    pub(crate) lambda_extension: Option<bool>,
    /// Name to register the extension under.
    pub(crate) lambda_extension_name: Option<String>,
}

/// The effective settings.
#[derive(Clone, Debug)]
pub(crate) struct AgentSettings {
    pub(crate) listen: SocketAddr,
    pub(crate) max_connections: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) token_variables: Vec<String>,
    pub(crate) token_headers: Vec<String>,
    pub(crate) path_prefix: String,
    /// Lowercase scheme names, without `://`.
    pub(crate) allowed_schemes: Vec<String>,
    pub(crate) prefetch: Vec<String>,
    pub(crate) lambda_extension: bool,
    pub(crate) lambda_extension_name: String,
}

impl AgentSettings {
    /// Flags over the AWS extension's environment variables over the table
    /// over the defaults.
    pub(crate) fn merge(table: &AgentTable, args: &AgentArgs) -> Result<AgentSettings, Failure> {
        let mut listen = table
            .listen
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)));
        if let Some(port) = number_variable::<u16>(PORT_VARIABLE)? {
            listen.set_port(port);
        }
        if let Some(address) = args.listen {
            listen = address;
        }

        let max_connections = match args.max_connections {
            Some(limit) => limit,
            None => number_variable::<usize>(MAX_CONNECTIONS_VARIABLE)?
                .or(table.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        };
        if max_connections == 0 {
            return Err(Failure::usage("the connection limit must be at least 1".to_owned()));
        }

        let path_prefix = table.path_prefix.clone().unwrap_or_else(|| DEFAULT_PATH_PREFIX.to_owned());
        if !path_prefix.starts_with('/') || !path_prefix.ends_with('/') || path_prefix.len() < 2 {
            return Err(Failure::usage(format!(
                "agent.path_prefix `{path_prefix}` must start and end with `/`, for example \"/v1/\""
            )));
        }
        let token_variables = table
            .token_variables
            .clone()
            .unwrap_or_else(|| DEFAULT_TOKEN_VARIABLES.iter().map(|name| (*name).to_owned()).collect());
        let token_headers = table
            .token_headers
            .clone()
            .unwrap_or_else(|| DEFAULT_TOKEN_HEADERS.iter().map(|name| (*name).to_owned()).collect());
        if token_variables.is_empty() || token_headers.is_empty() {
            return Err(Failure::usage(
                "agent.token_variables and agent.token_headers must each name at least one".to_owned(),
            ));
        }

        let allowed_schemes = allowed_schemes(table, args)?;

        let mut prefetch = table.prefetch.clone();
        prefetch.extend(args.prefetch.iter().cloned());

        Ok(AgentSettings {
            listen,
            max_connections,
            request_timeout: args.request_timeout.or(table.request_timeout).unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            idle_timeout: table.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            max_body_bytes: table.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            token_variables,
            token_headers,
            path_prefix,
            allowed_schemes,
            prefetch,
            lambda_extension: args.lambda_extension || table.lambda_extension.unwrap_or(false),
            lambda_extension_name: args
                .lambda_extension_name
                .clone()
                .or_else(|| table.lambda_extension_name.clone())
                .unwrap_or_else(|| DEFAULT_EXTENSION_NAME.to_owned()),
        })
    }
}

/// Merges the `[agent] allowed_schemes` list (or the default) with every
/// `--allow-scheme`, lowercased and without duplicates.
fn allowed_schemes(table: &AgentTable, args: &AgentArgs) -> Result<Vec<String>, Failure> {
    let configured = table
        .allowed_schemes
        .clone()
        .unwrap_or_else(|| DEFAULT_ALLOWED_SCHEMES.iter().map(|scheme| (*scheme).to_owned()).collect());
    let mut allowed: Vec<String> = Vec::new();
    for scheme in configured.iter().chain(&args.allow_scheme) {
        let name = scheme.trim().trim_end_matches("://").to_ascii_lowercase();
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
        if !valid {
            return Err(Failure::usage(format!(
                "`{scheme}` is not a reference scheme; write a name such as \"aws-sm\" or \"env\""
            )));
        }
        if !allowed.contains(&name) {
            allowed.push(name);
        }
    }
    Ok(allowed)
}

fn number_variable<T: std::str::FromStr>(name: &str) -> Result<Option<T>, Failure> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Failure::usage(format!("{name} is `{text}`, which is not a valid number"))),
        _ => Ok(None),
    }
}
