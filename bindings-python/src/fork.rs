//! Process lifecycle: `fork` and interpreter exit.
//!
//! After `fork` only the forking thread exists in the child, so the tokio
//! runtime a client owns has no worker threads left, and any lock one of
//! those threads held stays locked forever. The package registers
//! [`after_fork_in_child`] with `os.register_at_fork`; it bumps a process
//! generation that every client compares on each call. A client built
//! before the fork is therefore replaced on its first use in the child. Clients also
//! compare the process id before any call that needs the runtime, which
//! catches a fork that skipped Python's fork hooks.
//!
//! Rebuilds run with the GIL held from start to end. A fork also needs the
//! GIL, so no rebuild can be half done in a child, and two threads cannot
//! rebuild one client at once.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use crate::client::Live;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static INTERPRETER_EXITING: AtomicBool = AtomicBool::new(false);

/// How long a child waits for the pre-fork client to be abandoned before it
/// moves on without it. Abandoning wipes the cached values and takes the
/// cache's locks. A lock that a vanished thread held at the moment of the
/// fork blocks forever, and the child must not hang on it. A quarter second
/// is far longer than the wipe takes when the locks are free.
const ABANDON_WAIT: Duration = Duration::from_millis(250);

/// Returns the current process generation: 0 in the process that imported
/// keystead, one more after each fork.
pub(crate) fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// Whether the interpreter has started to shut down, after which runtime
/// threads must no longer take the GIL.
pub(crate) fn interpreter_is_exiting() -> bool {
    INTERPRETER_EXITING.load(Ordering::Acquire)
}

/// Marks the process as a new fork child. Registered by the package with
/// `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
#[pyo3(name = "_after_fork_in_child")]
pub(crate) fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Stops runtime threads from calling into Python. Registered by the package
/// with `atexit`, which runs before the interpreter finalizes.
#[pyfunction]
#[pyo3(name = "_interpreter_exiting")]
pub(crate) fn interpreter_exiting() {
    INTERPRETER_EXITING.store(true, Ordering::Release);
}

/// Gives up a client that was built before a fork, in a child process.
///
/// The abandon runs on a helper thread that the caller waits for at most
/// [`ABANDON_WAIT`]; if it is stuck on a lock orphaned by the fork, the
/// helper stays blocked and the client's memory is leaked, which is harmless.
pub(crate) fn abandon(live: Arc<Live>) {
    let live = match Arc::try_unwrap(live) {
        Ok(live) => ManuallyDrop::new(live),
        // Another handle survived the fork (a call that was in progress on
        // a thread that no longer exists); it can never be released.
        Err(shared) => {
            std::mem::forget(shared);
            return;
        }
    };

    let (done_sender, done) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("keystead-abandon".into())
        .spawn(move || {
            let live = ManuallyDrop::into_inner(live);
            live.abandon();
            let _ = done_sender.send(());
        });
    // When the thread cannot start, the closure and the client in it are
    // dropped as `ManuallyDrop`, that is leaked, which is the safe outcome.
    if spawned.is_ok() {
        let _ = done.recv_timeout(ABANDON_WAIT);
    }
}
