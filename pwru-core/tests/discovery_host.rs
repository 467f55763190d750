//! Discovery against the host kernel's real BTF.

use pwru_testkit::capabilities;

use pwru_core::btf::Btf;
use pwru_core::discovery::{discover, skb_functions, skb_tracepoints, DiscoveryOptions, Tracefs};

/// The kernel's BTF where the kernel config has it (an error reading it fails the test); None
/// after the SKIP line where it does not.
fn host_btf(test: &str) -> Option<Btf> {
    if !capabilities::has(test, "btf") {
        return None;
    }
    Some(Btf::vmlinux().unwrap_or_else(|e| panic!("{test}: Btf::vmlinux: {e}")))
}

#[test]
fn host_skb_functions_include_known_ones() {
    let Some(btf) = host_btf("host_skb_functions_include_known_ones") else {
        return;
    };
    let funcs = skb_functions(&btf, None).unwrap();
    println!("{} skb functions in vmlinux BTF", funcs.len());
    assert!(funcs.len() > 1000, "only {} skb functions", funcs.len());
    let find = |n: &str| funcs.iter().find(|f| f.name == n);
    let ip_rcv = find("ip_rcv").expect("ip_rcv");
    assert_eq!(ip_rcv.positions, vec![1]);
    assert_eq!(
        find("__dev_queue_xmit")
            .expect("__dev_queue_xmit")
            .position(),
        1
    );
    // Drop functions: sk_skb_reason_drop (6.11+, skb second) or kfree_skb_reason (skb first).
    let drop = find("sk_skb_reason_drop")
        .map(|f| (f, 2))
        .or_else(|| find("kfree_skb_reason").map(|f| (f, 1)));
    let (f, pos) = drop.expect("a drop-reason function");
    assert_eq!(f.position(), pos, "{f:?}");
    // Every position is within 1..=5 and ascending.
    for f in &funcs {
        assert!(!f.positions.is_empty());
        assert!(f.positions.iter().all(|&p| (1..=5).contains(&p)), "{f:?}");
        assert!(f.positions.windows(2).all(|w| w[0] < w[1]), "{f:?}");
    }
    // A function known to have no skb must be absent.
    assert!(find("schedule").is_none());
}

#[test]
fn host_skb_tracepoints() {
    let Some(btf) = host_btf("host_skb_tracepoints") else {
        return;
    };
    let tracefs = Tracefs::find().ok();
    let tps = skb_tracepoints(&btf, tracefs.as_ref()).unwrap();
    println!("{} skb tracepoints", tps.len());
    for name in ["kfree_skb", "consume_skb", "netif_receive_skb"] {
        let tp = tps
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(tp.position(), 1, "{tp:?}");
        assert_eq!(tp.arg_types[0], "struct sk_buff *", "{tp:?}");
        if tracefs.is_some() {
            let want = if name == "netif_receive_skb" {
                "net"
            } else {
                "skb"
            };
            assert_eq!(tp.category.as_deref(), Some(want), "{tp:?}");
        }
    }
    let kfree = tps.iter().find(|t| t.name == "kfree_skb").unwrap();
    println!("{kfree:?}");
    assert!(
        kfree.arg_types.iter().any(|a| a == "enum skb_drop_reason"),
        "{kfree:?}"
    );
}

#[test]
fn host_discover_with_regex_and_tracepoints() {
    if host_btf("host_discover_with_regex_and_tracepoints").is_none() {
        return;
    }
    let opts = DiscoveryOptions {
        filter_func: Some("ip_rcv.*".into()),
        require_traceable: false,
        ..Default::default()
    };
    let d = discover(&opts).unwrap();
    println!("{:?}", d.stats);
    assert!(d.functions.iter().any(|f| f.name == "ip_rcv"));
    assert!(d.functions.iter().any(|f| f.name == "ip_rcv_core"));
    assert!(d.functions.iter().all(|f| f.name.starts_with("ip_rcv")));
    assert!(d.stats.skb_functions > 1000);
    assert!(d.stats.tracepoints > 0);

    // Anchored: "rcv" alone matches nothing.
    let opts = DiscoveryOptions {
        filter_func: Some("rcv".into()),
        require_traceable: false,
        tracepoints: false,
        ..Default::default()
    };
    let err = discover(&opts).unwrap_err();
    assert!(
        matches!(err, pwru_core::discovery::DiscoveryError::NoMatch { .. }),
        "{err}"
    );
}

#[test]
fn bad_regex_is_an_error() {
    let opts = DiscoveryOptions {
        filter_func: Some("ip_(rcv".into()),
        ..Default::default()
    };
    let err = discover(&opts).unwrap_err();
    assert!(
        matches!(err, pwru_core::discovery::DiscoveryError::BadRegex { .. }),
        "{err}"
    );
}

#[test]
fn host_traceable_restriction() {
    let test = "host_traceable_restriction";
    if host_btf(test).is_none() {
        return;
    }
    let Ok(tracefs) = Tracefs::find() else {
        capabilities::skip(test, "tracefs is not mounted");
        return;
    };
    let listed = capabilities::expect("ftrace_functions") == capabilities::Expect::Yes;
    let avail = match tracefs.available_functions() {
        Ok(a) => a,
        Err(e) => {
            assert!(
                !listed,
                "{test}: the kernel config has available_filter_functions: {e}"
            );
            // The error must say what to do; then check discovery reports the same error.
            assert!(e.to_string().contains("tracepoint backend"), "{e}");
            let err = discover(&DiscoveryOptions::default()).unwrap_err();
            assert!(
                matches!(
                    err,
                    pwru_core::discovery::DiscoveryError::FilterFunctions { .. }
                ),
                "{err}"
            );
            let _ = capabilities::has(test, "ftrace_functions"); // prints the SKIP line
            return;
        }
    };
    let d = discover(&DiscoveryOptions::default()).unwrap();
    assert!(d.functions.iter().all(|f| avail.contains(&f.name)));
    assert!(d.stats.traceable <= d.stats.skb_functions);
}

#[test]
fn non_skb_functions_are_checked() {
    if host_btf("non_skb_functions_are_checked").is_none() {
        return;
    }
    let opts = |names: &[&str]| DiscoveryOptions {
        filter_func: Some("ip_rcv".into()),
        non_skb_funcs: names.iter().map(|s| s.to_string()).collect(),
        require_traceable: false,
        tracepoints: false,
        ..Default::default()
    };
    let d = discover(&opts(&["nf_hook_slow_list", "schedule"]))
        .unwrap_or_else(|_| discover(&opts(&["schedule"])).unwrap());
    assert!(d.non_skb_functions.contains(&"schedule".to_string()));
    let err = discover(&opts(&["no_such_function_pwru"])).unwrap_err();
    assert!(
        matches!(
            err,
            pwru_core::discovery::DiscoveryError::UnknownFunction(_)
        ),
        "{err}"
    );
}
