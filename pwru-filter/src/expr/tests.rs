//! Parser, resolver and evaluator tests over a small hand-made type table.

use super::*;
use std::collections::HashMap;

/// sk_buff { net_device *dev @8; u32 mark @16; s16 delta @20; u8 pkt_type:3 @bit 176;
/// u8 flag:1 @bit 179; s8 sbits:4 @bit 180; union { u32 a; } @24; char cb[8] @28;
/// struct inner { u64 x @0; } emb @40; float f @48 } (size 56);
/// net_device { int ifindex @4 } (size 8).
struct Fake;

const SKB: TypeRef = 1;
const DEV: TypeRef = 2;
const DEV_PTR: TypeRef = 3;
const U32: TypeRef = 4;
const S16: TypeRef = 5;
const U8: TypeRef = 6;
const S8: TypeRef = 7;
const ANON: TypeRef = 8;
const CB: TypeRef = 9;
const INNER: TypeRef = 10;
const U64: TypeRef = 11;
const FLOAT: TypeRef = 12;
const INT: TypeRef = 13;

impl TypeInfo for Fake {
    fn record_named(&self, name: &str) -> Option<TypeRef> {
        match name {
            "sk_buff" => Some(SKB),
            "net_device" => Some(DEV),
            _ => None,
        }
    }
    fn shape(&self, ty: TypeRef) -> Result<Shape, String> {
        let int = |size, signed| Ok(Shape::Int { size, signed });
        let rec = |name: &str, size| {
            Ok(Shape::Record {
                name: name.into(),
                size,
            })
        };
        match ty {
            SKB => rec("sk_buff", 56),
            DEV => rec("net_device", 8),
            DEV_PTR => Ok(Shape::Pointer { target: DEV }),
            U32 => int(4, false),
            S16 => int(2, true),
            U8 => int(1, false),
            S8 => int(1, true),
            ANON => rec("", 4),
            CB => Ok(Shape::Array { elem: U8, len: 8 }),
            INNER => rec("inner", 8),
            U64 => int(8, false),
            FLOAT => Ok(Shape::Other {
                what: "float".into(),
            }),
            INT => int(4, true),
            _ => Err(format!("no type {ty}")),
        }
    }
    fn field(&self, record: TypeRef, name: &str) -> Option<FieldInfo> {
        let f = |bit_offset, bitfield_size, ty| {
            Some(FieldInfo {
                bit_offset,
                bitfield_size,
                ty,
            })
        };
        let fields: HashMap<(TypeRef, &str), _> = HashMap::from([
            ((SKB, "dev"), f(64, 0, DEV_PTR)),
            ((SKB, "mark"), f(128, 0, U32)),
            ((SKB, "delta"), f(160, 0, S16)),
            ((SKB, "pkt_type"), f(176, 3, U8)),
            ((SKB, "flag"), f(179, 1, U8)),
            ((SKB, "sbits"), f(180, 4, S8)),
            ((SKB, "a"), f(192, 0, U32)),
            ((SKB, "cb"), f(224, 0, CB)),
            ((SKB, "emb"), f(320, 0, INNER)),
            ((SKB, "f"), f(384, 0, FLOAT)),
            ((INNER, "x"), f(0, 0, U64)),
            ((DEV, "ifindex"), f(32, 0, INT)),
        ]);
        fields.get(&(record, name)).copied().flatten()
    }
}

fn cond(text: &str) -> Result<Condition, ExprError> {
    Condition::compile(text, super::SKB, &Fake)
}

/// Memory: the skb at 0x1000 (56 bytes) and the net_device at 0x2000 (8 bytes).
struct Mem {
    skb: [u8; 56],
    dev: [u8; 8],
}

impl Memory for Mem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let n = buf.len() as u64;
        for (base, bytes) in [(0x1000u64, &self.skb[..]), (0x2000, &self.dev[..])] {
            if addr >= base && addr + n <= base + bytes.len() as u64 {
                let s = (addr - base) as usize;
                buf.copy_from_slice(&bytes[s..s + buf.len()]);
                return true;
            }
        }
        false
    }
}

