//! The command run after a file was rendered, with a timeout and retries.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::Notify;

use crate::render::config::CommandSpec;

/// Maximum delay between attempts of a failing command.
const MAX_COMMAND_BACKOFF: Duration = Duration::from_secs(60);

/// Reason one run of a command failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CommandFailure {
    /// It could not be started.
    Spawn(String),
    /// It exited with this code, or 128 plus the signal that ended it.
    Exit(i32),
    /// It ran past its timeout and was killed.
    TimedOut,
}

/// Runs `spec` until it succeeds or its attempts are used up, waiting
/// `backoff` (doubling each time) between attempts. Returns whether it
/// succeeded.
pub(crate) async fn run_with_retries(spec: &CommandSpec, template: &str) -> bool {
    let mut delay = spec.backoff;
    for attempt in 1..=spec.attempts {
        match run_once(spec).await {
            Ok(()) => {
                tracing::info!(template, attempt, "the command after rendering succeeded");
                return true;
            }
            Err(failure) => log_failure(template, attempt, spec.attempts, &failure),
        }
        if attempt < spec.attempts {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_COMMAND_BACKOFF);
        }
    }
    false
}

/// A background runner for one template's command. Each `trigger` requests
/// one more successful run. A trigger that arrives while a failed run waits
/// to be retried starts over at once with fresh attempts, because the file
/// changed again.
pub(crate) struct CommandRunner {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl CommandRunner {
    pub(crate) fn start(spec: CommandSpec, template: String) -> CommandRunner {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run_on_trigger(spec, template, Arc::clone(&wake)));
        CommandRunner { wake, task }
    }

    pub(crate) fn trigger(&self) {
        self.wake.notify_one();
    }
}

impl Drop for CommandRunner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_on_trigger(spec: CommandSpec, template: String, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let mut attempt = 1;
        let mut delay = spec.backoff;
        loop {
            match run_once(&spec).await {
                Ok(()) => {
                    tracing::info!(template = %template, attempt, "the command after rendering succeeded");
                    break;
                }
                Err(failure) => log_failure(&template, attempt, spec.attempts, &failure),
            }
            if attempt >= spec.attempts {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    attempt += 1;
                    delay = (delay * 2).min(MAX_COMMAND_BACKOFF);
                }
                _ = wake.notified() => {
                    attempt = 1;
                    delay = spec.backoff;
                }
            }
        }
    }
}

/// Runs the command once through `sh -c`, in a process group of its own so
/// that a timeout kills everything it started.
pub(crate) async fn run_once(spec: &CommandSpec) -> Result<(), CommandFailure> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&spec.line)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| CommandFailure::Spawn(error.to_string()))?;

    let status = match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(status) => status.map_err(|error| CommandFailure::Spawn(error.to_string()))?,
        Err(_) => {
            if let Some(pid) = child.id().and_then(|id| libc::pid_t::try_from(id).ok()) {
                // SAFETY: kill has no memory-safety preconditions; the group
                // is the child's own and the child is not reaped yet.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            return Err(CommandFailure::TimedOut);
        }
    };
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Err(CommandFailure::Exit(code))
}

fn log_failure(template: &str, attempt: u32, attempts: u32, failure: &CommandFailure) {
    let problem = match failure {
        CommandFailure::Spawn(error) => format!("cannot start /bin/sh: {error}"),
        CommandFailure::Exit(code) => format!("exited with code {code}"),
        CommandFailure::TimedOut => "timed out and was killed".to_owned(),
    };
    if attempt < attempts {
        tracing::warn!(template, attempt, attempts, problem = %problem, "the command after rendering failed; retrying");
    } else {
        tracing::error!(template, attempt, attempts, problem = %problem, "the command after rendering failed; giving up until the next render");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(line: &str, timeout: Duration) -> CommandSpec {
        CommandSpec {
            line: line.to_owned(),
            timeout,
            attempts: 3,
            backoff: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn exit_code_is_reported() {
        assert_eq!(run_once(&spec("exit 3", Duration::from_secs(10))).await, Err(CommandFailure::Exit(3)));
        assert_eq!(run_once(&spec("true", Duration::from_secs(10))).await, Ok(()));
    }

    #[tokio::test]
    async fn slow_command_is_killed() {
        let started = std::time::Instant::now();
        let result = run_once(&spec("sleep 30 & wait", Duration::from_millis(100))).await;
        assert_eq!(result, Err(CommandFailure::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn failing_command_is_retried_until_it_succeeds() {
        let folder = tempfile::tempdir().unwrap();
        let marker = folder.path().join("tries");
        let line = format!(
            "echo x >> {0}; test $(wc -l < {0}) -ge 2",
            marker.display()
        );
        assert!(run_with_retries(&spec(&line, Duration::from_secs(10)), "t").await);
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\nx\n");
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let folder = tempfile::tempdir().unwrap();
        let marker = folder.path().join("tries");
        let line = format!("echo x >> {}; exit 1", marker.display());
        assert!(!run_with_retries(&spec(&line, Duration::from_secs(10)), "t").await);
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\nx\nx\n");
    }
}
