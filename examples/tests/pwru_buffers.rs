//! `--set-percpu-buf` (pwru's meaning: the size of the buffer an `--output-skb` /
//! `--output-skb-shared-info` dump is written to) and `--ring-buffer-size`, run as a user runs
//! them: the real binary, the host kernel, real packets.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pwru_testkit::netlab::VethPair;

const PWRU: &str = env!("CARGO_BIN_EXE_pwru");

fn skip_unless_root(name: &str) -> bool {
    pwru_testkit::root::skip_unless_root_for(name, "to load BPF programs and make namespaces")
}

/// pwru started with a ready file; waits until it exists (or pwru exits).
fn start(name: &str, args: &[&str]) -> (Child, PathBuf) {
    let ready = std::env::temp_dir().join(format!("pwru-buf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let mut child = Command::new(PWRU)
        .arg("--ready-file")
        .arg(&ready)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pwru");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        if let Ok(Some(st)) = child.try_wait() {
            let (out, err) = drain(&mut child);
            panic!("pwru exited ({st}) before attaching:\n{out}\n{err}");
        }
        assert!(Instant::now() < deadline, "pwru not ready after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, ready)
}

fn drain(child: &mut Child) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (out, err)
}

/// `max_entries` of every BPF ring buffer map (map_type 27) the process holds, once per map,
/// from the kernel's own fdinfo of its descriptors.
fn ring_buffer_sizes(pid: u32) -> Vec<u64> {
    let mut out = Vec::new();
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in std::fs::read_dir(&dir).expect("fdinfo").flatten() {
        let info = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        if field("map_type:").as_deref() == Some("27") {
            if let (Some(id), Some(n)) = (
                field("map_id:"),
                field("max_entries:").and_then(|v| v.parse::<u64>().ok()),
            ) {
                out.push((id, n));
            }
        }
    }
    // Several descriptors may refer to one map.
    out.sort();
    out.dedup();
    out.into_iter().map(|(_, n)| n).collect()
}

fn wait_exit(child: &mut Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return st.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn cleanup(child: &mut Child, ready: &Path) {
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(ready);
}

#[test]
fn set_percpu_buf_cuts_skb_dumps_and_says_so() {
    let name = "set_percpu_buf_cuts_skb_dumps_and_says_so";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&format!("pb{}", std::process::id() % 100_000), 233).expect("pair");
    let filter = format!("udp and dst host {} and dst port 9", pair.addr_b);
    let (mut child, ready) = start(
        "cut",
        &[
            "--output-skb",
            "--set-percpu-buf",
            "256",
            "--output-limit-lines",
            "2",
            &filter,
        ],
    );
    pair.send_udp(41010, 9, 3, 20).expect("send");
    let exited = wait_exit(&mut child, Duration::from_secs(20));
    let (out, err) = drain(&mut child);
    cleanup(&mut child, &ready);
    assert!(exited, "pwru did not stop after 2 events:\n{out}\n{err}");
    // Each event: its line (starting with the skb address), the skb text (at most 255
    // characters and the NUL), then the cut notice.
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for l in out.lines() {
        if l.starts_with("0x") {
            blocks.push(Vec::new());
        } else if let Some(b) = blocks.last_mut() {
            b.push(l);
        }
    }
    assert_eq!(blocks.len(), 2, "{out}");
    for b in &blocks {
        let (notice, text) = b.split_last().unwrap_or_else(|| panic!("no dump:\n{out}"));
        let text = text.join("\n");
        assert!(text.starts_with("(struct sk_buff)"), "{text}");
        assert_eq!(text.len(), 255, "dump not cut at 256 bytes:\n{text}");
        assert_eq!(*notice, "... (skb dump cut at 256 bytes)");
    }
    println!("{name}: 2 dumps of 255 characters, each marked as cut");
}

#[test]
fn set_percpu_buf_out_of_range_is_refused_by_name() {
    let name = "set_percpu_buf_out_of_range_is_refused_by_name";
    if skip_unless_root(name) {
        return;
    }
    let o = Command::new(PWRU)
        .args(["--output-skb", "--set-percpu-buf", "8", "udp"])
        .output()
        .expect("run pwru");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("dump buffer size 8") && err.contains("64..=4096"),
        "{err}"
    );
}

#[test]
fn ring_buffer_size_reaches_the_loaded_map() {
    let name = "ring_buffer_size_reaches_the_loaded_map";
    if skip_unless_root(name) {
        return;
    }
    for (bytes, flag) in [(1u64 << 16, Some("65536")), (4 << 20, None)] {
        let mut args = vec!["udp and port 1"];
        if let Some(f) = flag {
            args = vec!["--ring-buffer-size", f, "udp and port 1"];
        }
        let (mut child, ready) = start("ring", &args);
        let sizes = ring_buffer_sizes(child.id());
        cleanup(&mut child, &ready);
        assert_eq!(sizes, vec![bytes], "ring buffer maps of pwru {args:?}");
    }
    println!("{name}: --ring-buffer-size 65536 -> max_entries 65536; default 4 MiB");
}
