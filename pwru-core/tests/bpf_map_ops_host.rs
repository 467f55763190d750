//! `bpf_map_ops` on this host (no kprobes, fentry refused): the map functions of a loaded tc
//! program are found and classified, and the option is refused by name, with the reasons
//! the function backends were refused, instead of being ignored. The VM scenario `bpfmap`
//! traces them for real.

use pwru_core::discovery::bpf_helpers::called_by_packet_programs;
use pwru_core::discovery::map_ops::{map_ops, MapOpKind};
use pwru_core::error::Error;
use pwru_core::symbols::KernelSymbols;
use pwru_core::{backend, Backend, Tracer};
use pwru_testkit::root::skip_unless_root;

#[test]
fn the_map_operations_of_a_loaded_tc_program_are_classified() {
    let name = "the_map_operations_of_a_loaded_tc_program_are_classified";
    if skip_unless_root(name) {
        return;
    }
    let obj = pwru_testkit::test_programs::load_classifier("pwru_test_tc_map").expect("classifier");
    let symbols = KernelSymbols::load().expect("kallsyms");
    let ops = map_ops(&called_by_packet_programs(&symbols).expect("helpers"));
    println!("{name}: {ops:?}");
    // The inlined hash lookup calls __htab_map_lookup_elem (returns the element); the update
    // calls htab_map_update_elem.
    assert!(
        ops.iter()
            .any(|o| o.name == "__htab_map_lookup_elem" && o.kind == MapOpKind::LookupElem),
        "{ops:?}"
    );
    assert!(
        ops.iter()
            .any(|o| o.name == "htab_map_update_elem" && o.kind == MapOpKind::Update),
        "{ops:?}"
    );
    drop(obj);
}

#[test]
fn bpf_map_ops_is_refused_by_name_where_kprobes_and_fentry_are_missing() {
    let name = "bpf_map_ops_is_refused_by_name_where_kprobes_and_fentry_are_missing";
    if skip_unless_root(name) {
        return;
    }
    // Where a function backend works, the option is accepted: that is the VM's case.
    let usable: Vec<_> = [Backend::KprobeMulti, Backend::Kprobe, Backend::Fentry]
        .into_iter()
        .filter(|&b| {
            backend::driver(b, backend::TracepointFlavor::Btf)
                .is_some_and(|d| backend::probe(d).is_ok())
        })
        .collect();
    if !usable.is_empty() {
        println!("SKIP {name}: this kernel has {usable:?}; the refusal is for kernels without");
        return;
    }
    let err = Tracer::builder()
        .bpf_map_ops(true)
        .build()
        .expect_err("map operations cannot be traced by tracepoints");
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    assert!(
        text.contains("bpf_map_ops") && text.contains("kprobe") && text.contains("fentry"),
        "{text}"
    );
    // The reasons of the refused backends are part of it (auto choice).
    assert!(text.contains("refused them"), "{text}");
}
