//! The BTF reader: host vmlinux, split BTF, ELF objects, and corrupt input.

use pwru_testkit::capabilities;

use std::sync::Arc;

use proptest::prelude::*;
use pwru_core::btf::{Btf, BtfError, Kind, TypeId};
use pwru_core::discovery::skb_functions;

/// Builds small BTF blobs for tests (little endian).
#[derive(Default)]
struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    /// For split BTF: where this BTF's strings start.
    str_base: u32,
}

impl Builder {
    fn new() -> Self {
        Builder {
            strings: vec![0],
            ..Default::default()
        }
    }
    fn split(base_str_len: u32) -> Self {
        Builder {
            str_base: base_str_len,
            ..Default::default()
        }
    }
    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() && self.str_base == 0 {
            return 0;
        }
        let off = self.str_base + self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    fn u32(&mut self, v: u32) {
        self.types.extend_from_slice(&v.to_le_bytes());
    }
    fn head(&mut self, name: &str, kind: u32, vlen: u32, kflag: bool, st: u32) {
        let n = self.s(name);
        self.u32(n);
        self.u32((kind << 24) | vlen | if kflag { 1 << 31 } else { 0 });
        self.u32(st);
    }
    fn int(&mut self, name: &str, size: u32) {
        self.head(name, 1, 0, false, size);
        self.u32(size * 8);
    }
    fn ptr(&mut self, to: u32) {
        self.head("", 2, 0, false, to);
    }
    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) {
        self.head(name, 4, members.len() as u32, false, size);
        for (n, t, bits) in members {
            let n = self.s(n);
            self.u32(n);
            self.u32(*t);
            self.u32(*bits);
        }
    }
    fn typedef(&mut self, name: &str, to: u32) {
        self.head(name, 8, 0, false, to);
    }
    fn konst(&mut self, to: u32) {
        self.head("", 10, 0, false, to);
    }
    fn func_proto(&mut self, ret: u32, params: &[u32]) {
        self.head("", 13, params.len() as u32, false, ret);
        for p in params {
            let n = self.s("arg");
            self.u32(n);
            self.u32(*p);
        }
    }
    fn func(&mut self, name: &str, proto: u32) {
        self.head(name, 12, 1, false, proto);
    }
    fn enum32(&mut self, name: &str, vals: &[(&str, u32)]) {
        self.head(name, 6, vals.len() as u32, false, 4);
        for (n, v) in vals {
            let n = self.s(n);
            self.u32(n);
            self.u32(*v);
        }
    }
    fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        for v in [
            24u32,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// A small standalone BTF exercising every accessor.
fn sample() -> Vec<u8> {
    let mut b = Builder::new();
    b.int("int", 4); // 1
    b.strukt("sk_buff", 232, &[("len", 1, 896), ("mark", 1, 1344)]); // 2
    b.ptr(2); // 3
    b.konst(3); // 4: const struct sk_buff *
    b.typedef("skb_ptr_t", 4); // 5
    b.func_proto(1, &[1, 5, 3]); // 6
    b.func("my_rcv", 6); // 7
    b.func_proto(1, &[1, 1]); // 8
    b.func("no_skb", 8); // 9
    b.enum32(
        "skb_drop_reason",
        &[("SKB_NOT_DROPPED_YET", 0), ("SKB_DROP_REASON_NO_SOCKET", 2)],
    ); // 10
    b.build()
}

/// Touches everything reachable from a parsed BTF; must never panic.
fn exercise(btf: &Btf) {
    for (id, t) in btf.types() {
        let _ = btf.name_of(&t);
        let _ = t.members(btf).count();
        let _ = t.params(btf).count();
        let _ = t.enum_values(btf).count();
        let _ = btf.skip_modifiers(id);
        if let Some(r) = t.referenced() {
            let _ = btf.get(r);
        }
    }
    let _ = btf.enum_values("skb_drop_reason");
    let _ = btf.struct_layout("sk_buff");
    let _ = skb_functions(btf, None);
    let _ = pwru_core::discovery::skb_tracepoints(btf, None);
}

#[test]
fn sample_parses_and_discovers() {
    let btf = Btf::from_bytes(sample()).unwrap();
    assert_eq!(btf.type_count(), 11);
    let layout = btf.struct_layout("sk_buff").unwrap();
    assert_eq!(layout.size, 232);
    assert_eq!(layout.member("mark").unwrap().byte_offset(), 168);
    let funcs = skb_functions(&btf, None).unwrap();
    assert_eq!(funcs.len(), 1);
    assert_eq!(funcs[0].name, "my_rcv");
    assert_eq!(funcs[0].positions, vec![2, 3]);
    let reasons = btf.enum_values("skb_drop_reason").unwrap();
    assert_eq!(reasons[1].name, "SKB_DROP_REASON_NO_SOCKET");
    assert_eq!(reasons[1].value, 2);
    assert!(matches!(btf.get(TypeId(0)), Err(BtfError::BadTypeId(0))));
    assert!(matches!(btf.get(TypeId(11)), Err(BtfError::BadTypeId(11))));
    exercise(&btf);
}

/// The kernel's BTF where the kernel config has it (an error of the reader fails the test);
/// None after the SKIP line where it does not.
fn host_btf(test: &str) -> Option<Btf> {
    if !capabilities::has(test, "btf") {
        return None;
    }
    Some(Btf::vmlinux().unwrap_or_else(|e| panic!("{test}: Btf::vmlinux: {e}")))
}

#[test]
fn host_vmlinux_drop_reasons() {
    let Some(btf) = host_btf("host_vmlinux_drop_reasons") else {
        return;
    };
    let reasons = btf.enum_values("skb_drop_reason").unwrap();
    assert!(reasons.len() > 50, "{} reasons", reasons.len());
    let no_socket = reasons
        .iter()
        .find(|r| r.name == "SKB_DROP_REASON_NO_SOCKET")
        .expect("NO_SOCKET");
    assert!(no_socket.value > 0);
    let skb = btf.struct_layout("sk_buff").unwrap();
    assert!(skb.size > 150 && skb.member("len").is_some() && skb.member("mark").is_some());
    assert!(btf.find_by_name(Kind::Func, "ip_rcv").is_some());
}

#[test]
fn split_btf_on_top_of_vmlinux() {
    let Some(vmlinux) = host_btf("split_btf_on_top_of_vmlinux").map(Arc::new) else {
        return;
    };
    let skb = vmlinux.find_by_name(Kind::Struct, "sk_buff").unwrap().0;
    let int = vmlinux.find_by_name(Kind::Int, "int").unwrap().0;
    let base_count = vmlinux.type_count();
    // The base's string section length is what the header's str_len of the base says.
    let raw = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let base_str_len = u32::from_le_bytes(raw[20..24].try_into().unwrap());
    let mut b = Builder::split(base_str_len);
    b.ptr(skb); // base_count
    b.func_proto(int, &[int, base_count]); // base_count + 1
    b.func("pwru_mod_rcv", base_count + 1); // base_count + 2
    let m = Btf::from_split_bytes(b.build(), vmlinux.clone()).unwrap();
    assert_eq!(m.type_count(), base_count + 3);
    let funcs = skb_functions(&m, Some("pwru_mod")).unwrap();
    assert_eq!(funcs.len(), 1, "{funcs:?}");
    assert_eq!(funcs[0].name, "pwru_mod_rcv");
    assert_eq!(funcs[0].module.as_deref(), Some("pwru_mod"));
    assert_eq!(funcs[0].positions, vec![2]);
    // Base types and strings resolve through the module.
    assert_eq!(m.find_by_name(Kind::Struct, "sk_buff").unwrap().0, skb);
    // Real module BTF, when the host has any.
    for name in Btf::module_names().unwrap().iter().take(5) {
        let m = Btf::module(name, vmlinux.clone()).unwrap();
        exercise(&m);
    }
}

/// The same struct as `layout.c` below, as a Rust mirror: Rust's own layout is the oracle.
#[repr(C)]
struct Mirror {
    a: u8,
    b: u64,
    c: [u16; 3],
    d: u32,
}

#[test]
fn elf_btf_matches_repr_c_mirror() {
    let test = "elf_btf_matches_repr_c_mirror";
    let dir = std::env::temp_dir().join(format!("pwru-btf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let obj = dir.join("layout.o");
    std::fs::write(
        &src,
        "struct mirror { unsigned char a; unsigned long long b; unsigned short c[3]; unsigned int d; };\n\
         struct mirror m_instance;\n",
    )
    .unwrap();
    let clang = ["clang-19", "clang"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(clang) = clang else {
        capabilities::skip(
            test,
            "no clang to build a BPF object (tests/setup.sh installs it)",
        );
        return;
    };
    let st = std::process::Command::new(clang)
        .args(["-target", "bpfel", "-g", "-O2", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&obj).unwrap();
    let btf = Btf::from_elf(&bytes).unwrap();
    let via_file = Btf::from_file(&obj).unwrap();
    let l = btf.struct_layout("mirror").unwrap();
    assert_eq!(l, via_file.struct_layout("mirror").unwrap());
    assert_eq!(l.size as usize, std::mem::size_of::<Mirror>());
    for (name, off) in [
        ("a", std::mem::offset_of!(Mirror, a)),
        ("b", std::mem::offset_of!(Mirror, b)),
        ("c", std::mem::offset_of!(Mirror, c)),
        ("d", std::mem::offset_of!(Mirror, d)),
    ] {
        assert_eq!(
            l.member(name).unwrap().byte_offset() as usize,
            off,
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    // No .BTF section -> error, not panic.
    let err = Btf::from_elf(&bytes[..64]).unwrap_err();
    assert!(matches!(err, BtfError::Elf(_)), "{err}");
}

#[test]
fn truncations_of_host_btf_are_errors() {
    let test = "truncations_of_host_btf_are_errors";
    if !capabilities::has(test, "btf") {
        return;
    }
    let raw = std::fs::read("/sys/kernel/btf/vmlinux").expect("/sys/kernel/btf/vmlinux");
    let full = Btf::from_bytes(raw.clone()).unwrap();
    assert!(full.type_count() > 10_000);
    for len in [0, 1, 4, 23, 24, 25, 1000, raw.len() / 2, raw.len() - 1] {
        assert!(Btf::from_bytes(raw[..len].to_vec()).is_err(), "len {len}");
    }
}

#[test]
fn not_btf_is_an_error() {
    assert!(matches!(
        Btf::from_bytes(vec![0; 64]),
        Err(BtfError::BadMagic(_))
    ));
    let err = Btf::from_file("/nonexistent/pwru.btf").unwrap_err();
    assert!(err.to_string().contains("CONFIG_DEBUG_INFO_BTF"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(btf) = Btf::from_bytes(data.clone()) {
            exercise(&btf);
        }
        let _ = Btf::from_elf(&data);
    }

    #[test]
    fn mutated_sample_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut data = sample();
        for (pos, val) in flips {
            let i = pos % data.len();
            data[i] = val;
        }
        let cut = cut % (data.len() + 1);
        for d in [data.clone(), data[..cut].to_vec()] {
            if let Ok(btf) = Btf::from_bytes(d) {
                exercise(&btf);
            }
        }
    }
}
