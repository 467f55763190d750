//! The skb/xdp expression compiler against the kernel: each compiled body runs in the kernel
//! (`BPF_PROG_TEST_RUN` of a tc program that passes the address of the test packet as the root
//! object) on a packet holding the bytes of a fake `struct sk_buff` / `struct xdp_buff`, and
//! must agree with the user-space evaluation of the same expression over the same bytes.
//! Expressions: a reading of every integer, enum, pointer and bitfield member of the struct as
//! the running kernel's BTF lays it out, then random conditions over them. Pointer members hold
//! addresses no kernel read can succeed on (the evaluation reads 0 through them, as the kernel).

use pwru_core::btf::{Btf, Kind};
use pwru_filter::expr::{Condition, Reading, Root, SKB, XDP};
use pwru_filter::insn::{op, Insn};
use pwru_filter::Mode;
use pwru_testkit::capabilities::skip;
use pwru_testkit::filter_harness::{
    harness, load, probe_test_run, sched_cls_frame, Harness, ProgType,
};

/// Where the user-space evaluation puts the fake object.
const FAKE_ROOT: u64 = 0x1000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, so a failure reproduces.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes whose aligned 8-byte words are never kernel addresses (top byte 0xff), so that
/// every pointer read faults in the kernel as it does in the evaluation.
fn fake_object(size: usize, rng: &mut Rng) -> Vec<u8> {
    let mut b: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
    for w in b.chunks_mut(8) {
        if w.len() == 8 && w[7] == 0xff {
            w[7] = 0x5a;
        }
    }
    b
}

