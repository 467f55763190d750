//! Every expression of the filter corpus (pwru-testkit), compiled for L2 and L3 and as tunnel L2/L3
//! filters, spliced into the object and verified by the kernel in the programs that load
//! here (tp_btf, raw_tp, kprobe and kprobe.multi program types), with both ways of reading
//! packet bytes: `bpf_probe_read_kernel`, and kfunc-cast loads in every program type whose
//! probe says the kernel accepts them.

mod loader_common;

use loader_common::*;
use pwru_core::backend::{
    probe_kfunc_cast, Driver, Kprobe, KprobeMulti, Tracepoint, TracepointFlavor,
};
use pwru_core::object::{FilterBody, Loader, LoaderOptions};
use pwru_ebpf::*;
use pwru_filter::{
    compile_ebpf_with, dispatch_with_skb_entries, Layer, Mode, Options, ProbeAccess, SkbEntry,
    SkbFields, SkbValue, TranslateError,
};
use pwru_testkit::{cast_ids, corpus};

/// Dispatch body with selectors 0..3 = pcap L2, pcap L3, tunnel L2, tunnel L3 of `expr`, and
/// with `entry` the skb entry (selector `PWRU_SEL_PCAP_SKB`) into the first two.
fn body(
    expr: &str,
    access: ProbeAccess,
    entry: Option<SkbFields>,
    values: &[SkbValue],
) -> Result<FilterBody, BodyError> {
    let o = Options::with_access(access);
    let l2 = compile_ebpf_with(expr, Layer::L2, Mode::ProbeRead, &o)?;
    let l3 = compile_ebpf_with(expr, Layer::L3, Mode::ProbeRead, &o)?;
    let filters: [&[pwru_filter::Insn]; 4] = [&l2.insns, &l3.insns, &l2.insns, &l3.insns];
    let entry = entry.map(|fields| SkbEntry {
        selector: PWRU_SEL_PCAP_SKB as i32,
        fields,
        l2: 0,
        l3: 1,
    });
    let d = dispatch_with_skb_entries(&filters, entry.as_ref(), values)
        .map_err(|e| BodyError::Other(e.to_string()))?;
    let bytes: Vec<u8> = d.iter().flat_map(|i| i.to_bytes()).collect();
    FilterBody::from_bytes(&bytes).map_err(|e| BodyError::Other(e.to_string()))
}

/// Why a corpus expression gave no body.
#[derive(Debug)]
enum BodyError {
    Filter(pwru_filter::Error),
    Other(String),
}

impl From<pwru_filter::Error> for BodyError {
    fn from(e: pwru_filter::Error) -> Self {
        BodyError::Filter(e)
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Filter(e) => e.fmt(f),
            BodyError::Other(e) => f.write_str(e),
        }
    }
}

/// Refusals pwru-filter documents as constructs a traced skb filter cannot express
/// (socket-filter extensions, protochain's backward jumps, jumps beyond eBPF's range).
fn documented_refusal(e: &BodyError) -> bool {
    matches!(
        e,
        BodyError::Filter(pwru_filter::Error::Translate {
            source: TranslateError::Extension { .. }
                | TranslateError::BackwardJump { .. }
                | TranslateError::JumpTooFar { .. },
            ..
        })
    )
}

