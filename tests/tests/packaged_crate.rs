//! The published crates work for a user without a C toolchain: `cargo package` output of
//! pwru-ebpf, pwru-filter and pwru-core is unpacked, a crate outside the workspace
//! (tests/packaged/main.rs) depends on them through `[patch.crates-io]`, is built offline with
//! a PATH that holds no clang (and PWRU_CLANG pointing nowhere), and run as root: it must trace
//! a real datagram with the tracepoint backend.
//!
//! Everything lives under target/packaged-crate/ (its own target dir, so reruns are
//! incremental).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pwru_testkit::capabilities::skip_unless_root;

const CRATES: [&str; 3] = ["pwru-ebpf", "pwru-filter", "pwru-core"];

/// Tools a Rust build needs besides cargo/rustc (linker driver, linker, pkg-config for
/// libpcap, a shell for build scripts). Deliberately no clang.
const HOST_TOOLS: [&str; 12] = [
    "cc",
    "gcc",
    "ld",
    "ld.bfd",
    "as",
    "ar",
    "pkg-config",
    "x86_64-linux-gnu-gcc",
    "x86_64-linux-gnu-ld",
    "x86_64-linux-gnu-ld.bfd",
    "sh",
    "tar",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn which(name: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Sets every file under `dir` to the current time.
fn touch_all(dir: &Path) {
    let now = std::time::SystemTime::now();
    for entry in fs::read_dir(dir).expect("read unpacked crate") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            touch_all(&path);
        } else {
            fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(now))
                .unwrap_or_else(|e| panic!("touch {}: {e}", path.display()));
        }
    }
}

/// A directory of symlinks to cargo, rustc and HOST_TOOLS only: the PATH of the user build.
fn clang_free_bin(dir: &Path, toolchain_bin: &Path) -> PathBuf {
    let bin = dir.join("bin");
    let _ = fs::remove_dir_all(&bin);
    fs::create_dir_all(&bin).expect("bin dir");
    let host_path = std::env::var("PATH").unwrap_or_default();
    for tool in ["cargo", "rustc"] {
        std::os::unix::fs::symlink(toolchain_bin.join(tool), bin.join(tool)).expect("symlink");
    }
    for tool in HOST_TOOLS {
        if let Some(p) = which(tool, &host_path) {
            std::os::unix::fs::symlink(p, bin.join(tool)).expect("symlink");
        }
    }
    bin
}

#[test]
fn packaged_crates_build_without_clang_and_trace() {
    let name = "packaged_crates_build_without_clang_and_trace";
    if skip_unless_root(name) {
        return;
    }
    let root = workspace_root();
    let base = root.join("target/packaged-crate");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    // 1. Package (as `cargo publish` would) and unpack.
    run(
        Command::new(&cargo)
            .current_dir(&root)
            .args(["package", "--offline", "--no-verify", "--allow-dirty"])
            .args(CRATES.iter().flat_map(|c| ["-p", c]))
            .arg("--target-dir")
            .arg(base.join("package-target")),
        "cargo package",
    );
    let crates = base.join("crates");
    let _ = fs::remove_dir_all(&crates);
    fs::create_dir_all(&crates).expect("crates dir");
    let version = env!("CARGO_PKG_VERSION");
    let mut patch = String::new();
    for c in CRATES {
        let file = base.join(format!("package-target/package/{c}-{version}.crate"));
        run(
            Command::new("tar")
                .arg("-xzf")
                .arg(&file)
                .arg("-C")
                .arg(&crates),
            "unpack",
        );
        let dir = crates.join(format!("{c}-{version}"));
        // The archive's file times are cargo's fixed ones, older than the incremental build
        // of the last run: without a new time, cargo would take that build for this source.
        touch_all(&dir);
        patch.push_str(&format!(
            "{c} = {{ path = {:?} }}\n",
            dir.display().to_string()
        ));
    }
    assert!(
        crates
            .join(format!("pwru-ebpf-{version}/obj/pwru.bpf.o"))
            .is_file(),
        "the packaged pwru-ebpf has no obj/pwru.bpf.o"
    );

    // 2. The user crate, its own workspace, pinned to the workspace's lock file.
    let user = base.join("consumer");
    fs::create_dir_all(user.join("src")).expect("consumer dir");
    fs::write(
        user.join("Cargo.toml"),
        format!(
            "[package]\nname = \"pwru-consumer\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\npwru-core = \"{version}\"\nfutures = \"0.3\"\n\n\
             [patch.crates-io]\n{patch}\n[workspace]\n"
        ),
    )
    .expect("Cargo.toml");
    fs::copy(
        root.join("tests/packaged/main.rs"),
        user.join("src/main.rs"),
    )
    .expect("main.rs");
    fs::copy(root.join("Cargo.lock"), user.join("Cargo.lock")).expect("Cargo.lock");

    // 3. Build offline with no clang anywhere on PATH.
    let toolchain_bin = Path::new(&cargo)
        .parent()
        .filter(|d| d.join("rustc").is_file())
        .map(Path::to_path_buf)
        .expect("CARGO names a toolchain's cargo, next to its rustc");
    let bin = clang_free_bin(&base, &toolchain_bin);
    let path = bin.display().to_string();
    for clang in [
        "clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-14",
    ] {
        assert!(which(clang, &path).is_none(), "{clang} is on the user PATH");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let mut build = Command::new(bin.join("cargo"));
    build
        .current_dir(&user)
        .env_clear()
        .env("PATH", &path)
        .env("HOME", &home)
        .env("PWRU_CLANG", "/nonexistent/clang")
        .env("CARGO_TARGET_DIR", base.join("target"))
        .args(["build", "--offline", "--quiet"]);
    for var in ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Some(v) = std::env::var_os(var) {
            build.env(var, v);
        }
    }
    run(
        &mut build,
        "cargo build of the out-of-tree crate without clang",
    );

    // 4. Trace with it.
    let out = run(
        &mut Command::new(base.join("target/debug/pwru-consumer")),
        "the out-of-tree tracer",
    );
    assert!(
        out.contains("consumer: traced "),
        "the consumer printed no traced event:\n{out}"
    );
    println!("{name}: {}", out.trim());
}
