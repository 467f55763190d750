//! The kernel's BTF as a tracer uses it: read and parsed once at
//! [`TracerBuilder::build`](crate::TracerBuilder::build) (from `/sys/kernel/btf/vmlinux`, or the
//! file given as [`kernel_btf`](crate::TracerBuilder::kernel_btf)), then shared as one
//! `Arc<Btf>` by discovery, the backend probes, the filter's kfunc-cast ids and the loader,
//! which gives aya a copy parsed from the same bytes for CO-RE relocation.

use std::cell::Cell;
use std::path::Path;

use pwru_filter::{CastIds, Load, LoadSize, SkbFields, SkbValue};

use super::{Btf, BtfError, Kind, TypeId};

thread_local! {
    /// Kernel BTF parses on this thread: (this reader, aya).
    static PARSES: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

pub(super) fn count_own_parse() {
    PARSES.with(|p| p.set((p.get().0 + 1, p.get().1)));
}

pub(crate) fn count_aya_parse() {
    PARSES.with(|p| p.set((p.get().0, p.get().1 + 1)));
}

/// How often kernel BTF was parsed on the calling thread (a diagnostic for tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelBtfParses {
    /// Parses by this crate's reader ([`Btf::vmlinux`], [`Btf::from_file`]).
    pub own: u32,
    /// Parses into aya-obj's type (for CO-RE relocation), from the same bytes.
    pub aya: u32,
}

/// The kernel BTF parses counted on the calling thread so far (the file is read once; the
/// bytes are parsed by this crate's reader and once more by aya-obj for CO-RE relocation).
#[doc(hidden)]
pub fn kernel_btf_parses() -> KernelBtfParses {
    let (own, aya) = PARSES.with(Cell::get);
    KernelBtfParses { own, aya }
}

/// The load chains of [`Btf::skb_value_paths`], with the ids their casts need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkbValuePaths {
    /// Id of the `FUNC` `bpf_rdonly_cast`.
    pub rdonly_cast: u32,
    /// Id of the `STRUCT` `sk_buff`.
    pub sk_buff: u32,
    /// The netns inode: through the device, then through the socket.
    pub netns: Vec<Vec<Load>>,
    /// `skb->mark`.
    pub mark: Vec<Vec<Load>>,
    /// `skb->dev->ifindex`.
    pub ifindex: Vec<Vec<Load>>,
}

impl SkbValuePaths {
    /// The value selectors (`PWRU_SEL_SKB_NETNS`, `_MARK`, `_IFINDEX`) of the netns, mark and
    /// interface filters that config bits `flags` turn on (`PWRU_CFG_FILTER_NETNS`, `_MARK`,
    /// `_IFINDEX`), netns first: the order the programs test them in.
    pub fn selectors(&self, flags: u32) -> Vec<SkbValue> {
        use pwru_ebpf::*;
        [
            (PWRU_CFG_FILTER_NETNS, PWRU_SEL_SKB_NETNS, &self.netns),
            (PWRU_CFG_FILTER_MARK, PWRU_SEL_SKB_MARK, &self.mark),
            (PWRU_CFG_FILTER_IFINDEX, PWRU_SEL_SKB_IFINDEX, &self.ifindex),
        ]
        .into_iter()
        .filter(|(bit, _, _)| flags & bit != 0)
        .map(|(_, selector, paths)| SkbValue {
            selector: selector as i32,
            rdonly_cast: self.rdonly_cast,
            sk_buff: self.sk_buff,
            paths: paths.clone(),
        })
        .collect()
    }
}

/// What [`Btf::skb_fields`] and [`Btf::skb_value_paths`] require of a member's type.
#[derive(Clone, Copy)]
enum FieldShape {
    Pointer,
    Int(u32),
}

/// Whether `id` is, through typedefs and qualifiers, an integer of at least 4 bytes.
fn is_wide_int(btf: &Btf, id: TypeId) -> bool {
    let Ok(id) = btf.skip_modifiers(id) else {
        return false;
    };
    btf.get(id)
        .is_ok_and(|t| t.kind() == Kind::Int && t.size() >= 4)
}