#[test]
fn loader_corpus_filters_verify() {
    let name = "loader_corpus_filters_verify";
    if skip_without_tracepoints(name) {
        return;
    }
    let cfg = PwruConfig {
        flags: PWRU_CFG_FILTER_PCAP
            | PWRU_CFG_FILTER_TUNNEL_L2
            | PWRU_CFG_FILTER_TUNNEL_L3
            | PWRU_CFG_TRACK_SKB
            | PWRU_CFG_TRACK_HEAD
            | PWRU_CFG_OUTPUT_META
            | PWRU_CFG_OUTPUT_TUPLE
            | PWRU_CFG_OUTPUT_TUNNEL,
        ..Default::default()
    };
    let mut accesses = vec![(ProbeAccess::Helper, [true; 4])];
    let cast_variant = format!("{name} (kfunc-cast variant)");
    let cast_expected = has(&cast_variant, "rdonly_cast");
    match cast_ids::running_kernel() {
        Ok(Some(ids)) => {
            assert!(
                cast_expected,
                "bpf_rdonly_cast found although tests/capabilities.conf says this kernel lacks it"
            );
            // Which program types take kfunc-cast code here: tp_btf, raw_tp, kprobe, kprobe.multi.
            // Where the rules expect all of them, pwru-core's probe must accept each; on other
            // kernels the kernel's own refusal (through the probe) is the reason to leave one out.
            let all = capabilities::expect("kfunc_cast_all_progs") == capabilities::Expect::Yes;
            let kinds: [&dyn Driver; 4] =
                [&Tracepoint::BTF, &Tracepoint::RAW, &Kprobe, &KprobeMulti];
            let ok = kinds.map(|k| match probe_kfunc_cast(k, ids) {
                Ok(()) => true,
                Err(e) if all => panic!(
                    "{name}: the rules expect kfunc-cast code in every program type, but the \
                     probe refused {k:?}: {e}"
                ),
                Err(e) => {
                    skip(&format!("{name} (kfunc-cast variant, {k:?})"), e);
                    false
                }
            });
            if ok.iter().any(|o| *o) {
                accesses.push((ProbeAccess::Cast(ids), ok));
            }
        }
        Ok(None) => assert!(
            !cast_expected,
            "the kernel config says this kernel has bpf_rdonly_cast, but Btf::cast_ids found none"
        ),
        Err(e) => panic!("{name}: reading the kfunc-cast ids failed: {e}"),
    }
    for (access, ok) in accesses {
        let label = match access {
            ProbeAccess::Helper => "helper reads",
            ProbeAccess::Cast(_) => "kfunc-cast loads",
        };
        let (mut verified, mut untranslatable) = (0, Vec::new());
        for expr in corpus::expressions() {
            let body = match body(&expr, access, None, &[]) {
                Ok(b) => b,
                // A documented unsupported construct is counted and listed; any other refusal
                // of pwru-filter is a failure.
                Err(e) if documented_refusal(&e) => {
                    untranslatable.push(format!("{expr:.40}: {e:.80}"));
                    continue;
                }
                Err(e) => panic!("{expr:.60} ({label}): pwru-filter refused it: {e}"),
            };
            let mut l = Loader::new(OBJECT, &body, &cfg, &LoaderOptions::default())
                .unwrap_or_else(|e| panic!("{expr:.60}: {e}"));
            for (flavor, on) in [
                (TracepointFlavor::Btf, ok[0]),
                (TracepointFlavor::Raw, ok[1]),
            ] {
                if !on {
                    continue;
                }
                if let Err(e) = l.load_tracepoint("kfree_skb", flavor) {
                    panic!("{expr:.60} ({label}): {flavor:?} kfree_skb refused: {e}");
                }
            }
            if ok[2] {
                if let Err(e) = l.load_kprobe_program("kprobe_skb_1", &[]) {
                    panic!("{expr:.60} ({label}): kprobe_skb_1 refused: {e}");
                }
            }
            if ok[3] {
                if let Err(e) = l.verify_kprobe_multi("kprobe_multi_skb_1") {
                    panic!("{expr:.60} ({label}): kprobe_multi_skb_1 refused: {e}");
                }
            }
            verified += 1;
        }
        // Only filters that loaded in at least one program type count as verified.
        let types = ok.iter().filter(|o| **o).count();
        assert!(types > 0, "{label}: no program type was tried");
        println!("{name}: {verified} corpus filters ({label}) verified in {types} program types (L2, L3, tunnel L2, tunnel L3)");
        if !untranslatable.is_empty() {
            println!("{name}: not translatable by pwru-filter (not spliced): {untranslatable:?}");
        }
        assert!(verified > 50, "too few corpus filters verified: {verified}");
    }
}

