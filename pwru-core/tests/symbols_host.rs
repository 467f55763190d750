//! /proc/kallsyms symbolization.

use pwru_testkit::capabilities;

use pwru_core::symbols::{KernelSymbols, SymbolsError, SymbolsJob};

#[test]
fn host_kallsyms_resolves_known_functions() {
    // Addresses in /proc/kallsyms are readable by root (CAP_SYSLOG); then loading must work.
    if !capabilities::is_root() {
        capabilities::skip(
            "host_kallsyms_resolves_known_functions",
            "needs root to read kernel addresses in /proc/kallsyms",
        );
        return;
    }
    let syms = KernelSymbols::load().expect("KernelSymbols::load as root");
    assert!(syms.len() > 10_000);
    // The oracle: the address kallsyms lists for ip_rcv.
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let line = text
        .lines()
        .find(|l| l.ends_with(" ip_rcv"))
        .expect("ip_rcv in kallsyms");
    let addr = u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap();
    assert_eq!(syms.address_of("ip_rcv"), Some(addr));
    let s = syms.lookup(addr + 4).unwrap();
    assert_eq!(
        (&*s.name, s.offset, s.module.is_none()),
        ("ip_rcv", 4, true)
    );
    assert_eq!(s.to_string(), "ip_rcv+0x4");
    assert_eq!(syms.lookup(addr).unwrap().to_string(), "ip_rcv");
    assert!(syms.lookup(0).is_none());
    let stack = syms.symbolize(&[addr + 1, 0, addr]);
    assert_eq!(stack.len(), 2);
    assert_eq!(stack[0].to_string(), "ip_rcv+0x1");
}

#[test]
fn restricted_addresses_are_a_clear_error() {
    let err =
        KernelSymbols::parse("0000000000000000 T _text\n0000000000000000 T ip_rcv\n").unwrap_err();
    assert!(matches!(err, SymbolsError::Restricted { .. }));
    println!("{err}");
    assert!(matches!(
        KernelSymbols::parse(""),
        Err(SymbolsError::Empty(_))
    ));
}

#[test]
fn modules_and_malformed_lines() {
    let syms = KernelSymbols::parse(
        "garbage\nzz T bad_addr\nffffffffc0000000 t vxlan_rcv\t[vxlan]\nffffffffc0000100 T other\t[vxlan]\nffffffff81000000 D data_sym\n",
    )
    .unwrap();
    assert_eq!(syms.len(), 2);
    let s = syms.lookup(0xffffffffc0000010).unwrap();
    assert_eq!(
        (&*s.name, s.module.as_deref()),
        ("vxlan_rcv", Some("vxlan"))
    );
    assert_eq!(s.to_string(), "vxlan_rcv+0x10 [vxlan]");
    assert!(syms.lookup(0xffffffff81000000).is_none());
}

/// The job a session's table comes from: read on its thread, the targets' addresses looked up
/// there when asked, the same answers as the table's own lookup.
#[test]
fn a_symbols_job_reads_and_resolves_on_its_thread() {
    if !capabilities::is_root() {
        capabilities::skip(
            "a_symbols_job_reads_and_resolves_on_its_thread",
            "needs root to read kernel addresses in /proc/kallsyms",
        );
        return;
    }
    let names = vec![
        "ip_rcv".to_string(),
        "no_such_function_here".to_string(),
        "consume_skb".to_string(),
    ];
    let mut job = SymbolsJob::start().expect("a thread");
    assert!(job.is_current(), "no module came or went within the test");
    job.resolve(names.clone());
    let (table, addresses) = job.wait_resolved().expect("the read as root");
    let want: Vec<Option<u64>> = names.iter().map(|n| table.address_of(n)).collect();
    assert_eq!(addresses, want);
    assert!(addresses[0].is_some() && addresses[1].is_none() && addresses[2].is_some());
    // Not asked to resolve: the table alone, and a job dropped unwaited does not keep its
    // thread waiting for names (its sender goes with it).
    let table = SymbolsJob::start().expect("a thread").wait().expect("read");
    assert!(table.len() > 10_000);
    drop(SymbolsJob::start());
}
