//! Each error a user can hit while building a tracer, triggered for real through the public
//! API, with the message checked against an independent oracle where one exists (libpcap
//! through the pcap crate, the regex crate, the kernel's own probe answer).

mod tracer_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use pwru_core::discovery::DiscoveryError;
use pwru_core::loader::{probe_backend, ProbeBackend};
use pwru_core::netns::NetnsError;
use pwru_core::{Backend, Error, Tracer, TracerBuilder};
use tracer_common::*;

/// The tracepoint backend: cheap to probe, and what this host supports.
fn builder() -> TracerBuilder {
    Tracer::builder().backend(Backend::Tracepoint)
}

fn build_err(b: TracerBuilder) -> Error {
    match b.build() {
        Ok(t) => panic!("build succeeded with {} targets", t.targets().len()),
        Err(e) => {
            println!("  -> {e}");
            e
        }
    }
}

const UNPRIVILEGED_ENV: &str = "PWRU_PROOF_UNPRIVILEGED";

#[test]
fn without_capabilities_build_names_cap_bpf() {
    let name = "without_capabilities_build_names_cap_bpf";
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if std::env::var_os(UNPRIVILEGED_ENV).is_some() || !root {
        // The child (or a normal user's run): without capabilities, build must say so.
        if root {
            // Become nobody, which clears every effective capability.
            // SAFETY: plain credential syscalls; glibc applies them to every thread.
            unsafe {
                assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
                assert_eq!(libc::setresgid(65534, 65534, 65534), 0);
                assert_eq!(libc::setresuid(65534, 65534, 65534), 0);
            }
        }
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let eff = status
            .lines()
            .find(|l| l.starts_with("CapEff:"))
            .expect("CapEff");
        println!("CHILD {eff}");
        match Tracer::builder().build() {
            Err(e @ Error::Privileges { .. }) => {
                let Error::Privileges { missing } = &e else {
                    unreachable!()
                };
                assert!(missing.contains("CAP_BPF"), "{missing}");
                assert!(missing.contains("CAP_PERFMON"), "{missing}");
                println!("CHILD-ERROR {e}");
            }
            other => panic!("expected Error::Privileges, got {other:?}"),
        }
        return;
    }
    // As root: run this test again in a child that drops to nobody.
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(UNPRIVILEGED_ENV, "1")
        .stdout(Stdio::piped())
        .output()
        .expect("run the unprivileged child");
    let lines: Vec<String> = BufReader::new(&out.stdout[..])
        .lines()
        .map_while(Result::ok)
        .collect();
    println!("{name}: child said:\n{}", lines.join("\n"));
    assert!(out.status.success(), "unprivileged child failed");
    let err = lines
        .iter()
        .find_map(|l| l.split_once("CHILD-ERROR ").map(|(_, e)| e.to_string()))
        .expect("the child printed its error");
    assert!(
        err.contains("CAP_BPF") && err.contains("run as root"),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CapEff:\t0000000000000000")),
        "the child still had capabilities"
    );
}

#[test]
fn invalid_pcap_filter_carries_libpcaps_message() {
    let name = "invalid_pcap_filter_carries_libpcaps_message";
    if skip_unless_root(name) {
        return;
    }
    for expr in [
        "udp and port",
        "host 300.1.2.3",
        "tcp[tcpflags] & tcp-nosuch != 0",
    ] {
        // The oracle: libpcap itself, through the pcap crate.
        let pcap_msg = match pcap::Capture::dead(pcap::Linktype::ETHERNET)
            .expect("dead capture")
            .compile(expr, true)
        {
            Ok(_) => panic!("libpcap accepted {expr:?}"),
            Err(e) => e.to_string(),
        };
        match build_err(builder().pcap_filter(expr)) {
            Error::Filter {
                which,
                expr: got,
                message,
            } => {
                assert_eq!((which, got.as_str()), ("pcap", expr));
                assert!(
                    message.contains(pcap_msg.trim_start_matches("libpcap error: ")),
                    "{message:?} lacks libpcap's {pcap_msg:?}"
                );
            }
            other => panic!("{expr}: expected Error::Filter, got {other:?}"),
        }
    }
    // The tunnel filters are checked the same way.
    match build_err(builder().tunnel_filter_l3("udp and port")) {
        Error::Filter { which, .. } => assert_eq!(which, "tunnel L3"),
        other => panic!("expected Error::Filter, got {other:?}"),
    }
}

#[test]
fn bad_function_regex_and_no_match() {
    let name = "bad_function_regex_and_no_match";
    if skip_unless_root(name) {
        return;
    }
    let re = "ip_(rcv";
    // The oracle: the regex crate on the expression as written (the error's caret diagram
    // then points into the user's text, not into the anchored whole-name form).
    let oracle = regex::Regex::new(re)
        .expect_err("invalid regex")
        .to_string();
    match build_err(builder().function_regex(re)) {
        Error::Discovery(DiscoveryError::BadRegex { expr, source }) => {
            assert_eq!(expr, re);
            assert_eq!(source.to_string(), oracle);
            assert!(!oracle.contains("^(?:"), "{oracle}");
        }
        other => panic!("expected BadRegex, got {other:?}"),
    }
    match build_err(builder().function_regex("pwru_no_such_function_.*")) {
        Error::Discovery(DiscoveryError::NoMatch { expr }) => {
            assert_eq!(expr, "pwru_no_such_function_.*")
        }
        other => panic!("expected NoMatch, got {other:?}"),
    }
    // Whole-name match: a prefix of a real tracepoint name matches nothing.
    assert!(matches!(
        build_err(builder().function_regex("kfree_sk")),
        Error::Discovery(DiscoveryError::NoMatch { .. })
    ));
}

