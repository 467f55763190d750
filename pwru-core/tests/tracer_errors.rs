//! Each error a user can hit while building a tracer, triggered for real through the public
//! API, with the message checked against an independent oracle where one exists (libpcap
//! through the pcap crate, the regex crate, the kernel's own probe answer).

mod tracer_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use pwru_core::backend::{probe, Driver, Fentry, Kprobe, KprobeMulti};
use pwru_core::discovery::DiscoveryError;
use pwru_core::netns::NetnsError;
use pwru_core::{Backend, Capability, Error, MissingPrivileges, Tracer, TracerBuilder};
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
    let root = pwru_testkit::root::is_root();
    if std::env::var_os(UNPRIVILEGED_ENV).is_some() || !root {
        // The child (or a normal user's run): without capabilities, build must say so.
        if root {
            // Become nobody, which clears every effective capability.
            pwru_testkit::sys::become_nobody().expect("become nobody");
        }
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let eff = status
            .lines()
            .find(|l| l.starts_with("CapEff:"))
            .expect("CapEff");
        println!("CHILD {eff}");
        match Tracer::builder().build() {
            Err(e @ Error::Privileges { .. }) => {
                let Error::Privileges { missing, .. } = &e else {
                    unreachable!()
                };
                assert!(missing.capabilities.contains(&Capability::Bpf), "{missing}");
                assert!(
                    missing.capabilities.contains(&Capability::Perfmon),
                    "{missing}"
                );
                assert!(missing.to_string().contains("CAP_BPF"), "{missing}");
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
                source,
                ..
            } => {
                let message = source.to_string();
                assert!(
                    source.downcast_ref::<pwru_filter::FilterError>().is_some(),
                    "the cause keeps libpcap's error type: {source:?}"
                );
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
    let pair = pwru_testkit::netlab::VethPair::create(&tag('e', 1), 195).expect("veth pair");
    match build_err(builder().interface(&*pair.if_b)) {
        Error::Netns(NetnsError::NoInterface { name, .. }) => assert_eq!(name, pair.if_b),
        other => panic!("expected NoInterface, got {other:?}"),
    }
    let path_a = pwru_testkit::netlab::VethPair::netns_path(&pair.ns_a);
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
    for (backend, driver, cap) in [
        (
            Backend::KprobeMulti,
            &KprobeMulti as &dyn Driver,
            "kprobe-multi",
        ),
        (Backend::Kprobe, &Kprobe, "kprobe"),
        (Backend::Fentry, &Fentry, "fentry"),
    ] {
        // Which backends are refused: the kernel config (tests/capabilities.conf); the reason:
        // the kernel's answer to a real load + attach of a probe program.
        let expected = capabilities::expect(cap);
        let kernel_reason = match (probe(driver), &expected) {
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
}

#[test]
fn default_builder_is_the_same_as_tracer_builder() {
    let name = "default_builder_is_the_same_as_tracer_builder";
    if skip_unless_root(name) {
        return;
    }
    assert_eq!(
        format!("{:?}", TracerBuilder::default().options()),
        format!("{:?}", Tracer::builder().options())
    );
    assert_eq!(
        format!("{:?}", TracerBuilder::new().options()),
        format!("{:?}", pwru_core::Options::default())
    );
    let t = TracerBuilder::default()
        .backend(Backend::Tracepoint)
        .build()
        .expect("TracerBuilder::default() builds");
    assert_eq!(
        t.options().ring_buffer_bytes,
        pwru_core::options::DEFAULT_RING_BUFFER_BYTES
    );
}

#[test]
fn ring_buffer_size_is_rounded_up_and_the_kernel_takes_it() {
    let name = "ring_buffer_size_is_rounded_up_and_the_kernel_takes_it";
    if skip_unless_root(name) {
        return;
    }
    let page = pwru_testkit::sys::page_size() as u32;
    for (asked, want) in [
        (5000, 8192.max(page)),
        (1, page),
        (page + 1, 2 * page),
        (1 << 20, 1 << 20),
    ] {
        let t = builder()
            .function_regex("kfree_skb")
            .ring_buffer_bytes(asked)
            .build()
            .unwrap_or_else(|e| panic!("ring_buffer_bytes({asked}): {e}"));
        assert_eq!(t.options().ring_buffer_bytes, want, "asked {asked}");
        // The oracle: the kernel refuses a ring buffer that is not a power-of-two number of
        // pages (EINVAL), so attaching proves the size it was given.
        let session = t
            .attach()
            .unwrap_or_else(|e| panic!("attach with ring_buffer_bytes({asked}): {e}"));
        assert_eq!(session.attached().len(), 1);
    }
    for asked in [u32::MAX, (1 << 31) + 1] {
        match build_err(builder().ring_buffer_bytes(asked)) {
            Error::InvalidOption(msg) => {
                assert!(msg.contains(&asked.to_string()), "{msg}");
                assert!(
                    msg.contains(&format!("between {page} and 2147483648")),
                    "{msg}"
                );
            }
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }
}

#[test]
fn errors_name_library_options_not_cli_flags() {
    let name = "errors_name_library_options_not_cli_flags";
    if skip_unless_root(name) {
        return;
    }
    let e = build_err(builder().function_regex("pwru_no_such_function_.*"));
    let text = e.to_string();
    assert!(text.contains("kernel_modules"), "{text}");
    // No command-line flag of any tool (`--kmods`, `--filter-func`, ...) in library errors.
    let flag = regex::Regex::new(r"(^|\s)--[a-z]").unwrap();
    for e in [
        e,
        build_err(builder().pcap_filter("udp and port")),
        build_err(builder().netns("/etc/passwd")),
        build_err(builder().ring_buffer_bytes(u32::MAX)),
        build_err(builder().kernel_btf("/nonexistent/vmlinux")),
    ] {
        assert!(!flag.is_match(&e.to_string()), "{e}");
    }
}

#[test]
fn debug_form_carries_the_message() {
    // What `fn main() -> Result<(), pwru_core::Error>` prints is "Error: {e:?}".
    let e = Error::Privileges {
        missing: MissingPrivileges::new(vec![Capability::Bpf, Capability::Perfmon], false),
        advice: "run as root, or grant CAP_BPF and CAP_PERFMON".into(),
    };
    let debug = format!("{e:?}");
    assert_eq!(debug, format!("Privileges: {e}"));
    assert!(debug.contains("run as root"), "{debug}");
    let e = Error::Discovery(DiscoveryError::NoMatch { expr: "x".into() });
    assert_eq!(format!("{e:?}"), format!("Discovery: {e}"));
}

#[test]
fn netns_must_be_a_network_namespace_file() {
    let name = "netns_must_be_a_network_namespace_file";
    if skip_unless_root(name) {
        return;
    }
    for (path, found) in [
        ("/etc/passwd", "not a namespace"),
        ("/proc/self/ns/mnt", "a mount namespace"),
        ("/proc/self/ns/uts", "a UTS namespace"),
        ("/proc/self", "a directory"),
        ("/dev/null", "not a regular file"),
    ] {
        match build_err(builder().netns(path)) {
            Error::Netns(e @ NetnsError::NotNetns { .. }) => {
                let text = e.to_string();
                assert!(text.contains(path), "{text}");
                assert!(text.contains(found), "{path}: {text}");
                assert!(text.contains("/proc/<pid>/ns/net"), "{text}");
            }
            other => panic!("{path}: expected NotNetns, got {other:?}"),
        }
    }
    // Real network namespace files: this process's, and an `ip netns` bind mount.
    let pair = pwru_testkit::netlab::VethPair::create(&tag('e', 2), 196).expect("veth pair");
    let path_a = pwru_testkit::netlab::VethPair::netns_path(&pair.ns_a);
    for path in [
        "/proc/self/ns/net".to_string(),
        path_a.to_string_lossy().into_owned(),
    ] {
        let t = builder()
            .netns(&*path)
            .build()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        // The oracle: the inode the kernel reports for the file.
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        assert_eq!(t.options().netns.as_deref(), Some(path.as_str()));
        assert_eq!(
            pwru_core::netns::netns_file_inode(path.as_ref()).unwrap(),
            ino
        );
    }
    // An inode is taken as given.
    builder()
        .netns("inode:4026531840")
        .build()
        .expect("inode: spec");
}
