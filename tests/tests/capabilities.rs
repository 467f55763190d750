//! The capability rules (tests/capabilities.conf) judged against fixed kernel configs, so a
//! change to the rules or their reader cannot quietly turn expected capabilities into skips.

use pwru_testkit::capabilities::{Expect, Machine, RULES};

const FULL: &str = "CONFIG_KPROBES=y\nCONFIG_KPROBE_EVENTS=y\nCONFIG_BPF_EVENTS=y\n\
CONFIG_FPROBE=y\nCONFIG_DEBUG_INFO_BTF=y\nCONFIG_BPF_JIT=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_NET=y\n\
CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\nCONFIG_DYNAMIC_FTRACE=y\n";

fn yes(m: &Machine, cap: &str) -> bool {
    m.expect(cap) == Expect::Yes
}

#[test]
fn a_full_config_expects_everything() {
    let m = Machine::parse(RULES, Ok(FULL), "6.12.57+deb13-cloud-amd64").unwrap();
    for cap in m.capabilities() {
        assert!(yes(&m, cap), "{cap}: {:?}", m.expect(cap));
    }
}

#[test]
fn a_missing_option_is_named() {
    // Debian 6.1: no CONFIG_FPROBE, and no bpf_rdonly_cast before 6.2.
    let cfg = FULL.replace("CONFIG_FPROBE=y", "# CONFIG_FPROBE is not set");
    let m = Machine::parse(RULES, Ok(&cfg), "6.1.0-56-cloud-amd64").unwrap();
    assert_eq!(
        m.expect("kprobe-multi"),
        Expect::No("the kernel config lacks CONFIG_FPROBE=y".into())
    );
    assert!(yes(&m, "kprobe") && yes(&m, "fentry") && yes(&m, "tp_btf"));
    assert!(matches!(m.expect("rdonly_cast"), Expect::No(w) if w.contains("older than 6.2")));
    // A module (=m) is not built in.
    let cfg = FULL.replace("CONFIG_KPROBES=y", "CONFIG_KPROBES=m");
    let m = Machine::parse(RULES, Ok(&cfg), "6.12.1").unwrap();
    assert!(!yes(&m, "kprobe") && !yes(&m, "kprobe-multi") && yes(&m, "fentry"));
}

#[test]
fn the_development_host_facts() {
    // Kernel 6.18 without kprobes, fentry and ftrace's function list refused by the machine.
    let cfg = FULL
        .replace("CONFIG_KPROBES=y", "# CONFIG_KPROBES is not set")
        .replace("CONFIG_FPROBE=y", "# CONFIG_FPROBE is not set");
    let m = Machine::parse(RULES, Ok(&cfg), "6.18.44-fc-v1147").unwrap();
    for cap in [
        "tracepoint",
        "tp_btf",
        "raw_tp",
        "btf",
        "test_run",
        "rdonly_cast",
    ] {
        assert!(yes(&m, cap), "{cap}: {:?}", m.expect(cap));
    }
    for cap in ["kprobe", "kprobe-multi", "fentry", "ftrace_functions"] {
        assert!(matches!(m.expect(cap), Expect::No(_)), "{cap}");
    }
    // The refusal is tied to that kernel, not to 6.18 in general.
    let m = Machine::parse(RULES, Ok(&cfg), "6.18.3-amd64").unwrap();
    assert!(yes(&m, "fentry"));
}

#[test]
fn no_config_means_unknown_and_bad_rules_are_refused() {
    let m = Machine::parse(RULES, Err("no config".into()), "6.12.1").unwrap();
    assert_eq!(m.expect("tp_btf"), Expect::Unknown("no config".into()));
    assert!(Machine::parse("need", Ok(""), "6.1").is_err());
    assert!(Machine::parse("since x y", Ok(""), "6.1").is_err());
    assert!(Machine::parse("refuse x 6.*", Ok(""), "6.1").is_err());
    assert!(Machine::parse("want x CONFIG_A", Ok(""), "6.1").is_err());
}

#[test]
#[should_panic(expected = "not in tests/capabilities.conf")]
fn an_unknown_capability_is_a_test_bug() {
    let m = Machine::parse(RULES, Ok(FULL), "6.12.1").unwrap();
    let _ = m.expect("teleport");
}

#[test]
fn the_running_machine() {
    let m = Machine::running();
    let has_config = std::path::Path::new("/proc/config.gz").exists()
        || std::path::Path::new(&format!("/boot/config-{}", m.release())).exists();
    for cap in m.capabilities() {
        let e = m.expect(cap);
        println!("{} {cap}: {e:?}", m.release());
        // A config on disk must be readable and judged (root is not needed for either).
        assert!(
            !has_config || !matches!(e, Expect::Unknown(_)),
            "{cap}: {e:?}"
        );
    }
}
