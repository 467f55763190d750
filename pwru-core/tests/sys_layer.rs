//! The syscall layer against the running kernel: a program loaded through the typed
//! `bpf_attr` calls runs (BPF_PROG_TEST_RUN), describes itself (BPF_OBJ_GET_INFO_BY_FD) and is
//! listed by BPF_PROG_GET_NEXT_ID; a refused load carries the verifier's log; a map made here
//! reads back through BPF_MAP_LOOKUP_ELEM. Needs root (CAP_BPF).

use std::os::fd::AsFd;

use pwru_core::sys::{self, insn};

fn skip_unless_root(name: &str) -> bool {
    if sys::process::is_root() {
        return false;
    }
    println!("SKIP {name}: needs root (CAP_BPF) to load programs");
    true
}

/// `r0 = value; exit` as a socket filter.
fn load_returning(value: i32, name: &str) -> std::os::fd::OwnedFd {
    let insns = [insn(0xb7, 0, 0, 0, value), insn(0x95, 0, 0, 0, 0)];
    sys::prog_load(&sys::ProgLoad {
        prog_type: sys::PROG_TYPE_SOCKET_FILTER,
        expected_attach_type: 0,
        insns: &insns,
        name,
        attach_btf_id: 0,
        attach_prog_fd: None,
    })
    .expect("a two-instruction socket filter loads")
}

#[test]
fn a_loaded_program_runs_describes_itself_and_is_listed() {
    if skip_unless_root("a_loaded_program_runs_describes_itself_and_is_listed") {
        return;
    }
    let prog = load_returning(42, "pwru_sys_test");
    let packet = [0u8; 64];
    let out = sys::prog_test_run(
        prog.as_fd(),
        &sys::TestRun {
            data: &packet,
            ctx: None,
            repeat: 3,
        },
    )
    .expect("BPF_PROG_TEST_RUN");
    assert_eq!(out.retval, 42, "the program's return value");

    let info = sys::prog_info(prog.as_fd()).expect("BPF_OBJ_GET_INFO_BY_FD");
    assert_eq!(info.name, "pwru_sys_test");
    assert_eq!(info.prog_type, sys::PROG_TYPE_SOCKET_FILTER);
    assert!(info.id > 0);

    let ids = sys::object_ids(sys::ObjectKind::Prog).expect("BPF_PROG_GET_NEXT_ID");
    assert!(ids.contains(&info.id), "id {} not in {ids:?}", info.id);
    let by_id = sys::prog_fd_by_id(info.id).expect("BPF_PROG_GET_FD_BY_ID");
    assert_eq!(sys::prog_info(by_id.as_fd()).expect("info").id, info.id);
    // The id before it leads to it (or to another program loaded in between, never past it).
    let next = sys::next_id(sys::ObjectKind::Prog, info.id - 1).expect("next id");
    assert!(matches!(next, Some(n) if n <= info.id), "{next:?}");
}

#[test]
fn a_refused_load_returns_the_verifier_log() {
    if skip_unless_root("a_refused_load_returns_the_verifier_log") {
        return;
    }
    // r0 = r2; exit: r2 is never written, which the verifier refuses.
    let insns = [insn(0xbf, 0, 2, 0, 0), insn(0x95, 0, 0, 0, 0)];
    let refused = sys::prog_load(&sys::ProgLoad {
        prog_type: sys::PROG_TYPE_SOCKET_FILTER,
        expected_attach_type: 0,
        insns: &insns,
        name: "pwru_sys_bad",
        attach_btf_id: 0,
        attach_prog_fd: None,
    })
    .expect_err("reading an uninitialised register is refused");
    assert_eq!(refused.error.raw_os_error(), Some(libc::EACCES));
    assert!(
        refused.log.contains("R2 !read_ok"),
        "verifier log: {}",
        refused.log
    );
    assert!(refused.to_string().contains("R2 !read_ok"), "{refused}");
}

#[test]
fn an_array_map_reads_back_and_refuses_wrong_sizes() {
    if skip_unless_root("an_array_map_reads_back_and_refuses_wrong_sizes") {
        return;
    }
    let map = sys::map_create(&sys::MapCreate {
        map_type: sys::MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 8,
        max_entries: 2,
        name: "pwru_sys_map",
    })
    .expect("BPF_MAP_CREATE");
    let mut value = [0xffu8; 8];
    sys::map_lookup_elem(map.as_fd(), &1u32.to_ne_bytes(), &mut value).expect("lookup");
    assert_eq!(value, [0; 8], "array slots start at zero");
    let mut short = [0u8; 4];
    let e = sys::map_lookup_elem(map.as_fd(), &1u32.to_ne_bytes(), &mut short)
        .expect_err("a 4-byte buffer for 8-byte values");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn run_time_statistics_count_test_runs() {
    if skip_unless_root("run_time_statistics_count_test_runs") {
        return;
    }
    let stats = sys::enable_run_time_stats().expect("BPF_ENABLE_STATS");
    let prog = load_returning(0, "pwru_sys_stats");
    let packet = [0u8; 64];
    let run = sys::TestRun {
        data: &packet,
        ctx: None,
        repeat: 5,
    };
    sys::prog_test_run(prog.as_fd(), &run).expect("BPF_PROG_TEST_RUN");
    let info = sys::prog_info(prog.as_fd()).expect("info");
    assert!(info.run_cnt >= 5, "run_cnt {}", info.run_cnt);
    drop(stats);
}
