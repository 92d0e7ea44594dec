//! Unix signals: names, and one stream of the signals a command handles.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::output::Failure;

/// Signals `keystead run` passes on to its child. SIGWINCH keeps a child's
/// terminal size right; the others are the ones services use to stop,
/// reload or dump state.
pub(crate) const FORWARDED: [libc::c_int; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Signals that ask a process to stop.
pub(crate) const TERMINATING: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];

/// Installs handlers for `signals` and returns a receiver that yields each
/// signal's number as it arrives. From now on these signals no longer have
/// their default effect on this process.
pub(crate) fn listen(signals: &[libc::c_int]) -> Result<mpsc::UnboundedReceiver<libc::c_int>, Failure> {
    let (sender, receiver) = mpsc::unbounded_channel();
    for &number in signals {
        let mut stream = signal(SignalKind::from_raw(number)).map_err(|error| {
            Failure::internal(format!("cannot install a handler for {}: {error}", name(number)))
        })?;
        let sender = sender.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if sender.send(number).is_err() {
                    return;
                }
            }
        });
    }
    Ok(receiver)
}

/// Parses a signal name such as `SIGTERM`, `TERM` or `15`.
pub(crate) fn parse(text: &str) -> Result<libc::c_int, String> {
    if let Ok(number) = text.parse::<libc::c_int>() {
        if (1..=64).contains(&number) {
            return Ok(number);
        }
    }
    let upper = text.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|(_, number)| *number)
        .ok_or_else(|| format!("unknown signal `{text}`; use a name such as SIGTERM, SIGINT or SIGHUP"))
}

/// Returns the conventional name of a signal, for messages.
pub(crate) fn name(number: libc::c_int) -> String {
    NAMES
        .iter()
        .find(|(_, known)| *known == number)
        .map(|(name, _)| format!("SIG{name}"))
        .unwrap_or_else(|| format!("signal {number}"))
}

const NAMES: [(&str, libc::c_int); 12] = [
    ("TERM", libc::SIGTERM),
    ("INT", libc::SIGINT),
    ("HUP", libc::SIGHUP),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("WINCH", libc::SIGWINCH),
    ("ALRM", libc::SIGALRM),
    ("PIPE", libc::SIGPIPE),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_or_without_prefix() {
        assert_eq!(parse("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse("term"), Ok(libc::SIGTERM));
        assert_eq!(parse("SIGHUP"), Ok(libc::SIGHUP));
        assert_eq!(parse("9"), Ok(libc::SIGKILL));
        assert!(parse("SIGNOPE").is_err());
        assert!(parse("0").is_err());
        assert_eq!(name(libc::SIGUSR1), "SIGUSR1");
    }
}