impl Btf {
    /// The kernel's BTF: the file at `path` (raw BTF or an ELF file with `.BTF`, e.g. from
    /// btfhub) when given, else `/sys/kernel/btf/vmlinux`.
    pub fn kernel(path: Option<&Path>) -> Result<Btf, BtfError> {
        match path {
            Some(p) => Btf::from_file(p),
            None => Btf::vmlinux(),
        }
    }

    /// The vmlinux BTF ids the kfunc-cast read scheme of pwru-filter needs
    /// ([`pwru_filter::ProbeAccess::Cast`]): the `FUNC` `bpf_rdonly_cast` and `struct in_addr`
    /// (whose first member, at offset 0, is an integer of at least 4 bytes). `None` when this
    /// BTF lacks either (kernels before 6.2 have no `bpf_rdonly_cast`).
    ///
    /// ```no_run
    /// let btf = pwru_core::btf::Btf::vmlinux()?;
    /// if let Some(ids) = btf.cast_ids() {
    ///     println!("{ids}");
    /// }
    /// # Ok::<(), pwru_core::btf::BtfError>(())
    /// ```
    pub fn cast_ids(&self) -> Option<CastIds> {
        let rdonly_cast = self.find_by_name(Kind::Func, "bpf_rdonly_cast")?;
        let target = self.find_by_name(Kind::Struct, pwru_filter::cast::CAST_TARGET)?;
        let first = self.get(target).ok()?.members(self).next()?;
        if first.bit_offset != 0 || !is_wide_int(self, first.type_id) {
            return None;
        }
        Some(CastIds {
            rdonly_cast: rdonly_cast.0,
            target: target.0,
        })
    }

    /// Where this kernel's `struct sk_buff` keeps the header fields pwru-filter's skb entry
    /// reads ([`pwru_filter::dispatch_with_skb_entry`]), with the ids of `bpf_rdonly_cast` and
    /// `sk_buff`. `None` when this BTF lacks either, or a field is not what the entry loads:
    /// `head` a pointer, `tail` a 4-byte integer (an offset from `head`, as on every 64-bit
    /// kernel), the two header offsets 2-byte integers, none a bitfield.
    ///
    /// ```no_run
    /// let btf = pwru_core::btf::Btf::vmlinux()?;
    /// if let Some(fields) = btf.skb_fields() {
    ///     println!("{fields}");
    /// }
    /// # Ok::<(), pwru_core::btf::BtfError>(())
    /// ```
    pub fn skb_fields(&self) -> Option<SkbFields> {
        let rdonly_cast = self.find_by_name(Kind::Func, "bpf_rdonly_cast")?;
        let sk_buff = self.find_by_name(Kind::Struct, "sk_buff")?;
        let field =
            |name: &str, want: FieldShape| Some(self.member_load("sk_buff", name, want)?.offset);
        Some(SkbFields {
            rdonly_cast: rdonly_cast.0,
            sk_buff: sk_buff.0,
            head: field("head", FieldShape::Pointer)?,
            tail: field("tail", FieldShape::Int(4))?,
            mac_header: field("mac_header", FieldShape::Int(2))?,
            network_header: field("network_header", FieldShape::Int(2))?,
        })
    }

