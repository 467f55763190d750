//! `tests/run-all.sh --summarize` on a fixed log: every SKIP line is found, even one printed
//! after libtest's `test NAME ... ` on the same line, and the last line is the totals.

use std::process::Command;

const LOG: &str = "\
     Running tests/a.rs (target/debug/deps/a-1)
running 3 tests
test skipped_whole ... SKIP skipped_whole: this machine lacks fentry: refused
ok
test part ... SKIP part (kfunc-cast variant): this machine lacks rdonly_cast: old
ok
test child_run ... test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 5 filtered out
ok
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s
     Running tests/b.rs (target/debug/deps/b-2)
running 2 tests
test broken ... FAILED
test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.1s
     Running tests/c.rs (target/debug/deps/c-3)
running 1 test
error: test failed, to rerun pass `-p x --test c` (signal: 11, SIGSEGV)
   Doc-tests x
test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s
";

fn summarize(files: &[(&str, &str)]) -> String {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pwru-run-all-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec![
        concat!(env!("CARGO_MANIFEST_DIR"), "/run-all.sh").to_string(),
        "--summarize".into(),
    ];
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        args.push(p.display().to_string());
    }
    let out = Command::new("bash").args(&args).output().expect("bash");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_skip_is_listed_and_the_last_line_counts() {
    let out = summarize(&[("test.log", LOG)]);
    println!("{out}");
    assert!(out.contains("  SKIP skipped_whole: this machine lacks fentry: refused\n"));
    assert!(out.contains("  SKIP part (kfunc-cast variant): this machine lacks rdonly_cast"));
    // passed: 3 + 1 + 2 cargo passes, less the one whole skip; failed: 1 + the crashed binary;
    // skipped: 2 SKIP lines + 1 ignored. The child's result line is not counted.
    assert_eq!(out.lines().last(), Some("5 passed, 2 failed, 3 skipped"));
}

#[test]
fn the_matrix_line_is_added_and_a_missing_one_fails() {
    let ok = "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured\n";
    let log = format!("     Running tests/a.rs (a)\n{ok}");
    let out = summarize(&[
        ("t.log", &log),
        ("m.log", "matrix: 4 passed, 1 failed, 2 skipped\n"),
    ]);
    assert_eq!(out.lines().last(), Some("6 passed, 1 failed, 2 skipped"));
    let out = summarize(&[("t.log", &log), ("m.log", "[vm] booting\n")]);
    assert_eq!(out.lines().last(), Some("2 passed, 1 failed, 0 skipped"));
}
