//! An out-of-tree user of the packaged crates (copied into a crate outside the workspace by
//! tests/tests/packaged_crate.rs). It traces one UDP datagram on a fresh veth pair with the
//! tracepoint backend and exits 0 once the kernel reported it; any error exits 1.
//!
//! It depends on the packaged crates only, so it makes its veth pair itself with iproute2's
//! `ip`, and sends from namespace A by running itself there (`ip netns exec A <self> --send`).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pwru_core::{Backend, Item, Tracer};

/// Upper bound on the whole run; the consumer normally finishes in well under a second.
const DEADLINE: Duration = Duration::from_secs(60);

/// Namespaces A (10.248.244.1) and B (10.248.244.2) joined by veth; removed on drop.
struct Lab {
    a: String,
    b: String,
}

const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 248, 244, 2);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` ({e}): install iproute2"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!("`ip {}` failed: {}", args.join(" "), err.trim()))
}

impl Lab {
    fn create() -> Result<Lab, String> {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            a: format!("pwru-k{id}-a"),
            b: format!("pwru-k{id}-b"),
        };
        let (va, vb) = (format!("pwk{id}a"), format!("pwk{id}b"));
        let (a, b) = (lab.a.as_str(), lab.b.as_str());
        let steps: [&[&str]; 7] = [
            &["netns", "add", a],
            &["netns", "add", b],
            &[
                "link", "add", &va, "netns", a, "type", "veth", "peer", "name", &vb, "netns", b,
            ],
            &["-n", a, "addr", "add", "10.248.244.1/24", "dev", &va],
            &["-n", b, "addr", "add", "10.248.244.2/24", "dev", &vb],
            &["-n", a, "link", "set", &va, "up"],
            &["-n", b, "link", "set", &vb, "up"],
        ];
        for step in steps {
            ip(step)?; // on failure, dropping `lab` removes what was made
        }
        Ok(lab)
    }

    /// One datagram from A to B's port 9, sent by this program run inside A.
    fn send(&self) -> Result<(), String> {
        let me = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let me = me.to_string_lossy();
        ip(&["netns", "exec", &self.a, &me, "--send"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the namespaces also deletes the veth pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--send") {
        // Running inside namespace A (see Lab::send).
        let sent = UdpSocket::bind(("0.0.0.0", 40144))
            .and_then(|s| s.send_to(&[0x5a; 16], SocketAddr::from((ADDR_B, 9))));
        if let Err(e) = sent {
            eprintln!("consumer --send: {e}");
            std::process::exit(1);
        }
        return;
    }
    std::thread::spawn(|| {
        std::thread::sleep(DEADLINE);
        eprintln!("consumer: no matching event within {DEADLINE:?}");
        std::process::exit(2);
    });
    if let Err(e) = run() {
        eprintln!("consumer: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let lab = Arc::new(Lab::create()?);
    let tracer = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(format!("udp and dst host {ADDR_B} and dst port 9"))
        .build()?;
    let mut session = tracer.attach()?;

    // Traffic until the first event arrives (a datagram sent before the stream is polled is
    // still in the ring buffer; repeating covers nothing but a slow start).
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (lab, stop) = (Arc::clone(&lab), Arc::clone(&stop));
        std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                lab.send()?;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        })
    };

    let dst = std::net::IpAddr::from(ADDR_B);
    let found = futures::executor::block_on(async {
        let mut events = session.events();
        while let Some(item) = events.next().await {
            match item {
                Ok(Item::Event(ev))
                    if ev.tuple.is_some_and(|t| t.dst == Some(dst) && t.dport == 9) =>
                {
                    return Ok(Some(ev));
                }
                Ok(_) => {}
                Err(e) if !e.is_fatal() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    })?;
    stop.store(true, Ordering::Relaxed);
    sender.join().map_err(|_| "sender thread panicked")??;
    match found {
        Some(ev) => {
            println!(
                "consumer: traced {} skb {:#x} to {dst}:9 with the {:?} backend",
                ev.function,
                ev.skb,
                session.backend()
            );
            Ok(())
        }
        None => Err("the event stream ended without a matching event".into()),
    }
}
