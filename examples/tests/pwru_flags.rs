//! pwru's flags, one by one, on the `pwru` example: the real binary on the host's kernel with
//! real packets over a veth pair, each flag's effect checked in what it prints.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pwru_testkit::netlab::VethPair;
use pwru_testkit::root::skip_unless_root_for;
use pwru_testkit::sys;

const PWRU: &str = env!("CARGO_BIN_EXE_pwru");

fn skip_unless_root(name: &str) -> bool {
    skip_unless_root_for(name, "to load BPF programs and make namespaces")
}

/// Text a child writes on one stream, gathered by a reader thread as it comes.
#[derive(Clone, Default)]
struct Gathered(Arc<Mutex<String>>);

impl Gathered {
    fn follow(r: impl Read + Send + 'static) -> (Gathered, std::thread::JoinHandle<()>) {
        let g = Gathered::default();
        let g2 = g.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                let mut text = g2.0.lock().expect("text");
                text.push_str(&line);
                text.push('\n');
            }
        });
        (g, reader)
    }

    fn text(&self) -> String {
        self.0.lock().expect("text").clone()
    }
}

/// What one run printed, and how it ended.
struct Ran {
    out: String,
    err: String,
    success: bool,
}

/// A pwru run: started with a ready file, given traffic, stopped by SIGINT once its output
/// satisfies `until` (or after 15 s without), and read to the end.
struct Run {
    child: Child,
    ready: PathBuf,
    out: Gathered,
    err: Gathered,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Run {
    /// Starts pwru with `args` and waits until it attached; Err(what it printed) when it
    /// exited first.
    fn start(tag: &str, args: &[&str]) -> Result<Run, Ran> {
        let ready = std::env::temp_dir().join(format!("pwru-flags-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(PWRU)
            .arg(format!("--ready-file={}", ready.display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pwru");
        let (out, r1) = Gathered::follow(child.stdout.take().expect("stdout"));
        let (err, r2) = Gathered::follow(child.stderr.take().expect("stderr"));
        let mut run = Run {
            child,
            ready,
            out,
            err,
            readers: vec![r1, r2],
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !run.ready.exists() {
            if let Ok(Some(_)) = run.child.try_wait() {
                return Err(run.finish());
            }
            assert!(
                Instant::now() < deadline,
                "pwru {args:?} not ready after 90 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(run)
    }

    /// Waits until the output so far satisfies `until` (15 s at most), then stops pwru.
    fn stop_when(self, until: impl Fn(&str) -> bool) -> Ran {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !until(&self.out.text()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Our own child, by its pid; it may have exited already (the wait then shows it).
        let _ = sys::kill(self.child.id(), libc::SIGINT);
        self.finish()
    }

    fn finish(mut self) -> Ran {
        let success = self.child.wait().is_ok_and(|s| s.success());
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let _ = std::fs::remove_file(&self.ready);
        Ran {
            out: self.out.text(),
            err: self.err.text(),
            success,
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The event lines (skb address first) of a text run.
fn events(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("0x")).collect()
}

#[test]
fn netns_names_come_from_ip_netns_in_text_and_json() {
    let test = "netns_names_come_from_ip_netns_in_text_and_json";
    if skip_unless_root(test) {
        return;
    }
    let tag = format!("n{}", std::process::id() % 100_000);
    // The namespaces are made after pwru starts: their names are learnt at their first event.
    let filter_b = |pair: &VethPair| format!("udp and dst host {} and dst port 7100", pair.addr_b);
    let probe = VethPair::create(&tag, 233).expect("veth pair");
    let filter = filter_b(&probe);
    let (ns_a, ns_b) = (probe.ns_a.clone(), probe.ns_b.clone());
    drop(probe);

    let run = Run::start(
        "netns-text",
        &[
            "--output-netns-names",
            "--netns-names-max-length=40",
            &filter,
        ],
    )
    .unwrap_or_else(|r| panic!("pwru failed to start:\n{}\n{}", r.out, r.err));
    let pair = VethPair::create(&tag, 233).expect("veth pair");
    pair.send_udp(41100, 7100, 3, 16).expect("send");
    let ran = run.stop_when(|o| o.contains(&ns_a) && o.contains(&ns_b));
    assert!(ran.success, "{}", ran.err);
    let header = ran.out.lines().next().unwrap_or_default();
    assert!(header.contains(" NETNS NAME "), "{header}");
    let lines = events(&ran.out);
    assert!(
        lines.iter().any(|l| l.contains(&format!(" {ns_a} "))),
        "no event named {ns_a}:\n{}",
        ran.out
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!(" {ns_b} "))),
        "no event named {ns_b}:\n{}",
        ran.out
    );
    // The name belongs to the namespace printed in the NETNS column.
    let inode_a = VethPair::netns_inode(&ns_a).expect("inode").to_string();
    for l in lines.iter().filter(|l| l.contains(&format!(" {ns_a} "))) {
        assert_eq!(l.split_whitespace().nth(3), Some(inode_a.as_str()), "{l}");
    }

    // A short maximum cuts the column; JSON keeps the whole name.
    let run = Run::start(
        "netns-short",
        &[
            "--output-netns-names",
            "--netns-names-max-length=6",
            &filter,
        ],
    )
    .unwrap_or_else(|r| panic!("pwru failed to start:\n{}\n{}", r.out, r.err));
    pair.send_udp(41101, 7100, 2, 16).expect("send");
    let cut = &ns_a[..6];
    let ran = run.stop_when(|o| o.contains(&format!(" {cut} ")));
    assert!(ran.success, "{}", ran.err);
    assert!(
        events(&ran.out)
            .iter()
            .any(|l| l.contains(&format!(" {cut} ")))
            && !ran.out.contains(&ns_a),
        "names not cut to 6:\n{}",
        ran.out
    );

    let run = Run::start(
        "netns-json",
        &["--output-netns-names", "--output-json", &filter],
    )
    .unwrap_or_else(|r| panic!("pwru failed to start:\n{}\n{}", r.out, r.err));
    pair.send_udp(41102, 7100, 2, 16).expect("send");
    let ran = run.stop_when(|o| o.contains(&ns_b));
    assert!(ran.success, "{}", ran.err);
    let mut named = 0;
    for l in ran.out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let name = v.get("netns_name").and_then(|n| n.as_str());
        if let Some(name) = name.filter(|n| *n == ns_a || *n == ns_b) {
            let inode = VethPair::netns_inode(name).expect("inode");
            assert_eq!(v["netns"], inode, "{l}");
            named += 1;
        }
    }
    assert!(named > 0, "no netns_name in JSON:\n{}", ran.out);
}
