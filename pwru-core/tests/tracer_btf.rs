//! One kernel BTF per tracer: `kernel_btf(path)` reaches every reader (discovery, backend
//! probes, the filter's kfunc-cast ids, aya's CO-RE relocation and attach ids), and build +
//! attach parse the kernel BTF once with this crate's reader and once into aya's type.
//!
//! The proof that nothing else reads `/sys/kernel/btf/vmlinux`: a child in a private mount
//! namespace where that file is hidden (an empty file bind-mounted over it) builds and attaches
//! a tracer from a copy and sees a real packet.

mod tracer_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pwru_core::btf::{kernel_btf_parses, Btf, KernelBtfParses};
use pwru_core::{Backend, Error, ProbeAccess, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
const CHILD_ENV: &str = "PWRU_HIDDEN_BTF_COPY";
const QUIET: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(5);

fn parses_since(before: KernelBtfParses) -> (u32, u32) {
    let now = kernel_btf_parses();
    (now.own - before.own, now.aya - before.aya)
}

/// Builds and attaches a tracepoint tracer (from `btf` when given) filtering UDP to port 9 of
/// a fresh veth pair, sends one datagram and returns after seeing its drop; also checks the
/// number of kernel BTF parses that took.
fn trace_one_packet(name: &str, btf: Option<&Path>, subnet: u8) {
    let pair = VethPair::create(&tag('b', u32::from(subnet - 196)), subnet).expect("veth pair");
    let before = kernel_btf_parses();
    let mut b = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(format!("udp and dst host {} and dst port 9", pair.addr_b));
    if let Some(p) = btf {
        b = b.kernel_btf(p);
    }
    let tracer = b.build().expect("build");
    // build() parses the BTF once with pwru-core's reader and starts aya's parse (for the
    // relocation at attach) on a thread; both are counted on this thread.
    assert_eq!(parses_since(before), (1, 1), "kernel BTF parses in build()");
    // The filter's cast ids come from the same BTF (the oracle: pwru-filter's own reader of
    // the running kernel's file, before it was hidden, passed by the parent).
    let want_cast = std::env::var("PWRU_EXPECT_CAST").ok();
    let got_cast = match tracer.filter_access() {
        ProbeAccess::Cast(ids) => Some(ids.to_string()),
        ProbeAccess::Helper => None,
    };
    if let Some(want) = &want_cast {
        assert_eq!(
            got_cast.as_deref(),
            Some(want.as_str()).filter(|w| !w.is_empty())
        );
    }
    let mut session = tracer.attach().expect("attach");
    assert_eq!(
        parses_since(before),
        (1, 1),
        "kernel BTF parses in build() + attach()"
    );
    pair.send_udp(40109, 9, 1, 16).expect("send");
    let dst = std::net::IpAddr::from(pair.addr_b);
    let seen = |evs: &[pwru_core::Event]| {
        evs.iter()
            .any(|e| is_kfree(e) && e.tuple.is_some_and(|t| t.dst == Some(dst) && t.dport == 9))
    };
    let got = collect(&mut session, seen, QUIET, LIMIT);
    assert!(
        seen(&got.events),
        "{name}: the datagram's drop was not traced:\n{}",
        describe(&got.events)
    );
    println!(
        "{name}: {} events; filter reads {}",
        got.events.len(),
        got_cast.as_deref().unwrap_or("through the helper")
    );
}

#[test]
fn one_kernel_btf_parse_per_build_and_attach() {
    let name = "one_kernel_btf_parse_per_build_and_attach";
    if skip_unless_root(name) {
        return;
    }
    trace_one_packet(name, None, 197);
}

#[test]
fn cast_ids_are_accepted_by_the_kernel() {
    use pwru_filter::{compile_ebpf_with, Layer, Mode, Options};
    use pwru_testkit::filter_harness::{harness, load, sched_cls_frame, Harness};
    let name = "cast_ids_are_accepted_by_the_kernel";
    if skip_unless_root(name) || !has(name, "rdonly_cast") {
        return;
    }
    let btf = Btf::vmlinux().expect("the kernel config has BTF: reading it must work");
    let ids = btf
        .cast_ids()
        .expect("the kernel config has bpf_rdonly_cast: Btf::cast_ids must find its ids");
    println!("{name}: {ids}");
    // The kernel's verifier is the oracle: it refuses a kfunc call whose FUNC id is not
    // bpf_rdonly_cast, and loads through a cast to a struct id that does not allow them.
    let opts = Options::with_access(ProbeAccess::Cast(ids));
    let udp = compile_ebpf_with("udp", Layer::L3, Mode::ProbeRead, &opts).expect("compile");
    let prog = load(
        Harness::SchedCls.prog_type(),
        &harness(&udp.insns, Mode::ProbeRead, Harness::SchedCls),
    )
    .unwrap_or_else(|e| panic!("the kernel refused a filter with the ids {ids}: {e}"));
    // And the loads read the packet: IPv4 UDP matches, the same header with TCP does not.
    let mut packet = vec![
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 9, 0, 9, 0, 8, 0, 0,
    ];
    let run = |p: &[u8]| {
        prog.test_run(&sched_cls_frame(p), 1)
            .expect("test run")
            .retval
    };
    assert_ne!(run(&packet), 0, "an IPv4 UDP packet must match `udp`");
    packet[9] = 6;
    assert_eq!(run(&packet), 0, "an IPv4 TCP packet must not match `udp`");
}

/// A copy of the kernel BTF that outlives the hidden original.
struct BtfCopy(PathBuf);

impl Drop for BtfCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn kernel_btf_copy_is_used_everywhere_while_sysfs_btf_is_hidden() {
    let name = "kernel_btf_copy_is_used_everywhere_while_sysfs_btf_is_hidden";
    if let Some(copy) = std::env::var_os(CHILD_ENV) {
        hidden_child(name, Path::new(&copy));
        return;
    }
    if skip_unless_root(name) {
        return;
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        println!("SKIP {name}: util-linux unshare is not installed");
        return;
    }
    let copy =
        BtfCopy(std::env::temp_dir().join(format!("pwru-vmlinux-{}.btf", std::process::id())));
    std::fs::copy(VMLINUX, &copy.0).expect("copy the kernel BTF");
    let cast = pwru_testkit::cast_ids::running_kernel()
        .expect("pwru-core reads the kernel BTF")
        .map(|ids| ids.to_string())
        .unwrap_or_default();
    let exe = std::env::current_exe().expect("test binary");
    // A private mount namespace: the bind mount hides the file from the child only.
    let out = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            &format!(
                "mount --make-rprivate / && mount --bind /dev/null {VMLINUX} && exec \"$0\" \"$@\""
            ),
        ])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &copy.0)
        .env("PWRU_EXPECT_CAST", &cast)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "{name}: child said:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed");
    assert!(
        stdout.contains("CHILD-CHECKED"),
        "the child did not run its checks"
    );
}

fn hidden_child(name: &str, copy: &Path) {
    // The setup worked: the kernel's file reads empty here ...
    let data = std::fs::read(VMLINUX).expect("read the hidden file");
    assert!(data.is_empty(), "{VMLINUX} is not hidden");
    // ... so without the copy, build() fails on it, naming the file.
    match Tracer::builder().backend(Backend::Tracepoint).build() {
        Err(e @ Error::Discovery(_)) => {
            assert!(e.to_string().contains(VMLINUX), "{e}");
            println!("without kernel_btf: {e}");
        }
        other => panic!("expected a BTF error without kernel_btf, got {other:?}"),
    }
    // With the copy, everything works: build, probes, cast ids, CO-RE, attach, a real packet.
    trace_one_packet(name, Some(copy), 198);
    println!("CHILD-CHECKED");
}