/// The same corpus with the skb entry (`PWRU_CFG_FILTER_PCAP_SKB`) and the netns, mark and
/// interface values (`PWRU_CFG_FILTER_META_SKB`): the programs whose skb is a plain number
/// (raw_tp, kprobe, kprobe.multi) call them, and they read the skb through `bpf_rdonly_cast`;
/// the kernel must verify each, wherever it accepts kfunc-cast code in that program type.
#[test]
fn loader_corpus_filters_verify_behind_the_skb_entry() {
    let name = "loader_corpus_filters_verify_behind_the_skb_entry";
    if skip_without_tracepoints(name) {
        return;
    }
    let variant = format!("{name} (kfunc-cast variant)");
    let ids = match cast_ids::running_kernel() {
        Ok(Some(ids)) => ids,
        Ok(None) => {
            assert!(
                !has(&variant, "rdonly_cast"),
                "the rules say this kernel has bpf_rdonly_cast, but Btf::cast_ids found none"
            );
            return;
        }
        Err(e) => panic!("{name}: reading the kfunc-cast ids failed: {e}"),
    };
    let fields = cast_ids::running_kernel_skb_fields()
        .expect("kernel BTF")
        .expect("a kernel with bpf_rdonly_cast describes sk_buff's header fields");
    let all = capabilities::expect("kfunc_cast_all_progs") == capabilities::Expect::Yes;
    let kinds: [&dyn Driver; 3] = [&Tracepoint::RAW, &Kprobe, &KprobeMulti];
    let ok = kinds.map(|k| match probe_kfunc_cast(k, ids) {
        Ok(()) => true,
        Err(e) if all => panic!("{name}: the rules expect kfunc-cast code in {k:?}: {e}"),
        Err(e) => {
            skip(&format!("{variant} ({k:?})"), e);
            false
        }
    });
    if !ok.iter().any(|o| *o) {
        return;
    }
    // With the netns, mark and interface filters on too, their values read by the body.
    let paths = pwru_core::btf::Btf::vmlinux()
        .expect("kernel BTF")
        .skb_value_paths()
        .expect("a kernel with bpf_rdonly_cast describes the netns, mark and ifindex chains");
    let meta = PWRU_CFG_FILTER_NETNS | PWRU_CFG_FILTER_MARK | PWRU_CFG_FILTER_IFINDEX;
    let values = paths.selectors(meta);
    assert_eq!(values.len(), 3, "one selector per filter");
    let cfg = PwruConfig {
        flags: PWRU_CFG_FILTER_PCAP
            | PWRU_CFG_FILTER_PCAP_SKB
            | meta
            | PWRU_CFG_FILTER_META_SKB
            | PWRU_CFG_OUTPUT_META
            | PWRU_CFG_OUTPUT_TUPLE,
        ..Default::default()
    };
    let access = ProbeAccess::Cast(ids);
    let mut verified = 0;
    for expr in corpus::expressions() {
        let body = match body(&expr, access, Some(fields), &values) {
            Ok(b) => b,
            Err(e) if documented_refusal(&e) => continue,
            Err(e) => panic!("{expr:.60}: pwru-filter refused it: {e}"),
        };
        let mut l = Loader::new(OBJECT, &body, &cfg, &LoaderOptions::default())
            .unwrap_or_else(|e| panic!("{expr:.60}: {e}"));
        if ok[0] {
            if let Err(e) = l.load_tracepoint("kfree_skb", TracepointFlavor::Raw) {
                panic!("{expr:.60}: raw_tp kfree_skb refused the skb entry: {e}");
            }
        }
        if ok[1] {
            if let Err(e) = l.load_kprobe_program("kprobe_skb_1", &[]) {
                panic!("{expr:.60}: kprobe_skb_1 refused the skb entry: {e}");
            }
        }
        if ok[2] {
            if let Err(e) = l.verify_kprobe_multi("kprobe_multi_skb_1") {
                panic!("{expr:.60}: kprobe_multi_skb_1 refused the skb entry: {e}");
            }
        }
        verified += 1;
    }
    let types = ok.iter().filter(|o| **o).count();
    println!(
        "{name}: {verified} corpus filters verified behind the skb entry in {types} program types"
    );
    assert!(verified > 50, "too few corpus filters verified: {verified}");
}
