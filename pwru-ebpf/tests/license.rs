//! The shipped object's `license` section, the SPDX lines of the C sources, Cargo.toml's
//! `license` and the LICENSE files agree. The kernel lets only GPL-compatible programs call
//! GPL-only helpers, so the section must name a GPL-compatible choice the sources really offer.

use std::path::Path;

/// The C sources' SPDX expression and the kernel's name for the same choice.
const C_SPDX: &str = "(GPL-2.0-only OR MIT)";
const KERNEL_LICENSE: &str = "Dual MIT/GPL";

fn u16_at(b: &[u8], off: usize) -> usize {
    usize::from(u16::from_le_bytes([b[off], b[off + 1]]))
}

fn u64_at(b: &[u8], off: usize) -> usize {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    usize::try_from(u64::from_le_bytes(w)).expect("offset fits usize")
}

/// Contents of the ELF64 little-endian section called `name`.
fn section<'a>(elf: &'a [u8], name: &str) -> Option<&'a [u8]> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!((elf[4], elf[5]), (2, 1), "not ELF64 little endian");
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(elf, 0x28),
        u16_at(elf, 0x3a),
        u16_at(elf, 0x3c),
        u16_at(elf, 0x3e),
    );
    let header = |i: usize| {
        let h = shoff + i * shentsize;
        // (name offset, file offset, size)
        (
            u32::from_le_bytes(elf[h..h + 4].try_into().expect("4 bytes")) as usize,
            u64_at(elf, h + 0x18),
            u64_at(elf, h + 0x20),
        )
    };
    let (_, str_off, _) = header(shstrndx);
    (0..shnum).find_map(|i| {
        let (n, off, size) = header(i);
        let s = &elf[str_off + n..];
        let end = s.iter().position(|&c| c == 0)?;
        (&s[..end] == name.as_bytes()).then(|| &elf[off..off + size])
    })
}

#[test]
fn license_section_matches_spdx_lines_and_cargo_license() {
    let section = section(pwru_ebpf::OBJECT, "license").expect("the object has a license section");
    assert_eq!(
        section,
        format!("{KERNEL_LICENSE}\0").as_bytes(),
        "license section of the shipped object"
    );

    let bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf");
    let mut checked = 0;
    for entry in std::fs::read_dir(&bpf).expect("bpf/") {
        let path = entry.expect("dir entry").path();
        let text = std::fs::read_to_string(&path).expect("C source");
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("/* SPDX-License-Identifier: {C_SPDX} */"),
            "first line of {}",
            path.display()
        );
        if path.extension().is_some_and(|e| e == "c") {
            assert!(
                text.contains(&format!(
                    "char LICENSE[] SEC(\"license\") = \"{KERNEL_LICENSE}\";"
                )),
                "{} must declare the license section as {KERNEL_LICENSE:?}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} files in bpf/");

    let cargo_license = env!("CARGO_PKG_LICENSE");
    assert!(
        cargo_license.contains(C_SPDX),
        "Cargo.toml's license {cargo_license:?} must cover the C sources' {C_SPDX}"
    );
    for (id, file) in [
        ("MIT", "LICENSE-MIT"),
        ("Apache-2.0", "LICENSE-APACHE"),
        ("GPL-2.0-only", "LICENSE-GPL-2.0"),
    ] {
        if cargo_license.contains(id) {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            assert!(
                p.is_file(),
                "{id} is declared but {} is missing",
                p.display()
            );
        }
    }
}
