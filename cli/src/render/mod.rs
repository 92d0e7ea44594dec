//! `keystead render`: renders templates that read secrets into files, and
//! renders them again when the secrets rotate.

mod command;
mod config;
mod template;
mod write;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use keystead::Client;

use crate::config_file::ConfigFile;
use crate::output::Failure;
use crate::signals;
use crate::watch::{RotationWatch, DEFAULT_DEBOUNCE};

use self::command::CommandRunner;
use self::config::TemplateSpec;
pub(crate) use self::config::RenderTable;
use self::write::{write_atomically, WriteOutcome};

/// How long keystead waits, on exit, for the leases it holds to be revoked.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `keystead render`.
#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// A template to render, as SOURCE:DESTINATION, or
    /// SOURCE:DESTINATION:COMMAND to run a shell command each time the
    /// file changes. Repeat for more; adds to the [[render.template]]
    /// tables.
    #[arg(short = 't', long = "template", value_name = "SOURCE:DESTINATION[:COMMAND]")]
    pub(crate) templates: Vec<String>,

    /// Render once and exit, instead of rendering again on rotation.
    #[arg(long)]
    once: bool,

    /// File mode, in octal, of rendered files that set none [default: 0600].
    #[arg(long, value_name = "MODE")]
    pub(crate) mode: Option<String>,

    /// Time allowed for one run of a template's command [default: 30s].
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    pub(crate) command_timeout: Option<Duration>,

    /// Quiet time after a rotation before rendering again [default: 2s].
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    debounce: Option<Duration>,

    /// Give up on a secret read that takes longer than this.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration, value_name = "DURATION")]
    timeout: Duration,
}

/// Renders every template; unless `--once`, keeps rendering on rotation
/// until SIGTERM or SIGINT.
pub(crate) fn run(config_path: Option<&Path>, args: RenderArgs) -> Result<(), Failure> {
    let file = ConfigFile::load(config_path)?;
    let specs = config::templates(&file, &args)?;
    let debounce = args.debounce.or(file.commands.render.debounce).unwrap_or(DEFAULT_DEBOUNCE);
    let runtime = crate::runtime()?;

    runtime.block_on(async move {
        let mut incoming = signals::listen(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])?;
        let client = Client::builder().config(file.library).build()?;
        let result = async {
            let mut jobs: Vec<Job> = specs.into_iter().map(Job::new).collect();
            for job in &mut jobs {
                job.render(&client, args.timeout).await?;
            }
            if args.once {
                run_commands_once(&jobs).await;
                return Ok(());
            }
            watch_and_render(&client, &mut jobs, debounce, args.timeout, &mut incoming).await
        }
        .await;
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, client.shutdown()).await.is_err() {
            tracing::warn!("lease revocation did not finish within {}", humantime::format_duration(SHUTDOWN_TIMEOUT));
        }
        result
    })
}

/// One template and what its last render found.
struct Job {
    spec: TemplateSpec,
    secrets: BTreeSet<String>,
    /// Whether the last render changed the file and its command has not
    /// run for it yet (only used with `--once`).
    changed: bool,
    runner: Option<CommandRunner>,
}

impl Job {
    fn new(spec: TemplateSpec) -> Job {
        Job {
            spec,
            secrets: BTreeSet::new(),
            changed: false,
            runner: None,
        }
    }

    /// Renders and writes the file. Returns whether the file changed.
    async fn render(&mut self, client: &Client, timeout: Duration) -> Result<bool, Failure> {
        let spec = self.spec.clone();
        let render_client = client.clone();
        let runtime = tokio::runtime::Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let rendered = template::render(&spec.name, &spec.source, &render_client, &runtime, timeout)?;
            let outcome = write_atomically(&spec.destination, rendered.text.as_bytes(), spec.mode).map_err(|error| {
                Failure::internal(format!("cannot write {}: {error}", spec.destination.display()))
            })?;
            Ok::<_, Failure>((outcome, rendered.secrets))
        })
        .await
        .map_err(|error| Failure::internal(format!("the render of {} failed: {error}", self.spec.name)))??;

        let (outcome, secrets) = outcome;
        self.secrets = secrets;
        let changed = outcome == WriteOutcome::Written;
        self.changed = changed;
        tracing::info!(
            template = %self.spec.name,
            destination = %self.spec.destination.display(),
            changed,
            "rendered"
        );
        Ok(changed)
    }

    /// Starts the command for a changed file in the background.
    fn trigger_command(&mut self) {
        let Some(command) = &self.spec.command else {
            return;
        };
        let runner = self
            .runner
            .get_or_insert_with(|| CommandRunner::start(command.clone(), self.spec.name.clone()));
        runner.trigger();
    }
}

async fn run_commands_once(jobs: &[Job]) {
    for job in jobs.iter().filter(|job| job.changed) {
        if let Some(command) = &job.spec.command {
            command::run_with_retries(command, &job.spec.name).await;
        }
    }
}

async fn watch_and_render(
    client: &Client,
    jobs: &mut [Job],
    debounce: Duration,
    timeout: Duration,
    incoming: &mut tokio::sync::mpsc::UnboundedReceiver<libc::c_int>,
) -> Result<(), Failure> {
    let mut watch = RotationWatch::new(client.clone());
    for job in jobs.iter_mut() {
        if job.changed {
            job.trigger_command();
        }
        for secret in &job.secrets {
            watch.watch(secret)?;
        }
    }

    loop {
        let selected: Vec<usize> = tokio::select! {
            Some(signal) = incoming.recv() => {
                if signal == libc::SIGHUP {
                    tracing::info!("SIGHUP: rendering every template again");
                    (0..jobs.len()).collect()
                } else {
                    tracing::info!(signal = %signals::name(signal), "stopping");
                    return Ok(());
                }
            }
            rotated = watch.next_batch(debounce) => {
                tracing::info!(rotated = ?rotated, "secrets rotated; rendering the templates that read them");
                jobs.iter()
                    .enumerate()
                    .filter(|(_, job)| !job.secrets.is_disjoint(&rotated))
                    .map(|(index, _)| index)
                    .collect()
            }
        };

        for index in selected {
            let job = &mut jobs[index];
            match job.render(client, timeout).await {
                Ok(true) => job.trigger_command(),
                Ok(false) => {}
                Err(failure) => {
                    tracing::error!(
                        template = %job.spec.name,
                        error = %failure.printable_message(),
                        "cannot render again; the file keeps its previous contents"
                    );
                    continue;
                }
            }
            for secret in &job.secrets {
                watch.watch(secret)?;
            }
        }
    }
}
