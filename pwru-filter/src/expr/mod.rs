//! C-like expressions over `struct sk_buff` / `struct xdp_buff` (pwru's `--filter-skb-expr`,
//! `--output-skb-metadata` and their xdp twins), compiled to eBPF.
//!
//! ```text
//! skb->mark & 0xff == 0x1 && skb->dev->ifindex != 1
//! !(skb->cb[0] == 3 || xdp->rxq->queue_index > 2)
//! ```
//!
//! Member chains go through pointers (`->`) and embedded structs (`.`), bitfields and constant
//! array indexes; values are integers, enums and pointers of 1, 2, 4 or 8 bytes. Operators,
//! loosest first: `||`, `&&`, `!`, comparisons (`== != < <= > >=`), `&` (mask). **`&` binds
//! tighter than the comparisons**, unlike C, so that `skb->mark & 0xff == 1` masks first as pwru's
//! examples mean. A comparison is signed when its typed operands are (a literal takes the type
//! of the other side; two fields compare signed only when both are signed). A value alone is a
//! condition that holds when non-zero.
//!
//! Types come from the caller through [`TypeInfo`] (pwru-core implements it over the kernel's
//! BTF); this crate reads no BTF. The compiled body reads every member with
//! `bpf_probe_read_kernel` (a read the kernel refuses, e.g. through a NULL pointer, reads 0;
//! the kfunc-cast scheme of the pcap filters is not used here yet) and follows the calling
//! convention below.
//!
//! # Calling convention
//!
//! A body is a complete BPF-to-BPF function: R1 = the root object's address (a plain number,
//! as `u64`); a [`Condition`] returns 1 (holds) or 0 in R0, a [`Reading`] the 64-bit value.
//! It uses R6 and 8 bytes of stack per nesting level of binary operators (at most 392 bytes).
//! [`evaluate`](Condition::evaluate) computes the same result in user space over a
//! [`Memory`].

mod codegen;
mod error;
mod eval;
mod lexer;
mod parser;
mod resolve;
mod types;

pub use error::ExprError;
pub use eval::Memory;
pub use lexer::CmpOp;
pub use resolve::{Access, Node, Value};
pub use types::{FieldInfo, Root, Shape, TypeInfo, TypeRef, SKB, XDP};

use crate::insn::Insn;

/// A compiled condition (`--filter-skb-expr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    text: String,
    node: Node,
    insns: Vec<Insn>,
}

/// A compiled value (one `--output-skb-metadata` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    text: String,
    value: Value,
    insns: Vec<Insn>,
}

fn syntax(text: &str) -> Result<parser::Ast, ExprError> {
    lexer::tokens(text)
        .and_then(parser::parse)
        .map_err(|e| e.in_expr(text))
}

impl Condition {
    /// Parses, resolves against `types` and compiles `text`, an expression starting from
    /// `root`.
    pub fn compile(text: &str, root: Root, types: &dyn TypeInfo) -> Result<Condition, ExprError> {
        let ast = syntax(text)?;
        let node = resolve::condition(&ast, root, types).map_err(|e| e.in_expr(text))?;
        let insns = codegen::condition(&node).map_err(|e| e.in_expr(text))?;
        Ok(Condition {
            text: text.trim().to_string(),
            node,
            insns,
        })
    }

    /// The expression, trimmed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The typed tree.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The eBPF body (see the module's calling convention).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Whether the condition holds for the object at `root`, reading through `mem`: what
    /// the compiled body computes.
    pub fn evaluate(&self, root: u64, mem: &dyn Memory) -> bool {
        eval::condition(&self.node, root, mem)
    }
}

impl Reading {
    /// Parses, resolves against `types` and compiles `text`, a value expression (a member
    /// chain, optionally masked) starting from `root`.
    pub fn compile(text: &str, root: Root, types: &dyn TypeInfo) -> Result<Reading, ExprError> {
        let ast = syntax(text)?;
        let value = resolve::value(&ast, root, types).map_err(|e| e.in_expr(text))?;
        let insns = codegen::value(&value).map_err(|e| e.in_expr(text))?;
        Ok(Reading {
            text: text.trim().to_string(),
            value,
            insns,
        })
    }

    /// The expression, trimmed (the name pwru prints before the value).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The typed tree.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The eBPF body (see the module's calling convention).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The value for the object at `root`, reading through `mem`: what the compiled body
    /// returns.
    pub fn evaluate(&self, root: u64, mem: &dyn Memory) -> u64 {
        eval::value(&self.value, root, mem)
    }
}

#[cfg(test)]
mod tests;
