//! `keystead run`: starts a command with secrets in its environment and
//! restarts it when they rotate.

mod child;
mod config;
mod environment;
mod redact;

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use keystead::Client;

use crate::config_file::ConfigFile;
use crate::output::Failure;
use crate::signals;
use crate::watch::RotationWatch;

use self::child::{ChildSpec, RunningChild};
use self::config::RunSettings;
pub(crate) use self::config::RunTable;
use self::environment::{InjectedValues, Mapping};
use self::redact::Needles;

/// How long keystead waits, on exit, for the leases it holds to be revoked.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `keystead run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Set an environment variable from a secret, as NAME=REFERENCE (for
    /// example DB_PASSWORD=aws-sm://prod/db#password). Repeat for more;
    /// adds to the [run.env] table and replaces its entry of the same name.
    #[arg(short = 'e', long = "env", value_name = "NAME=REFERENCE")]
    env: Vec<String>,

    /// Keep the child running when a secret rotates; it keeps the values it
    /// started with.
    #[arg(long)]
    pub(crate) no_restart: bool,

    /// Mask injected values in the child's stdout and stderr.
    #[arg(long)]
    pub(crate) redact: bool,

    /// Signal sent to the child to stop it before a restart [default: SIGTERM].
    #[arg(long, value_name = "SIGNAL")]
    pub(crate) stop_signal: Option<String>,

    /// Time between the stop signal and SIGKILL, for example 30s [default: 30s].
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    pub(crate) grace_period: Option<Duration>,

    /// Quiet time after a rotation before restarting, so that secrets
    /// rotated together cause one restart [default: 2s].
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    pub(crate) debounce: Option<Duration>,

    /// Give up if the secrets cannot all be read within this time, at start
    /// and after a rotation.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration, value_name = "DURATION")]
    timeout: Duration,

    /// The command to run and its arguments, after `--`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Runs the command and returns the exit code keystead should exit with:
/// the child's.
pub(crate) fn run(config_path: Option<&Path>, args: RunArgs) -> Result<u8, Failure> {
    let file = ConfigFile::load(config_path)?;
    let settings = RunSettings::merge(&file.commands.run, &args)?;
    let mappings = environment::mappings(&file.commands.run.env, &args.env)?;
    let runtime = crate::runtime()?;

    runtime.block_on(async move {
        // Handlers go in first: a SIGTERM that arrives while the secrets
        // load must not kill keystead before there is a child to pass it to.
        let incoming = signals::listen(&signals::FORWARDED)?;
        let client = Client::builder().config(file.library).build()?;
        let supervisor = Supervisor {
            client: client.clone(),
            settings,
            mappings,
            incoming,
            seen_values: Vec::new(),
        };
        let result = supervisor.run(args.command, args.timeout).await;
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, client.shutdown()).await.is_err() {
            tracing::warn!("lease revocation did not finish within {}", humantime::format_duration(SHUTDOWN_TIMEOUT));
        }
        result
    })
}

struct Supervisor {
    client: Client,
    settings: RunSettings,
    mappings: Vec<Mapping>,
    incoming: tokio::sync::mpsc::UnboundedReceiver<libc::c_int>,
    /// Every value injected so far, for masking: a child may still print a
    /// value from before a rotation.
    seen_values: Vec<zeroize::Zeroizing<String>>,
}

