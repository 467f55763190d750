//! Compiles bpf/pwru.bpf.c into one CO-RE object with clang (clang-19 preferred, any
//! clang >= 14 accepted) and puts it in OUT_DIR for `include_bytes!`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIN_CLANG: u32 = 14;

fn clang_major(bin: &str) -> Option<u32> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text.split("clang version ").nth(1)?;
    after.split('.').next()?.trim().parse().ok()
}

fn find_clang() -> Result<(String, u32), String> {
    if let Ok(bin) = env::var("PWRU_CLANG") {
        return match clang_major(&bin) {
            Some(v) if v >= MIN_CLANG => Ok((bin, v)),
            Some(v) => Err(format!(
                "PWRU_CLANG={bin} is clang {v}; clang >= {MIN_CLANG} is needed"
            )),
            None => Err(format!("PWRU_CLANG={bin} does not run as clang")),
        };
    }
    let mut candidates = vec!["clang-19".to_string()];
    candidates.extend((MIN_CLANG..=30).rev().map(|v| format!("clang-{v}")));
    candidates.push("clang".to_string());
    for bin in candidates {
        if let Some(v) = clang_major(&bin) {
            if v >= MIN_CLANG {
                return Ok((bin, v));
            }
        }
    }
    Err(format!(
        "no clang >= {MIN_CLANG} found to compile the BPF programs of pwru-ebpf. \
         Install one (Debian: `apt-get install clang-19 libbpf-dev`, or run tests/setup.sh as root), \
         or point PWRU_CLANG at a clang binary."
    ))
}

/// Drops DWARF (BTF stays): the object is embedded in every binary. Optional.
fn strip_debug(clang: &str, obj: &Path) {
    let strip = clang.replace("clang", "llvm-strip");
    for bin in [strip.as_str(), "llvm-strip"] {
        if let Ok(s) = Command::new(bin).arg("-g").arg(obj).status() {
            if s.success() {
                return;
            }
        }
    }
    println!("cargo:warning=llvm-strip not found: the embedded BPF object keeps its DWARF");
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default());
    let bpf_dir = manifest.join("bpf");
    println!("cargo:rerun-if-env-changed=PWRU_CLANG");
    for f in ["pwru.bpf.c", "testprogs.bpf.c", "event.h", "kernel.h"] {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(f).display());
    }

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let (target_arch, multiarch) = match arch.as_str() {
        "x86_64" => ("x86", "x86_64-linux-gnu"),
        other => {
            eprintln!(
                "error: pwru-ebpf's kernel programs support x86_64 only (target arch is {other})"
            );
            std::process::exit(1);
        }
    };

    let (clang, _) = match find_clang() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("error: {msg}");
            std::process::exit(1);
        }
    };
    if !Path::new("/usr/include/linux/bpf.h").exists() {
        eprintln!(
            "error: /usr/include/linux/bpf.h is missing: install linux-libc-dev \
             (`apt-get install linux-libc-dev`, or run tests/setup.sh as root)"
        );
        std::process::exit(1);
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        eprintln!(
            "error: /usr/include/bpf/bpf_helpers.h is missing: install libbpf-dev \
             (`apt-get install libbpf-dev`, or run tests/setup.sh as root)"
        );
        std::process::exit(1);
    }

    for (src, name) in [
        ("pwru.bpf.c", "pwru.bpf.o"),
        ("testprogs.bpf.c", "testprogs.bpf.o"),
    ] {
        compile(
            &clang,
            target_arch,
            multiarch,
            &bpf_dir,
            src,
            &out.join(name),
        );
    }
}

fn compile(clang: &str, target_arch: &str, multiarch: &str, bpf_dir: &Path, src: &str, obj: &Path) {
    let status = Command::new(clang)
        .args(["-g", "-O2", "-target", "bpfel", "-mcpu=v3"])
        .arg(format!("-D__TARGET_ARCH_{target_arch}"))
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg("-I")
        .arg(bpf_dir)
        .args(["-Wall", "-Werror", "-Wno-unused-function"])
        .arg("-c")
        .arg(bpf_dir.join(src))
        .arg("-o")
        .arg(obj)
        .status();
    match status {
        Ok(s) if s.success() => strip_debug(clang, obj),
        Ok(s) => {
            eprintln!("error: {clang} failed to compile bpf/{src} ({s})");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("error: could not run {clang}: {e}");
            std::process::exit(1);
        }
    }
}
