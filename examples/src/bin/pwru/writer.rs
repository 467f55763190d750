//! Output on its own thread behind a bounded queue, so a stalled reader of standard output
//! never keeps the event loop from hearing signals.
//!
//! When the queue is full the loop stops reading events (the kernel then counts ring buffer
//! losses) but keeps listening for signals. At exit the writer gets a bounded time to finish;
//! lines it could not write are counted, not silently dropped.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use pwru_core::format::pcapng::PcapngStats;

use crate::output::{Record, Sinks};

/// Lines queued at most (about 1-2 MB of text): the bound on memory when output is slow.
pub const QUEUE_LINES: usize = 8192;

/// Lines written between flushes at most (so the count of written lines stays current).
const BURST: u64 = 1024;

#[derive(Default)]
struct State {
    /// Lines written and flushed to the sink.
    flushed: AtomicU64,
    /// Why the writer stopped early (write error, e.g. the reader closed the pipe).
    error: Mutex<Option<std::io::Error>>,
    /// What went to the pcap-ng file, once the writer ended.
    pcapng: Mutex<Option<PcapngStats>>,
}

/// The loop's end of the output queue.
pub struct Writer {
    tx: Option<mpsc::Sender<Record>>,
    state: Arc<State>,
    done: std_mpsc::Receiver<()>,
    sent: Cell<u64>,
}

/// How the writer ended.
#[derive(Debug)]
pub struct Finished {
    /// Lines queued but not written (output blocked or failed).
    pub unwritten: u64,
    /// The write error that stopped the writer, if any.
    pub error: Option<String>,
    /// What went to the pcap-ng file (when there is one and the writer ended in time).
    pub pcapng: Option<PcapngStats>,
}

/// The queue is closed: the writer stopped on an error.
#[derive(Debug)]
pub struct Closed;

impl Writer {
    /// Starts the writer thread on `out`.
    pub fn start(mut out: Sinks) -> std::io::Result<Writer> {
        let (tx, mut rx) = mpsc::channel::<Record>(QUEUE_LINES);
        let (done_tx, done) = std_mpsc::channel();
        let state = Arc::new(State::default());
        let st = Arc::clone(&state);
        std::thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                let result = (|| -> std::io::Result<()> {
                    while let Some(first) = rx.blocking_recv() {
                        out.put(&first)?;
                        let mut n = 1u64;
                        // Write what is already queued, then flush once per burst.
                        while n < BURST {
                            let Ok(line) = rx.try_recv() else { break };
                            out.put(&line)?;
                            n += 1;
                        }
                        out.flush()?;
                        st.flushed.fetch_add(n, Ordering::Relaxed);
                    }
                    out.flush()
                })();
                if let Err(e) = result {
                    if let Ok(mut slot) = st.error.lock() {
                        *slot = Some(e);
                    }
                }
                if let Ok(mut slot) = st.pcapng.lock() {
                    *slot = out.pcapng_stats();
                }
                // Closes the queue (the loop's reserve fails) before saying we are done.
                drop(rx);
                let _ = done_tx.send(());
            })?;
        Ok(Writer {
            tx: Some(tx),
            state,
            done,
            sent: Cell::new(0),
        })
    }

    /// Waits for room for one line; fails once the writer stopped on an error.
    pub async fn reserve(&self) -> Result<mpsc::Permit<'_, Record>, Closed> {
        match &self.tx {
            Some(tx) => tx.reserve().await.map_err(|_| Closed),
            None => Err(Closed),
        }
    }

    /// Sends a line through a permit from [`Writer::reserve`].
    pub fn send(&self, permit: mpsc::Permit<'_, Record>, line: Record) {
        permit.send(line);
        self.sent.set(self.sent.get() + 1);
    }

    /// Queues a line if there is room now; false when full or closed.
    pub fn try_send(&self, line: Record) -> bool {
        let ok = self.tx.as_ref().is_some_and(|tx| tx.try_send(line).is_ok());
        if ok {
            self.sent.set(self.sent.get() + 1);
        }
        ok
    }

    /// The write error that stopped the writer, if any.
    pub fn error(&self) -> Option<String> {
        let slot = self.state.error.lock().ok()?;
        slot.as_ref().map(|e| e.to_string())
    }

    /// True when the writer stopped because the reader went away (EPIPE).
    pub fn reader_gone(&self) -> bool {
        self.state.error.lock().is_ok_and(|slot| {
            slot.as_ref()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }

    /// Closes the queue and gives the writer up to `wait` to write what is queued; a writer
    /// still blocked after that is left behind (the process is about to exit).
    pub fn finish(mut self, wait: Duration) -> Finished {
        drop(self.tx.take());
        let _ = self.done.recv_timeout(wait);
        let flushed = self.state.flushed.load(Ordering::Relaxed);
        Finished {
            unwritten: self.sent.get().saturating_sub(flushed),
            error: self.error(),
            pcapng: self.state.pcapng.lock().ok().and_then(|s| *s),
        }
    }
}