#[test]
fn bad_netns_and_unknown_interface() {
    let name = "bad_netns_and_unknown_interface";
    if skip_unless_root(name) {
        return;
    }
    let missing = format!("/run/netns/pwru-proof-{}-none", std::process::id());
    match build_err(builder().netns(&*missing)) {
        Error::Netns(NetnsError::Open { path, source }) => {
            assert_eq!(path.to_string_lossy(), missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected NetnsError::Open, got {other:?}"),
    }
    assert!(matches!(
        build_err(builder().netns("my-namespace")),
        Error::Netns(NetnsError::BadSpec(_))
    ));
    // An inode is compared as given (a namespace may be held by no file), but resolving an
    // interface in it needs a file: inode 1 is never a network namespace.
    assert!(matches!(
        build_err(builder().netns("inode:1").interface("lo")),
        Error::Netns(NetnsError::InodeNotFound(1))
    ));
    match build_err(builder().interface("pwnosuch0")) {
        Error::Netns(NetnsError::NoInterface { name, .. }) => assert_eq!(name, "pwnosuch0"),
        other => panic!("expected NoInterface, got {other:?}"),
    }
    // An interface is looked up in the chosen namespace only: lo exists in any, a veth of a
    // fresh pair only in its own.
    let pair = pwru_core::netlab::VethPair::create(&tag('e', 1), 195).expect("veth pair");
    match build_err(builder().interface(&*pair.if_b)) {
        Error::Netns(NetnsError::NoInterface { name, .. }) => assert_eq!(name, pair.if_b),
        other => panic!("expected NoInterface, got {other:?}"),
    }
    let path_a = pwru_core::netlab::VethPair::netns_path(&pair.ns_a);
    assert!(matches!(
        build_err(
            builder()
                .netns(path_a.to_string_lossy())
                .interface(&*pair.if_b)
        ),
        Error::Netns(NetnsError::NoInterface { .. })
    ));
}

#[test]
fn unsupported_backends_carry_the_kernels_reason() {
    let name = "unsupported_backends_carry_the_kernels_reason";
    if skip_unless_root(name) {
        return;
    }
    let mut refused = Vec::new();
    for (backend, probe, cap) in [
        (
            Backend::KprobeMulti,
            ProbeBackend::KprobeMulti,
            "kprobe-multi",
        ),
        (Backend::Kprobe, ProbeBackend::Kprobe, "kprobe"),
        (Backend::Fentry, ProbeBackend::Fentry, "fentry"),
    ] {
        // Which backends are refused: the kernel config (tests/capabilities.conf); the reason:
        // the kernel's answer to a real load + attach of a probe program.
        let expected = capabilities::expect(cap);
        let kernel_reason = match (probe_backend(probe), &expected) {
            (Ok(()), capabilities::Expect::No(why)) => {
                panic!("{backend}: the probe accepted it, but the rules say: {why}")
            }
            (Ok(()), _) => {
                println!("{name}: {backend} works on this kernel; not an error here");
                continue;
            }
            (Err(e), capabilities::Expect::Yes) => {
                panic!("{backend}: the kernel config has it, but the probe refused: {e}")
            }
            (Err(e), _) => e,
        };
        match build_err(Tracer::builder().backend(backend)) {
            Error::BackendUnsupported { backend: b, reason } => {
                assert_eq!(b, backend);
                assert_eq!(reason, kernel_reason);
            }
            other => panic!("{backend}: expected BackendUnsupported, got {other:?}"),
        }
        refused.push((backend, kernel_reason));
    }
    if refused.is_empty() {
        skip(
            name,
            "this machine lacks no function backend (nothing to refuse)",
        );
        return;
    }
    // Auto falls through the refused backends and keeps each reason.
    let auto = Tracer::builder()
        .function_regex("kfree_skb")
        .build()
        .expect("auto build");
    println!("{name}: auto chose {}", auto.backend());
    for (backend, reason) in &refused {
        assert!(
            auto.backend_refusals()
                .iter()
                .any(|(b, r)| b == backend && r == reason),
            "auto lost the refusal of {backend}: {:?}",
            auto.backend_refusals()
        );
    }
}

#[test]
fn missing_external_btf_and_bad_ring_size() {
    let name = "missing_external_btf_and_bad_ring_size";
    if skip_unless_root(name) {
        return;
    }
    let e = build_err(builder().kernel_btf("/nonexistent/vmlinux"));
    assert!(
        matches!(e, Error::Discovery(DiscoveryError::Btf(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("/nonexistent/vmlinux"), "{e}");
    // Not a BTF file at all.
    let e = build_err(builder().kernel_btf("/proc/self/status"));
    assert!(
        matches!(e, Error::Discovery(DiscoveryError::Btf(_))),
        "{e:?}"
    );
    for bytes in [1000, 4097, 2048] {
        assert!(matches!(
            build_err(builder().ring_buffer_bytes(bytes)),
            Error::InvalidOption(_)
        ));
    }
}
