//! The interface-name cache against real namespaces on the host: however many namespaces and
//! interfaces exist, it keeps at most its limits and counts what it had to drop.

use pwru_core::netns::{CacheLimits, InterfaceCache};
use pwru_testkit::netlab::ip;

const NAMESPACES: usize = 40;

/// Removes the namespaces it made, also when the test fails.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

#[test]
fn cache_stays_within_its_limits_with_many_namespaces() {
    let name = "cache_stays_within_its_limits_with_many_namespaces";
    if pwru_testkit::root::skip_unless_root_for(name, "(CAP_SYS_ADMIN for ip netns and setns)") {
        return;
    }
    let mut made = Namespaces(Vec::new());
    for i in 0..NAMESPACES {
        let ns = format!("pwc{}-{i}", std::process::id() % 100_000);
        ip(&["netns", "add", &ns]).expect("ip netns add");
        made.0.push(ns.clone());
        // Three interfaces each: lo and a veth pair.
        ip(&[
            "-n", &ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ])
        .expect("add veth");
    }

    // Unbounded enough: every namespace and name is kept.
    let mut full = InterfaceCache::new();
    // (Namespaces of other processes may vanish while it reads: only ours must be complete.)
    full.refresh();
    for ns in &made.0 {
        let inode = pwru_testkit::netlab::VethPair::netns_inode(ns).expect("netns inode");
        let names = full.iter().filter(|((n, _), _)| *n == inode).count();
        assert_eq!(names, 3, "lo, v0 and v1 of {ns}");
    }
    assert_eq!(full.stats().evictions, 0);

    let limits = CacheLimits {
        max_names: 16,
        max_namespaces: 8,
        ..CacheLimits::DEFAULT
    };
    let mut small = InterfaceCache::with_limits(limits);
    small.refresh();
    let s = small.stats();
    println!(
        "{name}: {} names with default limits; with {limits:?}: {} names kept, {s:?}",
        full.len(),
        small.len()
    );
    assert!(small.len() <= 16, "{} names kept", small.len());
    assert!(!small.is_empty());
    // At least NAMESPACES - 8 namespaces were dropped from the path map.
    assert!(s.evictions >= (NAMESPACES - 8) as u64, "{s:?}");
}
