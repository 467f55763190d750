//! Options checked by `build()` on the host kernel: functions without an skb argument are
//! refused by name with the tracepoint backend, and the dump bound and the snap length have
//! stated ranges.

mod tracer_common;

use pwru_core::{Backend, Error, Tracer};
use tracer_common::skip_unless_root;

#[test]
fn non_skb_functions_are_refused_by_name_on_the_tracepoint_backend() {
    let name = "non_skb_functions_are_refused_by_name_on_the_tracepoint_backend";
    if skip_unless_root(name) {
        return;
    }
    let err = Tracer::builder()
        .backend(Backend::Tracepoint)
        .non_skb_functions(["sock_def_readable"])
        .build()
        .expect_err("non-skb functions cannot work on the tracepoint backend");
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    for part in [
        "non_skb_functions",
        "sock_def_readable",
        "tracepoint",
        "kprobe",
    ] {
        assert!(msg.contains(part), "{part:?} missing in: {msg}");
    }
    // Without them the same builder works: the refusal is about them, not the backend.
    Tracer::builder()
        .backend(Backend::Tracepoint)
        .build()
        .expect("tracepoint backend without non-skb functions");
}

#[test]
fn dump_buffer_bytes_outside_its_range_is_refused() {
    let name = "dump_buffer_bytes_outside_its_range_is_refused";
    if skip_unless_root(name) {
        return;
    }
    let build = |n: u32| {
        Tracer::builder()
            .backend(Backend::Tracepoint)
            .dump_buffer_bytes(n)
            .build()
    };
    for bad in [1, 63, 4097, u32::MAX] {
        let err = build(bad).expect_err("out of range");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("dump buffer size {bad}")) && msg.contains("64..=4096"),
            "{msg}"
        );
    }
    for good in [0, 64, 256, 4096] {
        let t = build(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(t.options().dump_buffer_bytes, good);
    }
}

#[test]
fn snap_length_outside_its_range_is_refused() {
    let name = "snap_length_outside_its_range_is_refused";
    if skip_unless_root(name) {
        return;
    }
    let build = |n: u32| {
        Tracer::builder()
            .backend(Backend::Tracepoint)
            .capture(
                pwru_core::Capture::default()
                    .with_packet(true)
                    .with_snaplen(n),
            )
            .build()
    };
    for bad in [0, 4097, u32::MAX] {
        let err = build(bad).expect_err("out of range");
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
        assert!(
            msg.contains(&format!("snap length {bad}")) && msg.contains("1..=4096"),
            "{msg}"
        );
    }
    for good in [1, 256, 4096] {
        let t = build(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(t.options().capture.snaplen, good);
    }
}
