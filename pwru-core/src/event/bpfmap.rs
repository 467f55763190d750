//! [`BpfMapOp`]: one map operation of a traced tc/XDP program (`bpf_map_ops`, pwru
//! `--output-bpfmap`), and its decoding from a `PWRU_RECORD_BPFMAP` ring buffer record.

use std::sync::Arc;
use std::time::SystemTime;

use pwru_ebpf::{
    PwruBpfmapRecord, PWRU_BPFMAP_DELETE, PWRU_BPFMAP_HAS_VALUE, PWRU_BPFMAP_LOOKUP,
    PWRU_BPFMAP_UPDATE, PWRU_RECORD_BPFMAP, PWRU_RECORD_VERSION,
};

use super::decode::{DecodeContext, DecodeError};
use super::{ProbeKind, ShortName};

/// Which map operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapOpType {
    /// A lookup, seen at return: the value is the one found (none when the key was absent).
    Lookup,
    /// An update, seen at entry: the value is the one written.
    Update,
    /// A delete, seen at entry: no value.
    Delete,
}

impl MapOpType {
    /// `lookup`, `update` or `delete`.
    pub fn name(self) -> &'static str {
        match self {
            MapOpType::Lookup => "lookup",
            MapOpType::Update => "update",
            MapOpType::Delete => "delete",
        }
    }

    fn from_raw(raw: u8) -> Option<MapOpType> {
        match raw {
            PWRU_BPFMAP_LOOKUP => Some(MapOpType::Lookup),
            PWRU_BPFMAP_UPDATE => Some(MapOpType::Update),
            PWRU_BPFMAP_DELETE => Some(MapOpType::Delete),
            _ => None,
        }
    }
}

impl std::fmt::Display for MapOpType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One lookup, update or delete of a BPF map done by a traced tc/XDP program, linked to the
/// packet by the kernel stack it ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BpfMapOp {
    /// The operation.
    pub op: MapOpType,
    /// The kind of program that saw it (kprobe, fentry, fexit).
    pub kind: ProbeKind,
    /// The kernel's map function (e.g. `htab_map_update_elem`, `__htab_map_lookup_elem`).
    pub function: Arc<str>,
    /// Its address.
    pub address: u64,
    /// The packet: the skb last seen on the same kernel stack.
    pub skb: u64,
    /// CPU it ran on.
    pub cpu: u32,
    /// Thread id.
    pub pid: u32,
    /// Kernel monotonic time in nanoseconds.
    pub timestamp_ns: u64,
    /// Wall-clock time of [`timestamp_ns`](Self::timestamp_ns) (see `Event::wall_time`).
    pub wall_time: Option<SystemTime>,
    /// The map's id (as `bpftool map show id N`).
    pub map_id: u32,
    /// The map's name.
    pub map_name: ShortName,
    /// The map's key size in bytes.
    pub key_size: u32,
    /// The map's value size in bytes.
    pub value_size: u32,
    /// The key's bytes: all of them, or the first 64 when the key is longer.
    pub key: Vec<u8>,
    /// The value's bytes (first 64 at most); `None` for a delete or a lookup that found
    /// nothing.
    pub value: Option<Vec<u8>>,
}

/// The kind of a ring buffer record, from its header (`None` when shorter than a header).
pub(crate) fn record_kind(record: &[u8]) -> Option<u16> {
    record.get(0..2).map(|b| u16::from_ne_bytes([b[0], b[1]]))
}

/// Whether `record` is a map operation record.
pub(crate) fn is_bpfmap_record(record: &[u8]) -> bool {
    record_kind(record) == Some(PWRU_RECORD_BPFMAP)
}

/// Decodes a `PWRU_RECORD_BPFMAP` record.
pub fn decode_bpfmap(record: &[u8], ctx: &DecodeContext) -> Result<BpfMapOp, DecodeError> {
    const LEN: usize = std::mem::size_of::<PwruBpfmapRecord>();
    let bytes: &[u8; LEN] =
        record
            .get(..LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated {
                need: LEN,
                got: record.len(),
            })?;
    let r = parse(bytes);
    if r.hdr.kind != PWRU_RECORD_BPFMAP {
        return Err(DecodeError::UnknownKind(r.hdr.kind));
    }
    if r.hdr.version != PWRU_RECORD_VERSION {
        return Err(DecodeError::UnknownVersion(r.hdr.version));
    }
    let len = r.hdr.len as usize;
    if len > record.len() || len < LEN {
        return Err(DecodeError::BadLength {
            header: len,
            got: record.len(),
        });
    }
    let o = r.op;
    let op = MapOpType::from_raw(o.op).ok_or(DecodeError::UnknownKind(u16::from(o.op)))?;
    let kind = ProbeKind::from_raw(o.kind).ok_or(DecodeError::UnknownProbeKind(o.kind))?;
    let kept = |size: u32| (size as usize).min(pwru_ebpf::PWRU_BPFMAP_BYTES);
    let key = o.key[..kept(o.key_size)].to_vec();
    let value =
        (o.flags & PWRU_BPFMAP_HAS_VALUE != 0).then(|| o.value[..kept(o.value_size)].to_vec());
    Ok(BpfMapOp {
        op,
        kind,
        function: ctx.function_name(kind, o.addr, None),
        address: o.addr,
        skb: o.skb,
        cpu: o.cpu,
        pid: o.pid,
        timestamp_ns: o.ts,
        wall_time: ctx.wall_clock().map(|c| c.to_system_time(o.ts)),
        map_id: o.map_id,
        map_name: ShortName::from_bytes(o.map_name),
        key_size: o.key_size,
        value_size: o.value_size,
        key,
        value,
    })
}

