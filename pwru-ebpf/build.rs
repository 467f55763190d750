//! Chooses the BPF object that `src/object.rs` embeds.
//!
//! By default that is the committed `obj/pwru.bpf.o`: building pwru-ebpf needs no C toolchain.
//! With `PWRU_EBPF_REBUILD=1` (developers changing `bpf/`), clang compiles `bpf/pwru.bpf.c`
//! into OUT_DIR and that object is embedded instead; `rebuild.sh` copies it over the committed
//! one. With the non-default feature `test-programs`, `bpf/testprogs.bpf.c` (tc/XDP fixtures
//! for tests, never part of the shipped object) is compiled into OUT_DIR as well.
//!
//! The compile is deterministic: fixed flags, source paths mapped to `/pwru-ebpf` (BTF line
//! info records file names), DWARF stripped with llvm-strip -g (BTF stays).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The clang the committed object was built with (see `obj/pwru.bpf.o.clang`).
const PINNED_CLANG: &str = "clang-19";
const MIN_CLANG: u32 = 14;
/// Fixed path the sources are mapped to, so the object does not depend on the checkout path.
const MAPPED_DIR: &str = "/pwru-ebpf";

fn clang_major(bin: &str) -> Option<u32> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text.split("clang version ").nth(1)?;
    after.split('.').next()?.trim().parse().ok()
}

fn find_clang() -> Result<String, String> {
    if let Ok(bin) = env::var("PWRU_CLANG") {
        return match clang_major(&bin) {
            Some(v) if v >= MIN_CLANG => Ok(bin),
            Some(v) => Err(format!(
                "PWRU_CLANG={bin} is clang {v}; clang >= {MIN_CLANG} is needed"
            )),
            None => Err(format!("PWRU_CLANG={bin} does not run as clang")),
        };
    }
    let mut candidates = vec![PINNED_CLANG.to_string()];
    candidates.extend((MIN_CLANG..=30).rev().map(|v| format!("clang-{v}")));
    candidates.push("clang".to_string());
    for bin in candidates {
        if matches!(clang_major(&bin), Some(v) if v >= MIN_CLANG) {
            return Ok(bin);
        }
    }
    Err(format!(
        "no clang >= {MIN_CLANG} found to compile the BPF programs of pwru-ebpf (asked for by \
         PWRU_EBPF_REBUILD=1 or the `test-programs` feature; plain builds use the shipped \
         object and need no clang). Install one (Debian: `apt-get install clang-19 libbpf-dev`, \
         or run tests/setup.sh as root), or point PWRU_CLANG at a clang binary."
    ))
}

/// Drops DWARF (BTF stays): the object is embedded in every binary, and DWARF records paths.
fn strip_debug(clang: &str, obj: &Path) -> Result<(), String> {
    let strip = clang.replace("clang", "llvm-strip");
    for bin in [strip.as_str(), "llvm-strip"] {
        if let Ok(s) = Command::new(bin).arg("-g").arg(obj).status() {
            if s.success() {
                return Ok(());
            }
        }
    }
    Err(format!(
        "llvm-strip not found (tried {strip} and llvm-strip): install llvm (`apt-get install llvm-19`)"
    ))
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default());
    let bpf_dir = manifest.join("bpf");
    let shipped = manifest.join("obj").join("pwru.bpf.o");
    println!("cargo:rerun-if-env-changed=PWRU_CLANG");
    println!("cargo:rerun-if-env-changed=PWRU_EBPF_REBUILD");
    println!("cargo:rerun-if-changed={}", shipped.display());

    let rebuild = env::var("PWRU_EBPF_REBUILD").is_ok_and(|v| v == "1");
    let test_programs = env::var_os("CARGO_FEATURE_TEST_PROGRAMS").is_some();
    if !rebuild && !test_programs {
        println!("cargo:rustc-env=PWRU_EBPF_OBJECT={}", shipped.display());
        return;
    }
    // Every source and header in bpf/ (the directory too, so that a new header is noticed).
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&bpf_dir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", bpf_dir.display())))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c" || x == "h"))
        .collect();
    sources.sort();
    for f in sources {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" {
        fail(&format!(
            "pwru-ebpf's kernel programs support x86_64 only (target arch is {arch})"
        ));
    }
    let clang = find_clang().unwrap_or_else(|m| fail(&m));
    for (header, package) in [
        ("/usr/include/linux/bpf.h", "linux-libc-dev"),
        ("/usr/include/bpf/bpf_helpers.h", "libbpf-dev"),
    ] {
        if !Path::new(header).exists() {
            fail(&format!(
                "{header} is missing: install {package} (`apt-get install {package}`, \
                 or run tests/setup.sh as root)"
            ));
        }
    }

    if rebuild {
        let obj = out.join("pwru.bpf.o");
        compile(&clang, &bpf_dir, "pwru.bpf.c", &obj).unwrap_or_else(|m| fail(&m));
        println!("cargo:rustc-env=PWRU_EBPF_OBJECT={}", obj.display());
    } else {
        println!("cargo:rustc-env=PWRU_EBPF_OBJECT={}", shipped.display());
    }
    if test_programs {
        let obj = out.join("testprogs.bpf.o");
        compile(&clang, &bpf_dir, "testprogs.bpf.c", &obj).unwrap_or_else(|m| fail(&m));
    }
}

fn compile(clang: &str, bpf_dir: &Path, src: &str, obj: &Path) -> Result<(), String> {
    let status = Command::new(clang)
        .current_dir(bpf_dir)
        .args(["-g", "-O2", "-target", "bpfel", "-mcpu=v3"])
        .arg("-D__TARGET_ARCH_x86")
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg("-I.")
        .arg(format!(
            "-ffile-prefix-map={}={MAPPED_DIR}",
            bpf_dir.display()
        ))
        .arg(format!("-fdebug-compilation-dir={MAPPED_DIR}"))
        .args(["-Wall", "-Werror", "-Wno-unused-function"])
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(obj)
        .status();
    match status {
        Ok(s) if s.success() => strip_debug(clang, obj),
        Ok(s) => Err(format!("{clang} failed to compile bpf/{src} ({s})")),
        Err(e) => Err(format!("could not run {clang}: {e}")),
    }
}
