//! One packet's series as one JSON object (a line), for `--output-series --output-json`.

use std::fmt::Write as _;

use super::json::string;
use crate::series::{Change, Series, SeriesEnd};

/// Appends `s` as one JSON object and a newline.
///
/// Keys: `packet_id` or `skb` (with `"weak_identity": true`), `parent_packet_id`, `end`
/// (`freed`, `dropped`, `idle_timeout`, `evicted`, `flushed`), `drop_reason`, `duration_ns`,
/// `hops_not_kept`, `gaps` (`after_hops`, `lost`), `hops` (`func`, `ts`, `delta_ns`, `cpu`,
/// `drop_reason`, `changes`: `field`, `from`, `to`).
pub fn write_series_json(s: &Series, out: &mut Vec<u8>) {
    let mut t = String::with_capacity(256);
    t.push('{');
    match s.key {
        crate::series::PacketKey::Id(id) => {
            let _ = write!(t, "\"packet_id\":{id}");
        }
        crate::series::PacketKey::Skb(a) => {
            let _ = write!(t, "\"skb\":\"{a:#x}\",\"weak_identity\":true");
        }
    }
    if let Some(p) = s.parent_packet_id {
        let _ = write!(t, ",\"parent_packet_id\":{p}");
    }
    let end = match &s.end {
        SeriesEnd::Freed => "freed",
        SeriesEnd::Dropped(_) => "dropped",
        SeriesEnd::IdleTimeout => "idle_timeout",
        SeriesEnd::Evicted => "evicted",
        SeriesEnd::Flushed => "flushed",
    };
    let _ = write!(t, ",\"end\":\"{end}\"");
    out.extend_from_slice(t.as_bytes());
    t.clear();
    if let Some(r) = s.drop_reason() {
        out.extend_from_slice(b",\"drop_reason\":");
        string(out, r.to_string().as_bytes());
    }
    let _ = write!(
        t,
        ",\"duration_ns\":{},\"hops_not_kept\":{},\"gaps\":[",
        s.duration_ns(),
        s.hops_not_kept
    );
    for (i, g) in s.gaps.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            t,
            "{sep}{{\"after_hops\":{},\"lost\":{}}}",
            g.after_hops, g.lost
        );
    }
    t.push_str("],\"hops\":[");
    out.extend_from_slice(t.as_bytes());
    for (i, h) in s.hops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"func\":");
        string(out, h.function.as_bytes());
        t.clear();
        let _ = write!(
            t,
            ",\"ts\":{},\"delta_ns\":{},\"cpu\":{}",
            h.timestamp_ns, h.delta_ns, h.cpu
        );
        out.extend_from_slice(t.as_bytes());
        if let Some(r) = &h.drop_reason {
            out.extend_from_slice(b",\"drop_reason\":");
            string(out, r.to_string().as_bytes());
        }
        out.extend_from_slice(b",\"changes\":[");
        for (k, c) in h.changes.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let (from, to) = from_to(c);
            out.extend_from_slice(b"{\"field\":");
            string(out, c.field().as_bytes());
            out.extend_from_slice(b",\"from\":");
            string(out, from.as_bytes());
            out.extend_from_slice(b",\"to\":");
            string(out, to.as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}\n");
}

/// The two sides of a change as text.
fn from_to(c: &Change) -> (String, String) {
    match c {
        Change::Netns { from, to } | Change::Len { from, to } => (from.to_string(), to.to_string()),
        Change::Mark { from, to } => (format!("{from:#x}"), format!("{to:#x}")),
        Change::Interface { from, to } => (from.to_string(), to.to_string()),
        Change::Source { from, to } | Change::Destination { from, to } => {
            (from.to_string(), to.to_string())
        }
        Change::Protocol { from, to } => (from.to_string(), to.to_string()),
    }
}
