//! Telling the program about error spikes in-process: the callback given to
//! [`Builder::on_error_spike`](crate::Builder::on_error_spike) runs on a thread of its own,
//! fed by the uploader through a bounded queue, so that neither an emitting thread nor the
//! uploader ever runs it, and a callback that panics or blocks stops nothing but itself.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use super::report::ErrorSpike;

/// Spikes that wait for the callback at most; past them, new ones are skipped and counted.
pub(crate) const SPIKES_WAITING: usize = 16;
/// The callback thread's name (the crate's panic hook leaves the crate's own threads alone).
const THREAD_NAME: &str = "tinker-telemetry-alerts";

/// The program's error-spike callback.
#[derive(Clone)]
pub(crate) struct SpikeCallback(pub(crate) Arc<dyn Fn(&ErrorSpike) + Send + Sync>);

impl fmt::Debug for SpikeCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpikeCallback")
    }
}

/// What became of the error spikes passed to the callback of
/// [`Builder::on_error_spike`](crate::Builder::on_error_spike); see
/// [`TelemetryHandle::error_spike_calls`](crate::TelemetryHandle::error_spike_calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SpikeCalls {
    /// Calls that returned.
    pub returned: u64,
    /// Calls that panicked (the panic is caught; later spikes are passed as usual).
    pub panicked: u64,
    /// Spikes not passed because 16 were already waiting for a callback still busy.
    pub skipped: u64,
}

/// The counters behind [`SpikeCalls`].
#[derive(Debug, Default)]
pub(crate) struct SpikeCounters {
    returned: AtomicU64,
    panicked: AtomicU64,
    skipped: AtomicU64,
}

impl SpikeCounters {
    pub(crate) fn read(&self) -> SpikeCalls {
        SpikeCalls {
            returned: self.returned.load(Relaxed),
            panicked: self.panicked.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
        }
    }
}

/// The uploader's end of the callback thread's queue.
#[derive(Debug)]
pub(crate) struct Notifier {
    queue: SyncSender<ErrorSpike>,
    counters: Arc<SpikeCounters>,
}

impl Notifier {
    /// Starts the thread that runs `callback`, counting into `counters`. It ends once the
    /// notifier is dropped and the spikes waiting are passed.
    pub(crate) fn start(callback: SpikeCallback, counters: Arc<SpikeCounters>) -> std::io::Result<Self> {
        let (queue, spikes) = sync_channel::<ErrorSpike>(SPIKES_WAITING);
        let counted = Arc::clone(&counters);
        std::thread::Builder::new().name(THREAD_NAME.into()).spawn(move || {
            for spike in spikes {
                let counter = match catch_unwind(AssertUnwindSafe(|| (callback.0)(&spike))) {
                    Ok(()) => &counted.returned,
                    Err(_) => &counted.panicked,
                };
                counter.fetch_add(1, Relaxed);
            }
        })?;
        Ok(Notifier { queue, counters })
    }

    /// Queues `spike` for the callback without waiting; skips it (counted) when the queue is
    /// full.
    pub(crate) fn notify(&self, spike: &ErrorSpike) {
        match self.queue.try_send(spike.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.skipped.fetch_add(1, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::{Duration, SystemTime};

    use super::*;

    fn spike() -> ErrorSpike {
        ErrorSpike {
            operation: "train.step".into(),
            method: None,
            route: None,
            labels: Default::default(),
            errors: 5,
            window_s: 10.0,
            first_error_at: SystemTime::now(),
            error_types: Vec::new(),
        }
    }

    #[test]
    fn a_blocked_callback_makes_the_notifier_skip_not_wait() {
        let (entered, was_entered) = channel();
        let (release, released) = sync_channel::<()>(0);
        let released = std::sync::Mutex::new(released);
        let callback = SpikeCallback(Arc::new(move |_: &ErrorSpike| {
            entered.send(std::thread::current().name().map(str::to_owned)).unwrap();
            let _ = released.lock().unwrap().recv();
        }));
        let counters = Arc::new(SpikeCounters::default());
        let notifier = Notifier::start(callback, Arc::clone(&counters)).unwrap();
        notifier.notify(&spike());
        let thread = was_entered.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(thread.as_deref(), Some(THREAD_NAME));
        // One in the callback, SPIKES_WAITING queued, the rest skipped: none of it waits.
        for _ in 0..SPIKES_WAITING + 10 {
            notifier.notify(&spike());
        }
        assert_eq!(counters.read().skipped, 10);
        drop(release);
        drop(notifier);
    }
}