fn mem() -> Mem {
    let mut skb = [0u8; 56];
    skb[8..16].copy_from_slice(&0x2000u64.to_le_bytes());
    skb[16..20].copy_from_slice(&0x1234_5601u32.to_le_bytes());
    skb[20..22].copy_from_slice(&(-5i16).to_le_bytes());
    // pkt_type = 5 (bits 0-2), flag = 1 (bit 3), sbits = 0b1110 = -2 (bits 4-7)
    skb[22] = 0b1110_1101;
    skb[28] = 7; // cb[0]
    skb[31] = 9; // cb[3]
    skb[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut dev = [0u8; 8];
    dev[4..8].copy_from_slice(&9i32.to_le_bytes());
    Mem { skb, dev }
}

fn holds(text: &str) -> bool {
    cond(text).unwrap().evaluate(0x1000, &mem())
}

#[test]
fn members_through_pointers_bitfields_arrays_and_embedded_structs() {
    assert!(holds("skb->dev->ifindex == 9"));
    assert!(holds("skb->mark == 0x12345601"));
    assert!(holds("skb->pkt_type == 5"));
    assert!(holds("skb->flag"));
    assert!(holds("skb->sbits == -2"));
    assert!(holds("skb->sbits < 0"));
    assert!(holds("skb->cb[0] == 7 && skb->cb[3] == 9"));
    assert!(holds("skb->emb.x == 0xffffffffffffffff"));
    assert!(holds("skb->dev != 0"));
    assert!(holds("skb->a == 0"));
}

#[test]
fn mask_binds_tighter_than_comparison() {
    assert!(holds("skb->mark & 0xff == 0x1"));
    assert!(holds("skb->mark & 0xff00 == 0x5600"));
    assert!(!holds("skb->mark & 0xff == 0x2"));
    // C's reading, mark & (0xff == 1), is refused rather than silently computed: a
    // comparison is not a value in this language.
    let e = err("skb->mark & (0xff == 0x1)");
    assert_eq!(e.column, 19);
    assert!(e.message.contains("used as a value"), "{e}");
}

#[test]
fn signedness_follows_the_field_type() {
    // delta is s16 -5: signed compare.
    assert!(holds("skb->delta < 0"));
    assert!(holds("skb->delta == -5"));
    // mark is u32: 0x12345601 > -1 is false unsigned (-1 is 2^64-1).
    assert!(!holds("skb->mark > -1"));
    // literal on the left mirrors the operator
    assert!(holds("0 > skb->delta"));
    assert!(holds("10 >= skb->cb[0]"));
}

#[test]
fn logic_and_parentheses() {
    assert!(holds(
        "!(skb->mark == 0) && (skb->cb[0] == 1 || skb->cb[0] == 7)"
    ));
    assert!(!holds("!skb->flag"));
    assert!(holds("!!skb->flag"));
    assert!(holds("skb->cb[0] == 1 || skb->cb[3] == 9 && skb->flag"));
}

#[test]
fn unreadable_pointers_read_zero() {
    let mut m = mem();
    m.skb[8..16].copy_from_slice(&0xdead_0000u64.to_le_bytes());
    let c = cond("skb->dev->ifindex == 0").unwrap();
    assert!(c.evaluate(0x1000, &m));
    let r = Reading::compile("skb->dev->ifindex", super::SKB, &Fake).unwrap();
    assert_eq!(r.evaluate(0x1000, &mem()), 9);
    assert_eq!(r.evaluate(0x1000, &m), 0);
}

fn err(text: &str) -> ExprError {
    cond(text).unwrap_err()
}

#[test]
fn errors_name_the_problem_and_its_column() {
    let e = err("skb->dev->ifindx == 9");
    assert_eq!(e.column, 11);
    assert!(e.message.contains("no member `ifindx`"), "{e}");
    assert!(e.message.contains("net_device"), "{e}");
    let e = err("sbk->mark == 1");
    assert_eq!(e.column, 1);
    assert!(e.message.contains("unknown name `sbk`"), "{e}");
    let e = err("skb->mark = 1");
    assert_eq!(e.column, 11);
    assert!(e.message.contains("=="), "{e}");
    let e = err("skb.mark == 1");
    assert_eq!(e.column, 5);
    assert!(e.message.contains("->mark"), "{e}");
    let e = err("skb->cb[8] == 1");
    assert_eq!(e.column, 8);
    assert!(e.message.contains("out of bounds"), "{e}");
    let e = err("skb->emb == 1");
    assert_eq!(e.column, 6);
    assert!(e.message.contains("struct inner"), "{e}");
    let e = err("skb->f == 1");
    assert!(e.message.contains("float"), "{e}");
    let e = err("skb->mark == 1 == 2");
    assert_eq!(e.column, 16);
    let e = err("(skb->mark == 1");
    assert_eq!(e.column, 16);
    assert!(e.message.contains("column 1"), "{e}");
    let e = err("skb->mark $ 1");
    assert_eq!(e.column, 11);
    let e = err("");
    assert_eq!(e.column, 1);
    let e = err("skb->emb->x == 1");
    assert_eq!(e.column, 11);
    assert!(e.message.contains(".x"), "{e}");
    // The comparison's operator is named as the culprit.
    let e = err("(skb->mark == 1) & 2");
    assert_eq!(e.column, 12);
    assert!(e.to_string().contains("column 12"));
    let e = err("skb == 1");
    assert!(e.message.contains("name a member"), "{e}");
    let e = err("skb->mark == 99999999999999999999999");
    assert_eq!(e.column, 14);
}

#[test]
fn readings_are_values_only() {
    assert!(Reading::compile("skb->mark == 1", super::SKB, &Fake).is_err());
    let r = Reading::compile(" skb->mark & 0xff ", super::SKB, &Fake).unwrap();
    assert_eq!(r.text(), "skb->mark & 0xff");
    assert_eq!(r.evaluate(0x1000, &mem()), 1);
    let r = Reading::compile("skb->delta", super::SKB, &Fake).unwrap();
    assert_eq!(r.evaluate(0x1000, &mem()) as i64, -5);
    assert!(Reading::compile("xdp->mark", super::SKB, &Fake).is_err());
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let text = format!("{}skb->mark{}", "(".repeat(500), ")".repeat(500));
    assert!(cond(&text).is_err());
    let text = format!("{}skb->mark", "!".repeat(500));
    assert!(cond(&text).is_err());
}

#[test]
fn bodies_end_in_exit_and_use_no_wide_loads() {
    for t in [
        "skb->mark & 0xff == 1",
        "skb->emb.x == 0x123456789abcdef0 || skb->dev->ifindex < skb->cb[3]",
        "skb->mark & skb->cb[0] != 0",
    ] {
        let c = cond(t).unwrap();
        assert_eq!(c.insns().last(), Some(&crate::Insn::exit()));
        assert!(c.insns().iter().all(|i| i.code != 0x18), "{t}");
    }
}
