//! `keystead agent`: a local HTTP server that serves secrets from the
//! keystead cache, compatible with the AWS Parameters and Secrets Lambda
//! extension and the AWS Secrets Manager Agent.

mod aws;
mod config;
mod extension;
mod prometheus;
mod query;
mod response;
mod routes;
mod server;
mod token;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;
use keystead::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config_file::ConfigFile;
use crate::output::Failure;
use crate::signals;

pub(crate) use self::config::AgentTable;
use self::config::AgentSettings;
use self::extension::{Event, Extension};
use self::routes::AgentState;
use self::token::TokenCheck;

/// How long keystead waits, on a signal, for the leases it holds to be
/// revoked before exiting.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a Lambda extension waits for its prefetch before it reports
/// ready. Lambda allows ten seconds for the whole init phase; half of it
/// leaves the function's own init room.
const EXTENSION_PREFETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Time kept back from a SHUTDOWN deadline, so that keystead exits before
/// Lambda kills it.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(200);

/// Arguments of `keystead agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// Address to listen on [default: 127.0.0.1:2773, or the port in
    /// PARAMETERS_SECRETS_EXTENSION_HTTP_PORT].
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub(crate) listen: Option<SocketAddr>,

    /// Also serve references of this scheme (for example env or file) on
    /// /v1/secret?ref=. Repeat for more; adds to agent.allowed_schemes
    /// [default: aws-sm, aws-ssm, vault].
    #[arg(long = "allow-scheme", value_name = "SCHEME")]
    pub(crate) allow_scheme: Vec<String>,

    /// Load a reference at start, so the first request is a cache hit.
    /// Repeat for more; adds to agent.prefetch.
    #[arg(long, value_name = "REFERENCE")]
    pub(crate) prefetch: Vec<String>,

    /// Connections served at once; more get status 429 [default: 800].
    #[arg(long, value_name = "COUNT")]
    pub(crate) max_connections: Option<usize>,

    /// Time allowed for one request [default: 40s].
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    pub(crate) request_timeout: Option<Duration>,

    /// Register as a Lambda external extension (uses AWS_LAMBDA_RUNTIME_API)
    /// and exit on its SHUTDOWN event.
    #[arg(long, env = "KEYSTEAD_LAMBDA_EXTENSION")]
    pub(crate) lambda_extension: bool,

    /// Name to register the extension under: its file name in
    /// /opt/extensions [default: keystead].
    #[arg(long, value_name = "NAME")]
    pub(crate) lambda_extension_name: Option<String>,
}

/// Serves until SIGTERM or SIGINT, or as a Lambda extension until SHUTDOWN.
pub(crate) fn run(config_path: Option<&Path>, args: AgentArgs) -> Result<(), Failure> {
    let file = ConfigFile::load(config_path)?;
    let settings = AgentSettings::merge(&file.commands.agent, &args)?;
    let (token, token_source) = TokenCheck::from_environment(&settings.token_variables)?;
    warn_if_exposed(&settings);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("keystead-agent")
        .enable_all()
        .build()
        .map_err(|error| Failure::internal(format!("cannot start the async runtime: {error}")))?;
    runtime.block_on(serve(file, settings, token, token_source))
}

async fn serve(file: ConfigFile, settings: AgentSettings, token: TokenCheck, token_source: String) -> Result<(), Failure> {
    let mut incoming = signals::listen(&[libc::SIGTERM, libc::SIGINT])?;
    let client = Client::builder().config(file.library).build()?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|error| Failure::internal(format!("cannot listen on {}: {error}", settings.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|error| Failure::internal(format!("cannot read the listening address: {error}")))?;

    let state = Arc::new(AgentState::new(client.clone(), token, &settings).map_err(Failure::usage)?);
    let limits = server::Limits {
        max_connections: settings.max_connections,
        idle_timeout: settings.idle_timeout,
    };
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, state, limits, stopped));
    announce(address, &token_source);

    let prefetch = tokio::spawn(prefetch(client.clone(), settings.prefetch.clone()));
    let (result, deadline) = if settings.lambda_extension {
        run_extension(&settings.lambda_extension_name, prefetch, &mut incoming).await
    } else {
        if let Some(signal) = incoming.recv().await {
            tracing::info!(signal = %signals::name(signal), "stopping");
        }
        (Ok(()), None)
    };

    let _ = stop.send(true);
    let _ = server.await;
    let allowed = deadline
        .and_then(|deadline| deadline.duration_since(SystemTime::now()).ok())
        .map(|left| left.saturating_sub(SHUTDOWN_MARGIN).min(SHUTDOWN_TIMEOUT))
        .unwrap_or(SHUTDOWN_TIMEOUT);
    if tokio::time::timeout(allowed, client.shutdown()).await.is_err() {
        tracing::warn!("lease revocation did not finish within {}", humantime::format_duration(allowed));
    }
    result
}

/// Warns when the agent listens beyond loopback: any host that can reach
/// the address and learns the token can read every secret the agent can.
fn warn_if_exposed(settings: &AgentSettings) {
    if settings.listen.ip().is_loopback() {
        return;
    }
    tracing::warn!(
        address = %settings.listen,
        "the agent listens on a non-loopback address, so other hosts can reach it; \
         anyone who also has the token can read every secret the agent can read. \
         Listen on 127.0.0.1 unless other hosts must connect"
    );
}

/// Prints the address on stdout (one line, for scripts and tests that
/// listen on port 0) and logs it.
fn announce(address: SocketAddr, token_source: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "keystead agent listening on http://{address}");
    let _ = stdout.flush();
    tracing::info!(%address, token_variable = token_source, "listening");
}

async fn prefetch(client: Client, references: Vec<String>) {
    if references.is_empty() {
        return;
    }
    for outcome in client.prefetch(&references).await {
        match outcome.result {
            Ok(()) => tracing::info!(reference = %outcome.reference, "prefetched"),
            Err(error) => tracing::warn!(reference = %outcome.reference, error = %error, "prefetch failed; the first request will load it"),
        }
    }
}

/// Registers, waits (bounded) for the prefetch so that the init phase ends
/// with warm values, then follows events until SHUTDOWN. Returns the result
/// and the SHUTDOWN deadline.
async fn run_extension(
    name: &str,
    prefetch: tokio::task::JoinHandle<()>,
    incoming: &mut tokio::sync::mpsc::UnboundedReceiver<libc::c_int>,
) -> (Result<(), Failure>, Option<SystemTime>) {
    let extension = match Extension::register(name).await {
        Ok(extension) => extension,
        Err(failure) => return (Err(failure), None),
    };
    if tokio::time::timeout(EXTENSION_PREFETCH_TIMEOUT, prefetch).await.is_err() {
        tracing::warn!("the prefetch is still running at the end of init; it goes on in the background");
    }

    loop {
        let event = tokio::select! {
            event = extension.next_event() => event,
            Some(signal) = incoming.recv() => {
                tracing::info!(signal = %signals::name(signal), "stopping");
                return (Ok(()), None);
            }
        };
        match event {
            Ok(Event::Invoke { request_id }) => tracing::debug!(request_id = %request_id, "invoke"),
            Ok(Event::Shutdown { reason, deadline }) => {
                tracing::info!(reason = %reason, "shutdown event; stopping");
                return (Ok(()), deadline);
            }
            Err(failure) => {
                extension.report_exit_error("EventError", &failure.message).await;
                return (Err(failure), None);
            }
        }
    }
}
