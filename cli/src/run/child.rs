//! The supervised child process: starting it with secrets in its
//! environment, passing signals on, stopping it, and its exit code.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::output::Failure;
use crate::run::environment::InjectedValues;
use crate::run::redact::{pump, Needles};
use crate::signals;

/// How long the output pumps may run after the child exits. A grandchild
/// that inherited the child's stdout can keep the pipe open forever; its
/// output after this is lost, instead of keystead never exiting.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Command line and stream settings of the child.
pub(crate) struct ChildSpec {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    /// Mask these values in the child's stdout and stderr; `None` passes
    /// the streams through untouched.
    pub(crate) redact: Option<Needles>,
    /// Start the child in a process group of its own, so that signals reach
    /// it only through keystead. Off when stdin is a terminal, because a
    /// child outside the terminal's foreground group cannot read from it.
    pub(crate) own_process_group: bool,
}

/// A started child.
pub(crate) struct RunningChild {
    child: Child,
    pid: libc::pid_t,
    own_process_group: bool,
    pumps: Vec<JoinHandle<()>>,
}

/// Outcome of a stop.
pub(crate) struct Stopped {
    pub(crate) status: ExitStatus,
    /// A stop signal (SIGTERM, SIGINT, SIGQUIT) reached keystead while it
    /// waited, so keystead should exit instead of starting a new child.
    pub(crate) terminate: bool,
}

impl RunningChild {
    /// Starts the child with `values` added to keystead's own environment.
    pub(crate) fn spawn(spec: &ChildSpec, values: &InjectedValues) -> Result<RunningChild, Failure> {
        let mut command = Command::new(&spec.program);
        command.args(&spec.args).stdin(Stdio::inherit()).kill_on_drop(false);
        // Limitation: std's Command keeps its own copy of each value until
        // it is dropped after the spawn, and frees it without wiping it.
        for (name, value) in values.iter() {
            command.env(name, value);
        }
        if spec.redact.is_some() {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
        if spec.own_process_group {
            command.process_group(0);
        }
        stop_with_parent(&mut command);

        let mut child = command.spawn().map_err(|error| {
            let message = format!("cannot start {}: {error}", spec.program.to_string_lossy());
            // Exit like a shell does: 127 when the program is not found,
            // 126 when it cannot be executed.
            let code = match error.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => crate::output::EXIT_FAILURE,
            };
            Failure { message, code }
        })?;
        let pid = child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
            .ok_or_else(|| Failure::internal("the child exited before its process id was read".to_owned()))?;

        let mut pumps = Vec::new();
        if let Some(needles) = &spec.redact {
            if let Some(stdout) = child.stdout.take() {
                pumps.push(tokio::spawn(pump(stdout, tokio::io::stdout(), needles.clone())));
            }
            if let Some(stderr) = child.stderr.take() {
                pumps.push(tokio::spawn(pump(stderr, tokio::io::stderr(), needles.clone())));
            }
        }

        Ok(RunningChild {
            child,
            pid,
            own_process_group: spec.own_process_group,
            pumps,
        })
    }

    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Sends `signal` to the child, or to its whole process group when it
    /// has its own, so that processes it started get it too.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        let target = if self.own_process_group { -self.pid } else { self.pid };
        // SAFETY: kill has no memory-safety preconditions. The pid is our
        // child's, which cannot be reused before we reap it with wait.
        let result = unsafe { libc::kill(target, signal) };
        if result != 0 {
            tracing::debug!(pid = self.pid, signal = %signals::name(signal), "the child is already gone");
        }
    }

    /// Waits for the child to exit. Cancel-safe.
    pub(crate) async fn wait(&mut self) -> ExitStatus {
        match self.child.wait().await {
            Ok(status) => status,
            Err(error) => {
                tracing::error!(pid = self.pid, error = %error, "cannot wait for the child; treating it as failed");
                ExitStatus::from_raw(1 << 8)
            }
        }
    }

    /// Stops the child: `stop_signal`, then SIGKILL once `grace` has passed.
    /// Signals arriving meanwhile are passed on to the child as usual.
    pub(crate) async fn stop(
        &mut self,
        stop_signal: libc::c_int,
        grace: Duration,
        incoming: &mut mpsc::UnboundedReceiver<libc::c_int>,
        forward: impl Fn(libc::c_int) -> bool,
    ) -> Stopped {
        self.signal(stop_signal);
        let kill_at = Instant::now() + grace;
        let mut killed = false;
        let mut terminate = false;
        loop {
            tokio::select! {
                status = self.wait() => return Stopped { status, terminate },
                _ = tokio::time::sleep_until(kill_at), if !killed => {
                    tracing::warn!(
                        pid = self.pid,
                        grace = %humantime::format_duration(grace),
                        "the child did not exit within the grace period; sending SIGKILL"
                    );
                    self.signal(libc::SIGKILL);
                    killed = true;
                }
                Some(signal) = incoming.recv() => {
                    terminate |= signals::TERMINATING.contains(&signal);
                    if forward(signal) {
                        self.signal(signal);
                    }
                }
            }
        }
    }

    /// Waits, for a bounded time, until the child's output has been
    /// copied out.
    pub(crate) async fn drain_output(self) {
        let pumps = self.pumps;
        let all = async {
            for pump in pumps {
                let _ = pump.await;
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, all).await.is_err() {
            tracing::warn!(pid = self.pid, "the child's output was still open after it exited; the rest is dropped");
        }
    }
}

/// Returns the code keystead exits with for a child's status: the child's
/// own code, or 128 plus the signal number when a signal ended it, as shells
/// report it.
pub(crate) fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

/// Asks the kernel to send the child SIGTERM if keystead dies without
/// stopping it (for example by SIGKILL), so no child outlives its
/// supervisor with secrets that are no longer refreshed.
#[cfg(target_os = "linux")]
fn stop_with_parent(command: &mut Command) {
    // SAFETY: getpid has no preconditions.
    let supervisor = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and calls
    // only prctl and getppid, which are async-signal-safe; it allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // keystead died between fork and prctl: nothing would send the
            // signal, so do not start at all.
            if libc::getppid() != supervisor {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_shell_convention() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }
}
