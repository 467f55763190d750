//! Network namespace resolution against real namespaces made by the test.

use pwru_testkit::capabilities;

use std::process::Command;

use pwru_core::netns::{
    current_inode, ifindex_in, interfaces_in, ip_netns_names, InterfaceCache, NetnsError, NetnsSpec,
};

/// Deletes the namespace even when the test fails.
struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn resolve_interfaces_inside_a_netns() {
    let test = "resolve_interfaces_inside_a_netns";
    let pid = std::process::id();
    let ns = format!("pwt-{pid}-ns");
    if !capabilities::is_root() {
        capabilities::skip(test, "needs root to create a network namespace");
        return;
    }
    assert!(
        ip(&["netns", "add", &ns]),
        "{test}: root cannot create a network namespace (is iproute2 installed? tests/setup.sh)"
    );
    let _guard = NsGuard(ns.clone());
    let before = current_inode().unwrap();
    let a = format!("pwt-{pid}-a");
    let b = format!("pwt-{pid}-b");
    assert!(ip(&[
        "-n", &ns, "link", "add", &a, "type", "veth", "peer", "name", &b
    ]));

    // The oracle for ifindex: the kernel's own sysfs inside that namespace, via `ip -o link`.
    let out = Command::new("ip")
        .args(["-n", &ns, "-o", "link", "show", &a])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let want: u32 = text.split(':').next().unwrap().trim().parse().unwrap();

    let spec: NetnsSpec = format!("/run/netns/{ns}").parse().unwrap();
    assert_eq!(ifindex_in(&spec, &a).unwrap(), want);
    let inode = spec.inode().unwrap();
    assert_ne!(inode, current_inode().unwrap());
    // The same namespace by inode.
    let by_inode: NetnsSpec = format!("inode:{inode}").parse().unwrap();
    assert_eq!(ifindex_in(&by_inode, &a).unwrap(), want);
    // Not visible from the host namespace.
    let host: NetnsSpec = "/proc/self/ns/net".parse().unwrap();
    assert!(matches!(
        ifindex_in(&host, &a),
        Err(NetnsError::NoInterface { .. })
    ));
    let list = interfaces_in(&spec).unwrap();
    assert!(list.iter().any(|(i, n)| *i == want && n == &a));
    assert!(list.iter().any(|(_, n)| n == "lo"));

    assert_eq!(ip_netns_names().get(&inode), Some(&ns));

    let mut cache = InterfaceCache::new();
    assert_eq!(cache.resolve(inode, want), Some(a.as_str()));
    let mut full = InterfaceCache::new();
    full.refresh();
    assert_eq!(full.get(inode, want), Some(a.as_str()));
    let mut ctx = pwru_core::event::DecodeContext::new();
    ctx.set_interfaces_from(&full);
    assert!(full
        .iter()
        .any(|((n, i), name)| n == inode && i == want && name == a));
    // The caller's thread never changed namespace.
    assert_eq!(current_inode().unwrap(), before);
}

#[test]
fn bad_specs() {
    assert!(matches!(
        "eth0".parse::<NetnsSpec>(),
        Err(NetnsError::BadSpec(_))
    ));
    assert!(matches!(
        "inode:x".parse::<NetnsSpec>(),
        Err(NetnsError::BadSpec(_))
    ));
    let missing: NetnsSpec = "/proc/999999999/ns/net".parse().unwrap();
    assert!(matches!(missing.inode(), Err(NetnsError::Open { .. })));
    let none = NetnsSpec::Inode(1);
    assert!(matches!(none.path(), Err(NetnsError::InodeNotFound(1))));
}
