//! Rotation notices for the long-running commands, grouped so that several
//! rotations found close together cause one restart or one re-render.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use keystead::{Client, Error, Subscription};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long `run` and `render` wait after a rotation for more rotations
/// before acting. Two seconds is Vault Agent's exec-mode debounce: long
/// enough to cover the spread of background refreshes of secrets rotated
/// together, short enough that a restart follows a rotation promptly.
pub(crate) const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(2);

/// Maximum time a batch waits while rotations keep arriving, as a multiple
/// of the debounce, so that a secret rotating every second cannot postpone
/// the restart forever.
const MAX_WAIT_FACTOR: u32 = 5;

/// The references a command depends on, and the rotations found on them.
pub(crate) struct RotationWatch {
    client: Client,
    subscriptions: HashMap<String, Subscription>,
    sender: mpsc::UnboundedSender<String>,
    receiver: mpsc::UnboundedReceiver<String>,
    pending: PendingBatch,
}

impl RotationWatch {
    pub(crate) fn new(client: Client) -> RotationWatch {
        let (sender, receiver) = mpsc::unbounded_channel();
        RotationWatch {
            client,
            subscriptions: HashMap::new(),
            sender,
            receiver,
            pending: PendingBatch::default(),
        }
    }

    /// Subscribes to `reference` unless it is already watched. The
    /// reference is refreshed in the background from now on, even when
    /// nothing reads it.
    pub(crate) fn watch(&mut self, reference: &str) -> Result<(), Error> {
        if self.subscriptions.contains_key(reference) {
            return Ok(());
        }
        let sender = self.sender.clone();
        let subscription = self.client.subscribe(reference, move |event| {
            // The receiver lives as long as the watch, so a send fails only
            // after the watch was dropped, while the command shuts down.
            let _ = sender.send(event.reference.clone());
        })?;
        self.subscriptions.insert(reference.to_owned(), subscription);
        Ok(())
    }

    /// Waits for the next rotation, then for the debounce to pass without
    /// another one (at most five debounces in all), and returns every
    /// reference that rotated meanwhile.
    ///
    /// Cancel-safe: rotations received before the future is dropped stay in
    /// the pending batch, so a `select!` that wakes for something else
    /// loses none.
    pub(crate) async fn next_batch(&mut self, debounce: Duration) -> BTreeSet<String> {
        collect_batch(&mut self.receiver, &mut self.pending, debounce).await
    }
}

/// Rotations received but not yet handed out.
#[derive(Default)]
struct PendingBatch {
    references: BTreeSet<String>,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
}

impl PendingBatch {
    fn add(&mut self, reference: String) {
        let now = Instant::now();
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
        self.references.insert(reference);
    }

    /// Returns when the batch is due: `debounce` after the latest rotation, and no
    /// later than `MAX_WAIT_FACTOR` debounces after the first.
    fn deadline(&self, debounce: Duration) -> Option<Instant> {
        let first_at = self.first_at?;
        let last_at = self.last_at?;
        Some((last_at + debounce).min(first_at + debounce * MAX_WAIT_FACTOR))
    }

    fn take(&mut self) -> BTreeSet<String> {
        self.first_at = None;
        self.last_at = None;
        std::mem::take(&mut self.references)
    }
}

async fn collect_batch(
    receiver: &mut mpsc::UnboundedReceiver<String>,
    pending: &mut PendingBatch,
    debounce: Duration,
) -> BTreeSet<String> {
    loop {
        let Some(deadline) = pending.deadline(debounce) else {
            match receiver.recv().await {
                Some(reference) => pending.add(reference),
                // Every sender is gone, so no rotation can arrive again.
                None => return std::future::pending().await,
            }
            continue;
        };
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(reference)) => pending.add(reference),
            Ok(None) | Err(_) => return pending.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn_batch(
        mut receiver: mpsc::UnboundedReceiver<String>,
        debounce: Duration,
    ) -> tokio::task::JoinHandle<(BTreeSet<String>, Instant)> {
        tokio::spawn(async move {
            let batch = collect_batch(&mut receiver, &mut PendingBatch::default(), debounce).await;
            (batch, Instant::now())
        })
    }

    #[tokio::test(start_paused = true)]
    async fn close_rotations_form_one_batch() {
        let (sender, receiver) = mpsc::unbounded_channel();
        let start = Instant::now();
        let batch = spawn_batch(receiver, Duration::from_secs(2));

        sender.send("a".to_owned()).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        sender.send("b".to_owned()).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        sender.send("a".to_owned()).unwrap();

        let (references, finished) = batch.await.unwrap();
        assert_eq!(references, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(finished - start, Duration::from_millis(3000));
    }

    #[tokio::test(start_paused = true)]
    async fn rotations_after_quiet_period_form_next_batch() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let mut pending = PendingBatch::default();
        sender.send("a".to_owned()).unwrap();
        let first = collect_batch(&mut receiver, &mut pending, Duration::from_secs(2)).await;
        sender.send("b".to_owned()).unwrap();
        let second = collect_batch(&mut receiver, &mut pending, Duration::from_secs(2)).await;
        assert_eq!(first, BTreeSet::from(["a".to_owned()]));
        assert_eq!(second, BTreeSet::from(["b".to_owned()]));
    }

    #[tokio::test(start_paused = true)]
    async fn steady_rotations_cannot_postpone_forever() {
        let (sender, receiver) = mpsc::unbounded_channel();
        let start = Instant::now();
        let batch = spawn_batch(receiver, Duration::from_secs(2));
        let feeder = tokio::spawn(async move {
            loop {
                if sender.send("busy".to_owned()).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });

        let (references, finished) = batch.await.unwrap();
        feeder.abort();
        assert_eq!(references, BTreeSet::from(["busy".to_owned()]));
        assert_eq!(finished - start, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_wait_keeps_its_rotations() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let mut pending = PendingBatch::default();
        sender.send("a".to_owned()).unwrap();

        let interrupted = tokio::time::timeout(
            Duration::from_millis(500),
            collect_batch(&mut receiver, &mut pending, Duration::from_secs(2)),
        )
        .await;
        assert!(interrupted.is_err());

        let resumed = collect_batch(&mut receiver, &mut pending, Duration::from_secs(2)).await;
        assert_eq!(resumed, BTreeSet::from(["a".to_owned()]));
    }
}
