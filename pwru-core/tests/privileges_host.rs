//! Privilege errors name what is really missing: each test runs itself again in a child that
//! lost one capability (util-linux `setpriv` drops it from the bounding set, so the re-executed
//! root child never gets it), and checks the library's message against the kernel's own answer.

use std::process::{Command, Stdio};

use pwru_core::privileges::{self, AddressPolicy};
use pwru_core::symbols::{KernelSymbols, SymbolsError};
use pwru_core::Capability;
use pwru_core::{Backend, Error, Tracer};

const CHILD_ENV: &str = "PWRU_PRIVILEGES_CHILD";

fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

fn cap_eff() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff");
    u64::from_str_radix(hex.trim(), 16).expect("hex")
}

/// Runs test `name` again without capability `cap` (setpriv's name, e.g. `syslog`); returns
/// false after printing SKIP when this machine cannot.
fn rerun_without(name: &str, cap: &str) -> bool {
    if !pwru_testkit::root::is_root() {
        println!("SKIP {name}: needs root to drop one capability and keep the others");
        return false;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!("SKIP {name}: util-linux setpriv is not installed");
        return false;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("setpriv")
        .args(["--bounding-set", &format!("-{cap}"), "--"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "{name}: child said:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child without {cap} failed");
    assert!(
        stdout.contains("CHILD-CHECKED"),
        "the child did not run its checks"
    );
    true
}

#[test]
fn without_cap_syslog_the_error_names_it() {
    let name = "without_cap_syslog_the_error_names_it";
    if !is_child() {
        rerun_without(name, "syslog");
        return;
    }
    assert_eq!(cap_eff() & (1 << 34), 0, "the child still has CAP_SYSLOG");
    assert_ne!(cap_eff() & (1 << 39), 0, "the child lost CAP_BPF too");
    // The oracle: does the kernel show this process addresses in /proc/kallsyms?
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let shown = kallsyms
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|a| u64::from_str_radix(a, 16).is_ok_and(|a| a != 0));
    let policy = AddressPolicy::current();
    println!("policy {policy:?}, addresses shown: {shown}");
    assert!(!policy.cap_syslog);
    assert_eq!(
        policy.advice().is_none(),
        shown,
        "the library misjudges the kernel"
    );
    let result = Tracer::builder().backend(Backend::Tracepoint).build();
    if shown {
        // kptr_restrict=0 with perf_event_paranoid<=1: nothing is missing.
        result.expect("build with addresses shown");
        println!("CHILD-CHECKED addresses are shown without CAP_SYSLOG here");
        return;
    }
    let e = result.expect_err("build must fail without visible addresses");
    let Error::Privileges { missing, advice } = &e else {
        panic!("expected Error::Privileges, got {e:?}");
    };
    println!("error: {e}");
    if policy.kptr_restrict < 2 {
        assert_eq!(missing.capabilities, [Capability::Syslog]);
        assert!(!missing.kernel_addresses);
        assert_eq!(missing.to_string(), "CAP_SYSLOG");
        assert!(advice.contains("grant CAP_SYSLOG"), "{advice}");
    }
    if policy.kptr_restrict == 0 {
        // Already 0: suggesting it would send the user in a circle.
        assert!(!advice.contains("kptr_restrict=0"), "{advice}");
        assert!(advice.contains("perf_event_paranoid=1"), "{advice}");
    }
    // Reading the symbols says the same.
    match KernelSymbols::load() {
        Err(s @ SymbolsError::Restricted { .. }) => {
            let text = s.to_string();
            println!("symbols: {text}");
            assert!(text.contains(advice.as_str()), "{text}");
        }
        other => panic!("expected SymbolsError::Restricted, got {other:?}"),
    }
    println!("CHILD-CHECKED");
}

#[test]
fn without_cap_sys_admin_network_namespaces_name_it() {
    let name = "without_cap_sys_admin_network_namespaces_name_it";
    if !is_child() {
        rerun_without(name, "sys_admin");
        return;
    }
    assert_eq!(
        cap_eff() & (1 << 21),
        0,
        "the child still has CAP_SYS_ADMIN"
    );
    // The oracle: the kernel refuses a new network namespace.
    assert!(
        pwru_testkit::sys::unshare_netns().is_err(),
        "unshare(CLONE_NEWNET) worked without CAP_SYS_ADMIN"
    );
    let mut needed = vec![Capability::Bpf, Capability::Perfmon];
    needed.extend_from_slice(privileges::NETWORK_NAMESPACES);
    let e = privileges::require(&needed).expect_err("CAP_SYS_ADMIN is missing");
    let Error::Privileges { missing, advice } = &e else {
        panic!("expected Error::Privileges, got {e:?}");
    };
    println!("error: {e}");
    assert_eq!(missing.capabilities, [Capability::SysAdmin]);
    assert_eq!(missing.to_string(), "CAP_SYS_ADMIN");
    // Granting what the advice lists must be enough: it names CAP_SYS_ADMIN too.
    assert!(advice.contains("CAP_SYS_ADMIN"), "{advice}");
    assert!(advice.contains("CAP_NET_ADMIN"), "{advice}");
    // Tracing alone does not need it (CAP_BPF and CAP_PERFMON are there).
    assert!(privileges::require(&[Capability::Bpf, Capability::Perfmon]).is_ok());
    println!("CHILD-CHECKED");
}