/// The record's fields, read from its bytes (native endian, the layout of the mirror).
fn parse(b: &[u8; std::mem::size_of::<PwruBpfmapRecord>()]) -> PwruBpfmapRecord {
    use pwru_ebpf::{PwruBpfmap as B, PwruRecordHdr as H};
    use std::mem::offset_of;
    let u16_at = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_ne_bytes(w)
    };
    let h = offset_of!(PwruBpfmapRecord, op);
    let mut r = PwruBpfmapRecord::default();
    r.hdr.kind = u16_at(offset_of!(H, kind));
    r.hdr.version = u16_at(offset_of!(H, version));
    r.hdr.len = u32_at(offset_of!(H, len));
    r.op.ts = u64_at(h + offset_of!(B, ts));
    r.op.addr = u64_at(h + offset_of!(B, addr));
    r.op.skb = u64_at(h + offset_of!(B, skb));
    r.op.cpu = u32_at(h + offset_of!(B, cpu));
    r.op.pid = u32_at(h + offset_of!(B, pid));
    r.op.map_id = u32_at(h + offset_of!(B, map_id));
    r.op.key_size = u32_at(h + offset_of!(B, key_size));
    r.op.value_size = u32_at(h + offset_of!(B, value_size));
    r.op.op = b[h + offset_of!(B, op)];
    r.op.kind = b[h + offset_of!(B, kind)];
    r.op.flags = b[h + offset_of!(B, flags)];
    let at = |o: usize| h + o;
    r.op.map_name
        .copy_from_slice(&b[at(offset_of!(B, map_name))..at(offset_of!(B, map_name)) + 16]);
    let n = pwru_ebpf::PWRU_BPFMAP_BYTES;
    r.op.key
        .copy_from_slice(&b[at(offset_of!(B, key))..at(offset_of!(B, key)) + n]);
    r.op.value
        .copy_from_slice(&b[at(offset_of!(B, value))..at(offset_of!(B, value)) + n]);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwru_ebpf::PWRU_BPFMAP_KEY_CUT;

    fn record(op: u8, flags: u8, key_size: u32, value_size: u32) -> Vec<u8> {
        let mut r = PwruBpfmapRecord::default();
        r.hdr.kind = PWRU_RECORD_BPFMAP;
        r.hdr.version = PWRU_RECORD_VERSION;
        r.hdr.len = std::mem::size_of::<PwruBpfmapRecord>() as u32;
        r.op.op = op;
        r.op.kind = 3;
        r.op.flags = flags;
        r.op.map_id = 42;
        r.op.skb = 0xffff_8880_0000_1000;
        r.op.key_size = key_size;
        r.op.value_size = value_size;
        r.op.map_name[..4].copy_from_slice(b"lens");
        for i in 0..64 {
            r.op.key[i] = i as u8;
            r.op.value[i] = 0x80 | i as u8;
        }
        let mut out = Vec::new();
        out.extend_from_slice(&r.hdr.kind.to_ne_bytes());
        out.extend_from_slice(&r.hdr.version.to_ne_bytes());
        out.extend_from_slice(&r.hdr.len.to_ne_bytes());
        let o = r.op;
        for w in [o.ts, o.addr, o.skb] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        for w in [o.cpu, o.pid, o.map_id, o.key_size, o.value_size] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.extend_from_slice(&[o.op, o.kind, o.flags, 0]);
        out.extend_from_slice(&o.map_name);
        out.extend_from_slice(&o.key);
        out.extend_from_slice(&o.value);
        assert_eq!(out.len(), std::mem::size_of::<PwruBpfmapRecord>());
        out
    }

    #[test]
    fn decodes_update_with_key_and_value() {
        let ctx = DecodeContext::new();
        let op = decode_bpfmap(
            &record(PWRU_BPFMAP_UPDATE, PWRU_BPFMAP_HAS_VALUE, 4, 8),
            &ctx,
        )
        .expect("decodes");
        assert_eq!(op.op, MapOpType::Update);
        assert_eq!(op.map_id, 42);
        assert_eq!(op.map_name.as_str(), "lens");
        assert_eq!(op.key, vec![0, 1, 2, 3]);
        assert_eq!(
            op.value,
            Some(vec![0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87])
        );
        assert_eq!(op.skb, 0xffff_8880_0000_1000);
    }

    #[test]
    fn lookup_miss_has_no_value_and_long_keys_are_cut() {
        let ctx = DecodeContext::new();
        let op = decode_bpfmap(
            &record(PWRU_BPFMAP_LOOKUP, PWRU_BPFMAP_KEY_CUT, 100, 8),
            &ctx,
        )
        .expect("decodes");
        assert_eq!(op.op, MapOpType::Lookup);
        assert_eq!(op.value, None);
        assert_eq!(op.key.len(), 64);
        assert_eq!(op.key_size, 100);
    }

    #[test]
    fn refuses_short_and_unknown_records() {
        let ctx = DecodeContext::new();
        let r = record(PWRU_BPFMAP_DELETE, 0, 4, 8);
        assert!(matches!(
            decode_bpfmap(&r[..100], &ctx),
            Err(DecodeError::Truncated { .. })
        ));
        let mut bad = r.clone();
        let op_at = std::mem::offset_of!(PwruBpfmapRecord, op)
            + std::mem::offset_of!(pwru_ebpf::PwruBpfmap, op);
        bad[op_at] = 9;
        assert!(decode_bpfmap(&bad, &ctx).is_err());
    }
}