impl Supervisor {
    async fn run(mut self, command: Vec<OsString>, timeout: Duration) -> Result<u8, Failure> {
        let mut values = self.resolve_at_start(timeout).await?;
        let mut watch = RotationWatch::new(self.client.clone());
        for secret in environment::secrets(&self.mappings) {
            watch.watch(&secret)?;
        }

        let mut arguments = command.into_iter();
        let program = arguments.next().ok_or_else(|| Failure::usage("no command given".to_owned()))?;
        let mut spec = ChildSpec {
            program,
            args: arguments.collect(),
            redact: None,
            own_process_group: !stdin_is_terminal(),
        };
        let mut child = self.start(&mut spec, &values)?;

        loop {
            tokio::select! {
                status = child.wait() => {
                    let code = child::exit_code(status);
                    tracing::info!(pid = child.pid(), code, "the child exited");
                    child.drain_output().await;
                    return Ok(code);
                }
                Some(signal) = self.incoming.recv() => {
                    if self.forwards(signal) {
                        tracing::debug!(signal = %signals::name(signal), "passing the signal on to the child");
                        child.signal(signal);
                    }
                }
                rotated = watch.next_batch(self.settings.debounce) => {
                    let rotated: Vec<String> = rotated.into_iter().collect();
                    if !self.settings.restart {
                        tracing::info!(rotated = ?rotated, "secrets rotated; restarts are off, so the child keeps its values");
                        continue;
                    }
                    let reread = tokio::time::timeout(timeout, environment::resolve(&self.client, &self.mappings)).await;
                    let fresh = match reread.unwrap_or_else(|_| Err(timed_out(timeout))) {
                        Ok(fresh) => fresh,
                        Err(failure) => {
                            tracing::error!(
                                rotated = ?rotated,
                                error = %failure.printable_message(),
                                "cannot read the rotated secrets; the child keeps its current values"
                            );
                            continue;
                        }
                    };
                    let changed = values.changed_count(&fresh);
                    if changed == 0 {
                        tracing::info!(rotated = ?rotated, "secrets rotated with unchanged values; the child keeps running");
                        continue;
                    }

                    tracing::info!(rotated = ?rotated, changed, pid = child.pid(), "secrets rotated; restarting the child");
                    let settings = &self.settings;
                    let forward_tty = stdin_is_terminal();
                    let stopped = child
                        .stop(settings.stop_signal, settings.grace_period, &mut self.incoming, |signal| {
                            forwards(forward_tty, signal)
                        })
                        .await;
                    child.drain_output().await;
                    if stopped.terminate {
                        tracing::info!("asked to stop while restarting; not starting the child again");
                        return Ok(child::exit_code(stopped.status));
                    }
                    values = fresh;
                    child = self.start(&mut spec, &values)?;
                }
            }
        }
    }

    /// Reads every value before the child starts, so the child never gets a
    /// partial environment.
    async fn resolve_at_start(&self, timeout: Duration) -> Result<InjectedValues, Failure> {
        let secrets: Vec<String> = environment::secrets(&self.mappings).into_iter().collect();
        let load = async {
            // One batch call per backend where it has one; errors show up in
            // the reads below, named by variable.
            let _ = self.client.prefetch(&secrets).await;
            environment::resolve(&self.client, &self.mappings).await
        };
        tokio::time::timeout(timeout, load)
            .await
            .unwrap_or_else(|_| Err(timed_out(timeout)))
    }

    fn start(&mut self, spec: &mut ChildSpec, values: &InjectedValues) -> Result<RunningChild, Failure> {
        if self.settings.redact {
            for (_, value) in values.iter() {
                if !self.seen_values.iter().any(|seen| seen.as_str() == value) {
                    self.seen_values.push(zeroize::Zeroizing::new(value.to_owned()));
                }
            }
            spec.redact = Some(Needles::new(self.seen_values.iter().map(|value| value.as_bytes())));
        }
        let child = RunningChild::spawn(spec, values)?;
        tracing::info!(
            pid = child.pid(),
            program = %spec.program.to_string_lossy(),
            variables = values.len(),
            "started the child"
        );
        Ok(child)
    }

    fn forwards(&self, signal: libc::c_int) -> bool {
        forwards(stdin_is_terminal(), signal)
    }
}

fn timed_out(timeout: Duration) -> Failure {
    Failure {
        message: format!("the secrets were not all read within {}", humantime::format_duration(timeout)),
        code: crate::output::EXIT_UNAVAILABLE,
    }
}

/// Whether a signal keystead received should be passed on to the child.
///
/// From a terminal, Ctrl-C and Ctrl-\ already reach the child, which
/// shares keystead's foreground process group, so passing SIGINT or
/// SIGQUIT on as well would deliver them twice.
// Limitation: with stdin on a terminal, a SIGINT or SIGQUIT sent to
// keystead alone (by `kill`) does not reach the child. Send it to the child
// or to the process group instead.
fn forwards(stdin_is_terminal: bool, signal: libc::c_int) -> bool {
    !(stdin_is_terminal && (signal == libc::SIGINT || signal == libc::SIGQUIT))
}

fn stdin_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}
