//! `pwru --kernel-btf FILE` reaches every reader of kernel BTF: the demo runs from a copy of
//! the kernel's BTF while `/sys/kernel/btf/vmlinux` is hidden (an empty file bind-mounted over
//! it in a private mount namespace, so only the pwru process sees it hidden).

use std::path::PathBuf;
use std::process::{Command, Output};

const PWRU: &str = env!("CARGO_BIN_EXE_pwru");
const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Runs pwru with `args` in a private mount namespace where the kernel's BTF file is empty.
fn run_hidden(args: &[&str]) -> Output {
    let script = format!(
        "mount --make-rprivate / && mount --bind /dev/null {VMLINUX} && test ! -s {VMLINUX} && exec \"$0\" \"$@\""
    );
    Command::new("unshare")
        .args(["-m", "sh", "-c", &script, PWRU])
        .args(args)
        .output()
        .expect("run unshare")
}

/// A copy of the kernel BTF, removed at the end.
struct Copy(PathBuf);

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn demo_runs_from_a_kernel_btf_copy_while_sysfs_btf_is_hidden() {
    let name = "demo_runs_from_a_kernel_btf_copy_while_sysfs_btf_is_hidden";
    if pwru_testkit::root::skip_unless_root_for(
        name,
        "to mount, load BPF programs and make namespaces",
    ) {
        return;
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        println!("SKIP {name}: util-linux unshare is not installed");
        return;
    }
    if std::fs::metadata(VMLINUX).is_err() {
        println!("SKIP {name}: this kernel publishes no {VMLINUX} to copy");
        return;
    }
    let copy =
        Copy(std::env::temp_dir().join(format!("pwru-demo-vmlinux-{}.btf", std::process::id())));
    std::fs::copy(VMLINUX, &copy.0).expect("copy the kernel BTF");
    let copy_s = copy.0.to_string_lossy().into_owned();

    // The control: with the file hidden and no --kernel-btf, pwru fails and names the file.
    let o = run_hidden(&["--demo"]);
    let err = String::from_utf8_lossy(&o.stderr);
    println!("without --kernel-btf: {err}");
    assert!(!o.status.success(), "the demo ran without any kernel BTF");
    assert!(err.contains(VMLINUX), "{err}");

    let o = run_hidden(&["--demo", "--kernel-btf", &copy_s]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    println!("{out}\n{err}");
    assert!(
        o.status.success(),
        "demo failed with --kernel-btf:\n{out}\n{err}"
    );
    let drop_line = out
        .lines()
        .find(|l| l.contains("kfree_skb(SKB_DROP_REASON_NO_SOCKET)"))
        .unwrap_or_else(|| panic!("no drop line:\n{out}\n{err}"));
    // The drop reason's name comes from the enum in the given BTF.
    assert!(drop_line.contains(":9(udp)"), "{drop_line}");
}
