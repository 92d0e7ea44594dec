//! Runs core futures on a client's own tokio runtime and hands them to
//! asyncio as awaitables, through pyo3-async-runtimes' generic bridge.
//!
//! pyo3-async-runtimes' own tokio support uses one process-wide runtime.
//! Each keystead client owns its runtime instead, so that it can be rebuilt
//! after a fork. [`KeysteadRuntime`] therefore spawns on the runtime entered
//! at the call. [`spawn`] enters the client's runtime around the bridge
//! call, and the bridge's inner spawns run on that runtime's threads.

use std::any::Any;
use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;

use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{self, ContextExt, JoinError, Runtime};
use pyo3_async_runtimes::TaskLocals;
use tokio::runtime::Handle;

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

/// The generic-runtime adapter for a keystead client's runtime.
pub(crate) struct KeysteadRuntime;

/// A task that panicked or was cancelled.
pub(crate) struct TaskFailure(tokio::task::JoinError);

impl JoinError for TaskFailure {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }

    fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.0.into_panic()
    }
}

type TaskHandle = Pin<Box<dyn Future<Output = Result<(), TaskFailure>> + Send>>;

impl Runtime for KeysteadRuntime {
    type JoinError = TaskFailure;
    type JoinHandle = TaskHandle;

    fn spawn<F>(future: F) -> TaskHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // The bridge calls this either inside `spawn` below, which entered
        // the client's runtime, or from a task already running on it.
        let task = Handle::current().spawn(future);
        Box::pin(async move { task.await.map_err(TaskFailure) })
    }

    fn spawn_blocking<F>(function: F) -> TaskHandle
    where
        F: FnOnce() + Send + 'static,
    {
        // Called only from tasks running on the client's runtime.
        let task = Handle::current().spawn_blocking(function);
        Box::pin(async move { task.await.map_err(TaskFailure) })
    }
}

impl ContextExt for KeysteadRuntime {
    fn scope<F, R>(locals: TaskLocals, future: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, future))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|cell| cell.get().cloned())
            .unwrap_or_default()
    }
}

/// Runs `future` on `runtime` and returns an asyncio awaitable for its
/// output, bound to the running event loop. Cancelling the awaitable drops
/// the future.
pub(crate) fn spawn<'py, F, T>(
    py: Python<'py>,
    runtime: &Handle,
    future: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = T> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let _entered = runtime.enter();
    generic::future_into_py::<KeysteadRuntime, _, T>(py, async move { Ok(future.await) })
}
