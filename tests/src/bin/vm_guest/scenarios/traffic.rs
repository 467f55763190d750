//! Measured traffic over a veth lab: UDP packets per second from A to B.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pwru_testkit::netlab::VethPair;

/// The port B listens on while traffic is measured.
pub const PORT: u16 = 9100;
/// How long one rate measurement sends.
pub const WINDOW: Duration = Duration::from_millis(1500);

/// Sends 64-byte UDP datagrams from A to B's [`PORT`] for [`WINDOW`]; returns packets/s.
pub fn udp_pps(pair: &VethPair) -> Result<f64, String> {
    let dst = SocketAddr::from((pair.addr_b, PORT));
    VethPair::in_netns(&pair.ns_a, move || {
        let s = std::net::UdpSocket::bind(("0.0.0.0", 0))?;
        let buf = [0x5au8; 64];
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < WINDOW {
            for _ in 0..64 {
                // a full socket buffer on B drops, it does not fail the send
                if s.send_to(&buf, dst).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    })
    .map_err(|e| format!("udp flood: {e}"))
}

/// Sends `count` 64-byte datagrams from A to B's [`PORT`] as fast as possible.
pub fn udp_burst(pair: &VethPair, count: u64) -> Result<u64, String> {
    let dst = SocketAddr::from((pair.addr_b, PORT));
    VethPair::in_netns(&pair.ns_a, move || {
        let s = std::net::UdpSocket::bind(("0.0.0.0", 0))?;
        let buf = [0x5au8; 64];
        let mut sent = 0;
        for _ in 0..count {
            if s.send_to(&buf, dst).is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    })
    .map_err(|e| format!("udp burst: {e}"))
}

/// A 32-byte datagram from A to B's [`PORT`] every 2 ms on its own thread, until
/// [`Paced::finish`]: traffic that keeps flowing while a tracer attaches or stops.
pub struct Paced {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Paced {
    /// Starts sending.
    pub fn start(pair: &VethPair) -> Paced {
        Self::start_on(pair, None)
    }

    /// Starts sending from a thread pinned to `cpu`, if given (a datagram over veth is
    /// sent, received and freed on the sending CPU).
    pub fn start_on(pair: &VethPair, cpu: Option<usize>) -> Paced {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let ns = pair.ns_a.clone();
            let dst = SocketAddr::from((pair.addr_b, PORT));
            std::thread::spawn(move || {
                VethPair::in_netns(&ns, move || {
                    if let Some(cpu) = cpu {
                        pwru_core::sys::process::pin_thread_to_cpu(cpu)?;
                    }
                    let s = std::net::UdpSocket::bind(("0.0.0.0", 0))?;
                    while !stop.load(Ordering::Relaxed) {
                        // a full socket buffer on B drops, it does not fail the send
                        let _ = s.send_to(&[0x5a; 32], dst);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Ok(())
                })
            })
        };
        Paced { stop, thread }
    }

    /// Stops sending and says whether the sender failed.
    pub fn finish(self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("traffic: {e}")),
            Err(_) => Err("traffic thread panicked".into()),
        }
    }
}

/// The calling thread pinned to one CPU until dropped, when its former CPU set comes back.
/// Threads it starts meanwhile inherit the pin.
pub struct Pinned {
    previous: libc::cpu_set_t,
}

impl Pinned {
    /// Pins the calling thread to `cpu`.
    pub fn to(cpu: usize) -> Result<Pinned, String> {
        // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
        let mut previous: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: sched_getaffinity writes at most `size` bytes into the live set.
        if unsafe { libc::sched_getaffinity(0, size, &mut previous) } != 0 {
            return Err(format!(
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            ));
        }
        pwru_core::sys::process::pin_thread_to_cpu(cpu)
            .map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
        Ok(Pinned { previous })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: sched_setaffinity reads the live set saved by `to`, for this thread.
        unsafe { libc::sched_setaffinity(0, size, &self.previous) };
    }
}