fn memory(obj: &[u8]) -> impl Fn(u64, &mut [u8]) -> bool + '_ {
    move |addr, buf| {
        let Some(start) = addr.checked_sub(FAKE_ROOT) else {
            return false;
        };
        let start = start as usize;
        match obj.get(start..start + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

/// The kernel's result of a body: R0 (a condition's 0/1), or with `high` R0 >> 32 (the body
/// is called from a two-instruction wrapper so that the 32-bit retval carries either half).
fn run(body: &[Insn], obj: &[u8], high: bool) -> u64 {
    let mut wrapped = vec![Insn::call_local(2)];
    wrapped.push(if high {
        Insn::alu64_imm(op::RSH, 0, 32)
    } else {
        Insn::mov64_reg(0, 0)
    });
    wrapped.push(Insn::exit());
    wrapped.extend_from_slice(body);
    let prog = load(
        ProgType::SchedCls,
        &harness(&wrapped, Mode::ProbeRead, Harness::SchedCls),
    )
    .unwrap_or_else(|e| panic!("the kernel refused a compiled expression: {e}"));
    let r = prog.test_run(&sched_cls_frame(obj), 1).expect("test run");
    u64::from(r.retval)
}

/// Readable members of `record` (flattened through anonymous members), as expressions.
fn members(btf: &Btf, root: Root) -> Vec<String> {
    let layout = btf.struct_layout(root.record).expect("struct in BTF");
    let mut out = Vec::new();
    for m in &layout.members {
        if m.name.is_empty() {
            continue;
        }
        let text = format!("{}->{}", root.var, m.name);
        // Keep what the compiler accepts as a value; arrays get their first and last element.
        if Reading::compile(&text, root, btf).is_ok() {
            out.push(text);
            continue;
        }
        let id = btf.skip_modifiers(m.type_id).expect("member type");
        if id.0 == 0 {
            continue;
        }
        let t = btf.get(id).expect("member type");
        if t.kind() == Kind::Array && t.array_len() > 0 {
            for i in [0, t.array_len() - 1] {
                let text = format!("{}->{}[{i}]", root.var, m.name);
                if Reading::compile(&text, root, btf).is_ok() {
                    out.push(text);
                }
            }
        }
    }
    out
}

fn differential(root: Root, seed: u64) {
    let name = format!("expr_kernel_{}", root.var);
    if let Err(e) = probe_test_run() {
        skip(&name, e);
        return;
    }
    let btf = match Btf::vmlinux() {
        Ok(b) => b,
        Err(e) => {
            skip(&name, format!("no kernel BTF: {e}"));
            return;
        }
    };
    let Some(size) = btf.struct_layout(root.record).ok().map(|l| l.size as usize) else {
        skip(
            &name,
            format!("no struct {} in the kernel BTF", root.record),
        );
        return;
    };
    let mut rng = Rng(seed);
    let fields = members(&btf, root);
    assert!(fields.len() >= 5, "too few readable members: {fields:?}");
    let obj = fake_object(size, &mut rng);
    let mem = memory(&obj);

    // Every member read: both 32-bit halves of the 64-bit value.
    let mut readings = 0;
    for f in &fields {
        let r = Reading::compile(f, root, &btf).unwrap();
        let want = r.evaluate(FAKE_ROOT, &mem);
        let got = run(r.insns(), &obj, false) | (run(r.insns(), &obj, true) << 32);
        assert_eq!(got, want, "{f}: kernel {got:#x}, user space {want:#x}");
        readings += 1;
    }

    // Random conditions: comparisons against the member's true value (or near it), masks,
    // negations, conjunctions and disjunctions, and a deref through a pointer.
    let ops = ["==", "!=", "<", "<=", ">", ">="];
    let mut holds = 0;
    let conditions = 150;
    for _ in 0..conditions {
        let atom = |rng: &mut Rng| -> String {
            let f = &fields[rng.below(fields.len())];
            let v = Reading::compile(f, root, &btf)
                .unwrap()
                .evaluate(FAKE_ROOT, &mem);
            let c = match rng.below(4) {
                0 => v,
                1 => v.wrapping_add(1),
                2 => v.wrapping_sub(1),
                _ => rng.next() >> rng.below(64),
            };
            let op = ops[rng.below(ops.len())];
            match rng.below(4) {
                0 => format!("{f} & {:#x} {op} {:#x}", rng.next() >> 40, c & 0xff),
                1 => format!("{f} {op} {}", c as i64),
                2 => format!("{f} {op} {}", fields[rng.below(fields.len())]),
                _ => format!("{f} {op} {c:#x}"),
            }
        };
        let text = match rng.below(4) {
            0 => atom(&mut rng),
            1 => format!("!({})", atom(&mut rng)),
            2 => format!("{} && {}", atom(&mut rng), atom(&mut rng)),
            _ => format!("({}) || !{}", atom(&mut rng), atom(&mut rng)),
        };
        let c = Condition::compile(&text, root, &btf).unwrap_or_else(|e| panic!("{e}"));
        let want = c.evaluate(FAKE_ROOT, &mem);
        let got = run(c.insns(), &obj, false);
        assert_eq!(
            got,
            u64::from(want),
            "{text}: kernel {got}, user space {want}"
        );
        holds += usize::from(want);
    }
    // Both outcomes were exercised.
    assert!(
        holds > 0 && holds < conditions,
        "{holds} of {conditions} held"
    );
    eprintln!(
        "{name}: {readings} member readings and {conditions} conditions ({holds} true) agree"
    );
}

#[test]
fn skb_expressions_agree_with_the_kernel() {
    differential(SKB, 0x5eed_0001);
}

#[test]
fn xdp_expressions_agree_with_the_kernel() {
    differential(XDP, 0x5eed_0002);
}

#[test]
fn pointer_chains_read_zero_through_unreadable_pointers_in_the_kernel() {
    if let Err(e) = probe_test_run() {
        skip("pointer_chains_read_zero", e);
        return;
    }
    let Ok(btf) = Btf::vmlinux() else {
        skip("pointer_chains_read_zero", "no kernel BTF");
        return;
    };
    let size = btf.struct_layout("sk_buff").unwrap().size as usize;
    let obj = fake_object(size, &mut Rng(7));
    let r = Reading::compile("skb->dev->ifindex", SKB, &btf).unwrap();
    assert_eq!(r.evaluate(FAKE_ROOT, &memory(&obj)), 0);
    assert_eq!(run(r.insns(), &obj, false), 0);
    let c = Condition::compile("skb->dev->ifindex == 0 && !skb->dev->mtu", SKB, &btf).unwrap();
    assert_eq!(run(c.insns(), &obj, false), 1);
}
