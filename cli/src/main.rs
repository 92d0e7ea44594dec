//! The `keystead` command.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;

mod agent;
mod config_file;
mod get;
mod output;
mod render;
mod run;
mod signals;
mod watch;

use output::Failure;

/// Read secrets through the keystead cache from a shell.
///
/// References look like aws-sm://prod/db#password, aws-ssm:///app/key,
/// env://NAME or file:///run/secrets/token. Configuration comes from
/// --config, else KEYSTEAD_CONFIG, else built-in defaults and the standard
/// AWS environment.
#[derive(Debug, Parser)]
#[command(name = "keystead", version, propagate_version = true)]
struct Cli {
    /// Path to keystead.toml.
    #[arg(long, global = true, env = "KEYSTEAD_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Log level for keystead's own diagnostics on stderr (off, error,
    /// warn, info, debug, trace) [default: off for get, warn for the
    /// others]. Logs never contain secret values.
    #[arg(long, global = true, env = "KEYSTEAD_LOG", value_parser = parse_log_level, value_name = "LEVEL")]
    log: Option<LevelFilter>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a secret's value to stdout.
    ///
    /// Text values are printed followed by a newline (unless -n); binary
    /// values are written as their exact bytes. With --json, the value and
    /// its metadata are printed as one JSON object.
    Get(get::GetArgs),

    /// Run a command with secrets in its environment.
    ///
    /// Every secret is read before the command starts. When one rotates,
    /// the command is restarted (stop signal, grace period, then SIGKILL),
    /// but only if the injected values really changed. Signals are passed
    /// on, and keystead exits with the command's exit code.
    Run(run::RunArgs),

    /// Render templates that read secrets into files.
    ///
    /// Templates use minijinja syntax and read secrets with
    /// {{ secret("aws-sm://prod/db#password") }}. Files are written
    /// atomically, mode 0600 unless set otherwise, and rendered again when
    /// a secret they read rotates.
    Render(render::RenderArgs),

    /// Serve secrets over HTTP, on 127.0.0.1:2773 unless --listen sets
    /// another address.
    ///
    /// Serves the paths of the AWS Parameters and Secrets Lambda extension
    /// and the AWS Secrets Manager Agent (/secretsmanager/get,
    /// /systemsmanager/parameters/get, /v1/NAME) and keystead references
    /// of the schemes aws-sm, aws-ssm and vault, plus those allowed with
    /// --allow-scheme (/v1/secret?ref=REFERENCE), behind the same token
    /// header. With --lambda-extension it registers as a Lambda external
    /// extension.
    Agent(agent::AgentArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.unwrap_or_else(|| default_log_level(&cli.command)));

    let result = match cli.command {
        Command::Get(args) => get::run(cli.config.as_deref(), &args).map(|()| output::EXIT_OK),
        Command::Run(args) => run::run(cli.config.as_deref(), args),
        Command::Render(args) => render::run(cli.config.as_deref(), args).map(|()| output::EXIT_OK),
        Command::Agent(args) => agent::run(cli.config.as_deref(), args).map(|()| output::EXIT_OK),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "keystead: {}", failure.printable_message());
            ExitCode::from(failure.code)
        }
    }
}

/// `get` prints its error as one line of its own, so core's log line for
/// the same failure would only repeat it. The long-running commands keep
/// warnings, because they report retries and stale values nowhere else.
fn default_log_level(command: &Command) -> LevelFilter {
    match command {
        Command::Get(_) => LevelFilter::OFF,
        Command::Run(_) | Command::Render(_) | Command::Agent(_) => LevelFilter::WARN,
    }
}

fn parse_log_level(text: &str) -> Result<LevelFilter, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid log level `{text}`: use off, error, warn, info, debug or trace"))
}

fn init_logging(level: LevelFilter) {
    // `level` came through `parse_log_level`, so these directives parse;
    // the fallback only keeps logging quiet if that ever changes.
    let filter = tracing_subscriber::EnvFilter::try_new(format!("keystead={level},keystead_cli={level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    // Colour codes are for a person at a terminal; in a pipe or a log file
    // they are noise.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Parses a duration option such as `10s` or `2m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("invalid duration `{text}`: {error}"))
}

/// Builds a runtime for one command. A current-thread runtime starts
/// fastest, which matters for a command run once per shell call.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::internal(format!("cannot start the async runtime: {error}")))
}
