//! The `pwru` example run as a user runs it: real binary, real kernel, real packets.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pwru_core::netlab::VethPair;

const PWRU: &str = env!("CARGO_BIN_EXE_pwru");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn skip_unless_root(name: &str) -> bool {
    if !is_root() {
        println!("SKIP {name}: needs root to load BPF programs and make namespaces");
        return true;
    }
    false
}

fn run(args: &[&str]) -> Output {
    Command::new(PWRU).args(args).output().expect("run pwru")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// pwru started in the background with a ready file; stopped with SIGTERM or by itself.
struct Background {
    child: Child,
    ready: PathBuf,
}

impl Background {
    fn start(name: &str, args: &[&str]) -> Background {
        let ready = std::env::temp_dir().join(format!("pwru-ready-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let ready_s = ready.to_string_lossy().into_owned();
        let child = Command::new(PWRU)
            .args(["--ready-file", &ready_s])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pwru");
        let mut bg = Background { child, ready };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !bg.ready.exists() {
            if let Ok(Some(st)) = bg.child.try_wait() {
                let (out, err) = bg.drain();
                panic!("pwru exited early ({st}) before attaching:\n{out}\n{err}");
            }
            assert!(Instant::now() < deadline, "pwru not ready after 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        bg
    }

    fn drain(&mut self) -> (String, String) {
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (out, err)
    }

    /// Sends SIGTERM after `settle`, waits, and returns (status ok, stdout, stderr).
    fn stop(self, settle: Duration) -> (bool, String, String) {
        std::thread::sleep(settle);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait()
    }

    fn wait(mut self) -> (bool, String, String) {
        let (out, err) = self.drain();
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (ok, out, err)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ready);
    }
}

#[test]
fn demo_shows_the_dropped_packet_with_its_reason() {
    if skip_unless_root("demo_shows_the_dropped_packet_with_its_reason") {
        return;
    }
    let o = run(&["--demo"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "demo failed:\n{out}\n{err}");
    assert!(out.starts_with("SKB "), "no header:\n{out}");
    let drop_line = out
        .lines()
        .find(|l| l.contains("kfree_skb(SKB_DROP_REASON_NO_SOCKET)"))
        .unwrap_or_else(|| panic!("no drop line:\n{out}\n{err}"));
    assert!(drop_line.contains("->10.248.250.2:9(udp)"), "{drop_line}");
    // The B -> A reply does not match `dst host B`: never printed.
    assert!(
        !out.contains("10.248.250.2:40003"),
        "filtered packet printed:\n{out}"
    );
    assert!(
        err.contains("dropped at kfree_skb: SKB_DROP_REASON_NO_SOCKET"),
        "{err}"
    );
}

#[test]
fn pcap_filter_selects_only_the_matching_flow_and_json_carries_pwrus_keys() {
    let name = "pcap_filter_selects_only_the_matching_flow_and_json_carries_pwrus_keys";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&format!("c{}", std::process::id() % 100_000), 231).expect("pair");
    let filter = format!("udp and dst host {} and dst port 5555", pair.addr_b);
    let bg = Background::start("json", &["--output-json", &filter]);
    pair.send_udp(41000, 5555, 2, 20).expect("send matching");
    pair.send_udp(41001, 6666, 2, 20).expect("send other port");
    let (ok, out, err) = bg.stop(Duration::from_millis(700));
    assert!(ok, "pwru failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines.is_empty(), "no events:\n{err}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        // `mark` and `cpu` are omitempty in pwru (Go), so zero values have no key.
        for key in [
            "skb", "process", "func", "netns", "iface", "proto", "mtu", "len", "tuple",
        ] {
            assert!(v.get(key).is_some(), "key {key} missing in {l}");
        }
        let t = &v["tuple"];
        assert_eq!(t["dport"], 5555, "non-matching flow printed: {l}");
        assert_eq!(t["daddr"], pair.addr_b.to_string());
        assert_eq!(t["proto"], 17);
    }
}

#[test]
fn output_limit_lines_stops_after_n_events() {
    if skip_unless_root("output_limit_lines_stops_after_n_events") {
        return;
    }
    let pair = VethPair::create(&format!("l{}", std::process::id() % 100_000), 232).expect("pair");
    let filter = format!("udp and dst host {}", pair.addr_b);
    let bg = Background::start("limit", &["--output-limit-lines", "3", &filter]);
    pair.send_udp(41002, 9, 5, 20).expect("send");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut bg = bg;
    while bg.child.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "pwru did not exit after 3 events"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, out, err) = bg.wait();
    assert!(ok, "{err}");
    let events = out.lines().filter(|l| l.starts_with("0x")).count();
    assert_eq!(events, 3, "{out}");
    assert!(err.contains("3 events"), "{err}");
}

#[test]
fn bad_flags_and_filters_exit_non_zero_naming_the_problem() {
    let o = run(&["--no-such-flag"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--no-such-flag"), "{}", text(&o).1);

    let o = run(&["--filter-skb-expr", "skb->len > 0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("--filter-skb-expr is not supported"),
        "{}",
        text(&o).1
    );

    let o = run(&["--backend", "ebpf-magic"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("unknown backend"), "{}", text(&o).1);

    if is_root() {
        let o = run(&["tcp", "port", "99999"]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            err.contains("invalid pcap filter \"tcp port 99999\""),
            "{err}"
        );
        assert!(
            err.contains("illegal port number 99999"),
            "libpcap message missing: {err}"
        );
    } else {
        println!("SKIP bad_flags_and_filters_exit_non_zero_naming_the_problem (filter part): the privilege check comes first for non-root");
    }
}

#[test]
fn non_root_run_explains_the_missing_capabilities() {
    use std::os::unix::process::CommandExt;
    if !is_root() {
        let o = run(&["icmp"]);
        let (_, err) = text(&o);
        assert!(err.contains("CAP_BPF"), "{err}");
        return;
    }
    // Root can become nobody for the child: the check must name what is missing.
    let o = Command::new(PWRU)
        .arg("icmp")
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("missing privileges: CAP_BPF, CAP_PERFMON"),
        "{err}"
    );
    assert!(err.contains("sudo"), "{err}");
}

#[test]
fn drops_counts_a_drop_by_reason_and_function() {
    if skip_unless_root("drops_counts_a_drop_by_reason_and_function") {
        return;
    }
    let pair = VethPair::create(&format!("r{}", std::process::id() % 100_000), 233).expect("pair");
    let filter = format!("udp and dst host {}", pair.addr_b);
    let ready = std::env::temp_dir().join(format!("drops-ready-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let mut child = Command::new(env!("CARGO_BIN_EXE_drops"))
        .args(["--seconds", "3", "--backend", "tracepoint", "--ready-file"])
        .arg(&ready)
        .arg(&filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drops");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "drops exited before attaching"
        );
        assert!(Instant::now() < deadline, "drops not ready after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&ready);
    pair.send_udp(41010, 9, 2, 8).expect("send");
    let o = child.wait_with_output().expect("drops output");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let last_table = out.rsplit("COUNT").next().unwrap_or("");
    let row = last_table
        .lines()
        .find(|l| l.contains("SKB_DROP_REASON_NO_SOCKET"))
        .unwrap_or_else(|| panic!("no NO_SOCKET row:\n{out}\n{err}"));
    let n: u64 = row
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert_eq!(n, 2, "{row}");
    assert!(row.contains("kfree_skb"), "{row}");
}