    /// The load chains of the values the netns, mark and interface filters compare, for
    /// pwru-filter's skb value selectors ([`pwru_filter::SkbValue`]), from `sk_buff` with the
    /// ids of `bpf_rdonly_cast` and `sk_buff`: the netns inode through the device
    /// (`dev->nd_net.net->ns.inum`), else the socket (`sk->__sk_common.skc_net.net->ns.inum`);
    /// `mark`; the device's `ifindex`. `None` when this BTF lacks the kfunc or a member, or a
    /// member has another shape (each pointer a pointer, each value a 4-byte integer).
    pub fn skb_value_paths(&self) -> Option<SkbValuePaths> {
        let rdonly_cast = self.find_by_name(Kind::Func, "bpf_rdonly_cast")?.0;
        let sk_buff = self.find_by_name(Kind::Struct, "sk_buff")?.0;
        let ptr = |st: &str, path: &str| self.member_load(st, path, FieldShape::Pointer);
        let int = |st: &str, path: &str| self.member_load(st, path, FieldShape::Int(4));
        let inum = int("net", "ns.inum")?;
        Some(SkbValuePaths {
            rdonly_cast,
            sk_buff,
            netns: vec![
                vec![
                    ptr("sk_buff", "dev")?,
                    ptr("net_device", "nd_net.net")?,
                    inum,
                ],
                vec![
                    ptr("sk_buff", "sk")?,
                    ptr("sock", "__sk_common.skc_net.net")?,
                    inum,
                ],
            ],
            mark: vec![vec![int("sk_buff", "mark")?]],
            ifindex: vec![vec![ptr("sk_buff", "dev")?, int("net_device", "ifindex")?]],
        })
    }

    /// The load of member `path` (dot-separated names, anonymous members looked through) of
    /// struct `name`, if it has that shape and no bitfield is on the way.
    fn member_load(&self, name: &str, path: &str, want: FieldShape) -> Option<Load> {
        let mut layout = self.struct_layout(name).ok()?;
        let mut offset = 0u32;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let m = layout.member(part)?.clone();
            if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
                return None;
            }
            offset = offset.checked_add(m.byte_offset())?;
            let id = self.skip_modifiers(m.type_id).ok()?;
            let t = self.get(id).ok()?;
            if parts.peek().is_some() {
                layout = self.layout_of(id).ok()?;
                continue;
            }
            let size = match want {
                FieldShape::Pointer if t.kind() == Kind::Ptr => LoadSize::U64,
                FieldShape::Int(2) if t.kind() == Kind::Int && t.size() == 2 => LoadSize::U16,
                FieldShape::Int(4) if t.kind() == Kind::Int && t.size() == 4 => LoadSize::U32,
                _ => return None,
            };
            return Some(Load {
                offset: i16::try_from(offset).ok()?,
                size,
            });
        }
        None
    }

    /// The same BTF parsed by aya (which has its own type), from the bytes this one holds: no
    /// second read of the file. Uncounted ([`count_aya_parse`] is for the thread on whose
    /// behalf it is parsed).
    pub(crate) fn to_aya_uncounted(&self) -> Result<aya::Btf, aya::BtfError> {
        let endianness = if self.is_big_endian() {
            aya::Endianness::Big
        } else {
            aya::Endianness::Little
        };
        aya::Btf::parse(&self.data, endianness)
    }

    /// This BTF for aya to CO-RE relocate `object` against: only the types the object's type
    /// names lead to are whole, at their ids (see [`super::for_relocation`]); the whole BTF if
    /// `object` has no BTF this crate reads or this one cannot be trimmed. Uncounted, as
    /// [`Btf::to_aya_uncounted`].
    pub(crate) fn to_aya_for_relocation(&self, object: &[u8]) -> Result<aya::Btf, aya::BtfError> {
        match self.trimmed_for(object) {
            Some(raw) => aya::Btf::parse(&raw, aya::Endianness::Little),
            None => self.to_aya_uncounted(),
        }
    }

    /// The raw trimmed BTF [`Btf::to_aya_for_relocation`] gives aya, if this BTF and
    /// `object`'s can be read and trimmed.
    pub(crate) fn trimmed_for(&self, object: &[u8]) -> Option<Vec<u8>> {
        let local = Btf::from_elf(object).ok()?;
        let names: std::collections::HashSet<&str, crate::fnv::BuildFnv> = local
            .types()
            .filter(|(_, t)| {
                !matches!(
                    t.kind(),
                    Kind::Func | Kind::FuncProto | Kind::Var | Kind::DataSec
                )
            })
            .map(|(_, t)| super::for_relocation::essential(local.name_of(&t)))
            .filter(|n| !n.is_empty())
            .collect();
        super::for_relocation::trimmed(self, &names)
    }
}
