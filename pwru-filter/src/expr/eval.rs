//! The same semantics in user space, over memory the caller reads: the oracle the kernel's
//! runs of the compiled code are checked against, and a way to evaluate an expression on
//! objects copied out of the kernel.

use super::lexer::CmpOp;
use super::resolve::{Access, Node, Value};

/// Reads `buf.len()` bytes at `addr`; false when the memory is not readable (the value then
/// reads as 0, as `bpf_probe_read_kernel` leaves it).
pub trait Memory {
    /// Fills `buf` from `addr`, or returns false.
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

impl<F: Fn(u64, &mut [u8]) -> bool> Memory for F {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        self(addr, buf)
    }
}

fn read_u64(mem: &dyn Memory, addr: u64, len: usize) -> u64 {
    let mut b = [0u8; 8];
    let n = len.min(8);
    if !mem.read(addr, &mut b[..n]) {
        return 0;
    }
    u64::from_le_bytes(b)
}

/// The field's value from `root`, extended to 64 bits.
pub(crate) fn access(acc: &Access, root: u64, mem: &dyn Memory) -> u64 {
    let mut base = root;
    for &d in &acc.derefs {
        base = read_u64(mem, base.wrapping_add(u64::from(d)), 8);
    }
    let raw = read_u64(
        mem,
        base.wrapping_add(u64::from(acc.offset)),
        usize::from(acc.bytes),
    );
    let top = 64 - u32::from(acc.shift) - u32::from(acc.bits);
    let down = 64 - u32::from(acc.bits);
    let up = raw << top;
    if acc.signed {
        ((up as i64) >> down) as u64
    } else {
        up >> down
    }
}

/// The value of `v` from `root`.
pub(crate) fn value(v: &Value, root: u64, mem: &dyn Memory) -> u64 {
    match v {
        Value::Const(c) => *c,
        Value::Field(a) => access(a, root, mem),
        Value::Mask(x, y) => value(x, root, mem) & value(y, root, mem),
    }
}

/// Whether `n` holds for `root`.
pub(crate) fn condition(n: &Node, root: u64, mem: &dyn Memory) -> bool {
    match n {
        Node::And(x, y) => condition(x, root, mem) && condition(y, root, mem),
        Node::Or(x, y) => condition(x, root, mem) || condition(y, root, mem),
        Node::Not(x) => !condition(x, root, mem),
        Node::Truth(v) => value(v, root, mem) != 0,
        Node::Cmp {
            op,
            lhs,
            rhs,
            signed,
        } => {
            let (l, r) = (value(lhs, root, mem), value(rhs, root, mem));
            if *signed {
                compare(*op, l as i64, r as i64)
            } else {
                compare(*op, l, r)
            }
        }
    }
}

fn compare<T: Ord>(op: CmpOp, l: T, r: T) -> bool {
    match op {
        CmpOp::Eq => l == r,
        CmpOp::Ne => l != r,
        CmpOp::Lt => l < r,
        CmpOp::Le => l <= r,
        CmpOp::Gt => l > r,
        CmpOp::Ge => l >= r,
    }
}
