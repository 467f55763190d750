//! `track_bpf_helpers` on this host: the kernel functions a loaded tc program calls are read
//! from its verified instructions, and a backend that cannot trace them is refused by name.

use pwru_core::discovery::bpf_helpers::called_by_packet_programs;
use pwru_core::error::Error;
use pwru_core::symbols::KernelSymbols;
use pwru_core::{Backend, Tracer};
use pwru_testkit::root::skip_unless_root;

#[test]
fn the_map_functions_a_loaded_tc_program_calls_are_found() {
    let name = "the_map_functions_a_loaded_tc_program_calls_are_found";
    if skip_unless_root(name) {
        return;
    }
    // Loaded (not attached): loaded programs are listed whether attached or not.
    let obj = pwru_testkit::test_programs::load_classifier("pwru_test_tc_map").expect("classifier");
    let symbols = KernelSymbols::load().expect("kallsyms");
    let helpers = called_by_packet_programs(&symbols).expect("helpers");
    println!("{name}: {helpers:?}");
    // A hash map lookup is inlined to a call of __htab_map_lookup_elem; an update calls the
    // map's htab_map_update_elem.
    assert!(
        helpers.iter().any(|h| h == "htab_map_update_elem"),
        "{helpers:?}"
    );
    assert!(
        helpers.iter().any(|h| h.contains("htab_map_lookup_elem")),
        "{helpers:?}"
    );
    drop(obj);
}

#[test]
fn the_tracepoint_backend_is_refused_naming_what_helpers_need() {
    let name = "the_tracepoint_backend_is_refused_naming_what_helpers_need";
    if skip_unless_root(name) {
        return;
    }
    let err = Tracer::builder()
        .backend(Backend::Tracepoint)
        .track_bpf_helpers(true)
        .build()
        .expect_err("helpers cannot be traced by tracepoints");
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    assert!(
        text.contains("track_bpf_helpers") && text.contains("kprobe") && text.contains("fentry"),
        "{text}"
    );
}
