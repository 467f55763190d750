//! Nothing is left in the kernel after a Session ends, whether it is dropped or its process is
//! killed with SIGKILL. The BPF programs, links and maps a session holds are read from the
//! holder's /proc/PID/fdinfo; the kernel's id lists (BPF_*_GET_NEXT_ID) must contain them while
//! the session lives and must not contain any of them afterwards. (Other processes on the host
//! load and unload BPF objects at the same time, so the lists are compared on our ids only.)

mod tracer_common;

use pwru_core::sys::ObjectKind;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pwru_core::{Backend, Session, Tracer};
use tracer_common::*;

/// The BPF objects one process holds, by kernel id.
#[derive(Debug, Default)]
struct Held {
    progs: BTreeSet<u32>,
    links: BTreeSet<u32>,
    maps: BTreeSet<u32>,
}

fn fdinfo_id(text: &str, key: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// Every BPF program, link and map `pid` holds an fd of (a link also pins its program).
fn held(pid: u32) -> Held {
    let mut h = Held::default();
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in std::fs::read_dir(&dir).expect("fdinfo dir").flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if let Some(id) = fdinfo_id(&text, "link_id:") {
            h.links.insert(id);
            h.progs.extend(fdinfo_id(&text, "prog_id:"));
        } else if let Some(id) = fdinfo_id(&text, "prog_id:") {
            h.progs.insert(id);
        } else if let Some(id) = fdinfo_id(&text, "map_id:") {
            h.maps.insert(id);
        }
    }
    h
}

/// The kernel's list of ids for one object kind, walked with BPF_*_GET_NEXT_ID.
fn kernel_ids(kind: ObjectKind) -> BTreeSet<u32> {
    let mut ids = BTreeSet::new();
    let mut start = 0u32;
    loop {
        match pwru_core::sys::next_id(kind, start) {
            Ok(Some(next)) => {
                start = next;
                ids.insert(start);
            }
            Ok(None) => return ids,
            Err(err) => panic!("GET_NEXT_ID: {err}"),
        }
    }
}

fn kernel_lists() -> Held {
    Held {
        progs: kernel_ids(ObjectKind::Prog),
        links: kernel_ids(ObjectKind::Link),
        maps: kernel_ids(ObjectKind::Map),
    }
}

fn session() -> Session {
    Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter("udp and host 10.248.191.2")
        .track_skb(true)
        .build()
        .expect("build")
        .attach()
        .expect("attach")
}

/// Checks that `ours` are in the kernel's lists now and that they were not there `before`.
fn assert_live(ours: &Held, before: &Held) {
    assert!(!ours.progs.is_empty() && !ours.links.is_empty() && !ours.maps.is_empty());
    let now = kernel_lists();
    for (kind, mine, listed, old) in [
        ("program", &ours.progs, &now.progs, &before.progs),
        ("link", &ours.links, &now.links, &before.links),
        ("map", &ours.maps, &now.maps, &before.maps),
    ] {
        assert!(mine.is_subset(listed), "{kind}s {mine:?} not all listed");
        assert!(mine.is_disjoint(old), "{kind}s {mine:?} existed before");
    }
}

/// Waits (bounded) until none of `ours` is in the kernel's lists; the kernel frees programs
/// and maps after an RCU grace period, so they may linger a moment after the last close.
fn assert_gone(name: &str, ours: &Held) {
    let start = Instant::now();
    loop {
        let now = kernel_lists();
        let left = (
            ours.progs.intersection(&now.progs).count(),
            ours.links.intersection(&now.links).count(),
            ours.maps.intersection(&now.maps).count(),
        );
        if left == (0, 0, 0) {
            println!(
                "{name}: {} programs, {} links, {} maps gone after {:?}",
                ours.progs.len(),
                ours.links.len(),
                ours.maps.len(),
                start.elapsed()
            );
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name}: left behind (programs, links, maps) = {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dropping_a_session_leaves_no_program_link_or_map() {
    let name = "dropping_a_session_leaves_no_program_link_or_map";
    if skip_unless_root(name) {
        return;
    }
    // This is the only test of this binary that holds BPF objects in-process (the other one
    // holds them in a child), so the difference of our own fd tables is the session's.
    let me = std::process::id();
    let before_fds = held(me);
    let before = kernel_lists();
    let s = session();
    let mut ours = held(me);
    ours.progs.retain(|id| !before_fds.progs.contains(id));
    ours.links.retain(|id| !before_fds.links.contains(id));
    ours.maps.retain(|id| !before_fds.maps.contains(id));
    assert_eq!(ours.links.len(), s.attached().len(), "one link per target");
    assert_live(&ours, &before);
    drop(s);
    assert_gone(name, &ours);
}

const HOLDER_ENV: &str = "PWRU_PROOF_HOLD_SESSION";

#[test]
fn sigkill_of_the_holder_leaves_no_program_link_or_map() {
    let name = "sigkill_of_the_holder_leaves_no_program_link_or_map";
    if std::env::var_os(HOLDER_ENV).is_some() {
        // The child: hold a session until killed (libtest may print "test NAME ... " first).
        let _s = session();
        println!("READY");
        std::thread::sleep(Duration::from_secs(30));
        panic!("{name}: holder was not killed");
    }
    if skip_unless_root(name) {
        return;
    }
    let before = kernel_lists();
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(HOLDER_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("re-run the test binary as the holder");
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.any(|l| l.map(|l| l.trim_end().ends_with("READY")).unwrap_or(false));
    assert!(ready, "holder exited before READY: {:?}", child.wait());
    let ours = held(pid);
    println!(
        "{name}: holder {pid} has {} programs, {} links, {} maps",
        ours.progs.len(),
        ours.links.len(),
        ours.maps.len()
    );
    assert_live(&ours, &before);
    // Our own child, not reaped yet.
    pwru_testkit::sys::kill(pid, libc::SIGKILL).expect("kill the holder");
    let status = child.wait().expect("wait holder");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert_gone(name, &ours);
}
