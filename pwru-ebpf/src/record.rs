//! The ring buffer record: its header, kinds and version, the dumps that may follow an event,
//! and the check word that seals each record.

use crate::PwruEvent;

/// Every ring buffer record starts with this header (`struct pwru_record_hdr`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PwruRecordHdr {
    /// Record kind, one of the `PWRU_RECORD_*` constants.
    pub kind: u16,
    /// Layout version, [`PWRU_RECORD_VERSION`].
    pub version: u16,
    /// Length of the whole record in bytes, header included.
    pub len: u32,
}

/// Record kind: a [`PwruRecordHdr`], a [`PwruEvent`], then `skb_dump_len` bytes of skb text,
/// `shinfo_dump_len` bytes of `skb_shared_info` text and `pkt_len` packet bytes.
pub const PWRU_RECORD_EVENT: u16 = 1;
/// Record kind: a [`PwruRecordHdr`], then a [`PwruBpfmap`](crate::PwruBpfmap) (one map
/// operation of a traced tc/XDP program). Reserved in the ring buffer by its run, so it has
/// no check word.
pub const PWRU_RECORD_BPFMAP: u16 = 2;
/// Current record layout version (2: [`PwruEvent::check`] holds the check word; 4:
/// [`PwruEvent::metadata`] after the tunnel tuple, packet bytes with [`PwruEvent::pkt_len`]
/// and its neighbours, [`PwruEvent::packet_id`] and [`PwruEvent::parent_packet_id`]).
pub const PWRU_RECORD_VERSION: u16 = 4;
/// Largest skb dump appended to an event (bytes, NUL included).
pub const PWRU_SKB_DUMP_MAX: usize = 4096;
/// Largest `skb_shared_info` dump appended to an event (bytes, NUL included).
pub const PWRU_SHINFO_DUMP_MAX: usize = 1024;
/// Largest number of packet bytes appended to an event.
pub const PWRU_PKT_MAX: usize = 4096;

/// 8-byte words of a record covered by the check word: the header and the event.
pub const PWRU_CHECK_WORDS: usize = 39;
/// Start value of the check word fold.
pub const PWRU_CHECK_SEED: u64 = 0x7077_7275_7265_6331;
/// Multiplier of the check word fold (the FNV-1a 64-bit prime).
pub const PWRU_CHECK_MUL: u64 = 0x0000_0100_0000_01b3;
/// Bytes covered by the check word: `PwruRecordHdr` + `PwruEvent`.
pub const PWRU_CHECK_BYTES: usize = PWRU_CHECK_WORDS * 8;
/// Byte offset of [`PwruEvent::check`] in a record (header included).
pub const PWRU_CHECK_OFFSET: usize =
    core::mem::size_of::<PwruRecordHdr>() + core::mem::offset_of!(PwruEvent, check);

/// The check word the kernel programs put in [`PwruEvent::check`]: the record's first
/// [`PWRU_CHECK_BYTES`] bytes (header and event) as native-endian 8-byte words, with the
/// check field read as zero, folded as `c = (c.rotate_left(7) ^ w) * PWRU_CHECK_MUL` from
/// [`PWRU_CHECK_SEED`], then `c ^ (c >> 32)` truncated. A record that another program run
/// wrote into while it was being built does not check (the kernel spoils the word on purpose
/// when it notices; user space rejects every record whose word differs).
pub fn record_check(record: &[u8; PWRU_CHECK_BYTES]) -> u32 {
    let mut c = PWRU_CHECK_SEED;
    for (i, chunk) in record.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        if i * 8 + 8 > PWRU_CHECK_OFFSET && i * 8 <= PWRU_CHECK_OFFSET {
            let at = PWRU_CHECK_OFFSET - i * 8;
            w[at..at + 4].fill(0);
        }
        c = (c.rotate_left(7) ^ u64::from_ne_bytes(w)).wrapping_mul(PWRU_CHECK_MUL);
    }
    (c ^ (c >> 32)) as u32
}

/// What the ring buffer holds for [`PWRU_RECORD_BPFMAP`] (`struct pwru_bpfmap_record`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PwruBpfmapRecord {
    /// The header (kind [`PWRU_RECORD_BPFMAP`]).
    pub hdr: PwruRecordHdr,
    /// The operation.
    pub op: crate::PwruBpfmap,
}

// Sizes the kernel side relies on; a mismatch is a bug in a mirror.
const _: () = {
    assert!(core::mem::size_of::<PwruRecordHdr>() == 8);
    assert!(
        PWRU_CHECK_BYTES
            == core::mem::size_of::<PwruRecordHdr>() + core::mem::size_of::<PwruEvent>()
    );
    // The check field is the upper half of the record's last word.
    assert!(PWRU_CHECK_OFFSET == PWRU_CHECK_BYTES - 4);
};
