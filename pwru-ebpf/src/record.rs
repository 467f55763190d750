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
/// and its neighbours, [`PwruEvent::packet_id`] and [`PwruEvent::parent_packet_id`]; 5: the
/// check word is folded in [`PWRU_CHECK_LANES`] lanes).
pub const PWRU_RECORD_VERSION: u16 = 5;
/// Largest skb dump appended to an event (bytes, NUL included).
pub const PWRU_SKB_DUMP_MAX: usize = 4096;
/// Largest `skb_shared_info` dump appended to an event (bytes, NUL included).
pub const PWRU_SHINFO_DUMP_MAX: usize = 1024;
/// Largest number of packet bytes appended to an event.
pub const PWRU_PKT_MAX: usize = 4096;

/// 8-byte words of a record covered by the check word: the header and the event.
pub const PWRU_CHECK_WORDS: usize = 39;
/// Independent lanes of the check word fold (word `i` goes into lane `i % PWRU_CHECK_LANES`).
pub const PWRU_CHECK_LANES: usize = 4;
/// Start value of the check word fold (lane `k` starts from `PWRU_CHECK_SEED ^ k`).
pub const PWRU_CHECK_SEED: u64 = 0x7077_7275_7265_6331;
/// Multiplier of the check word fold (the FNV-1a 64-bit prime).
pub const PWRU_CHECK_MUL: u64 = 0x0000_0100_0000_01b3;
/// Bytes covered by the check word: `PwruRecordHdr` + `PwruEvent`.
pub const PWRU_CHECK_BYTES: usize = PWRU_CHECK_WORDS * 8;
/// Byte offset of [`PwruEvent::check`] in a record (header included).
pub const PWRU_CHECK_OFFSET: usize =
    core::mem::size_of::<PwruRecordHdr>() + core::mem::offset_of!(PwruEvent, check);

/// One step of the check word fold.
#[inline(always)]
fn check_fold(c: u64, w: u64) -> u64 {
    (c.rotate_left(7) ^ w).wrapping_mul(PWRU_CHECK_MUL)
}

/// The check word the kernel programs put in [`PwruEvent::check`]: the record's first
/// [`PWRU_CHECK_BYTES`] bytes (header and event) as native-endian 8-byte words, with the
/// check field read as zero, folded in [`PWRU_CHECK_LANES`] lanes: word `i` into lane
/// `i % PWRU_CHECK_LANES` as `c = (c.rotate_left(7) ^ w) * PWRU_CHECK_MUL`, lane `k` starting
/// from `PWRU_CHECK_SEED ^ k`; then the lanes folded the same way into lane 0's value, and
/// `c ^ (c >> 32)` truncated. (Lanes, because the steps of one chain wait on each other's
/// multiply: independent chains overlap.) A record that another program run wrote into while
/// it was being built does not check (the kernel spoils the word on purpose when it notices;
/// user space rejects every record whose word differs).
pub fn record_check(record: &[u8; PWRU_CHECK_BYTES]) -> u32 {
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&record[i * 8..i * 8 + 8]);
        if i == PWRU_CHECK_WORDS - 1 {
            // The check field: the upper half of the last word (see the assertions below).
            b[4..].fill(0);
        }
        u64::from_ne_bytes(b)
    };
    let mut lane = [0u64; PWRU_CHECK_LANES];
    for (k, l) in lane.iter_mut().enumerate() {
        *l = PWRU_CHECK_SEED ^ k as u64;
    }
    // Whole rows of lanes first, written out so that the lanes stay in registers.
    let rows = PWRU_CHECK_WORDS / PWRU_CHECK_LANES;
    for r in 0..rows {
        let i = r * PWRU_CHECK_LANES;
        lane[0] = check_fold(lane[0], word(i));
        lane[1] = check_fold(lane[1], word(i + 1));
        lane[2] = check_fold(lane[2], word(i + 2));
        lane[3] = check_fold(lane[3], word(i + 3));
    }
    for i in rows * PWRU_CHECK_LANES..PWRU_CHECK_WORDS {
        lane[i % PWRU_CHECK_LANES] = check_fold(lane[i % PWRU_CHECK_LANES], word(i));
    }
    let c = lane[1..].iter().fold(lane[0], |c, &l| check_fold(c, l));
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
    // record_check writes one row of lanes out by hand.
    assert!(PWRU_CHECK_LANES == 4);
};
