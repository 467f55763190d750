//! One packet's series as a text block: a heading (identity, hops, duration, end), then one
//! line per hop with `+delta` and what changed, and the places where lost records fell.

use std::fmt::Write as _;

use super::duration::write_ns;
use crate::series::{Hop, Series};

/// Appends the block for `s`, ending with a blank line.
///
/// ```
/// use pwru_core::event::{Event, ProbeKind};
/// use pwru_core::series::{Grouper, SeriesOptions};
/// let mut g = Grouper::new(SeriesOptions::default());
/// for (t, f) in [(0, "netif_receive_skb"), (1_500, "consume_skb")] {
///     let mut ev = Event::new(ProbeKind::Tracepoint, f);
///     ev.packet_id = Some(3);
///     ev.timestamp_ns = t;
///     g.push(&ev);
/// }
/// let mut out = String::new();
/// pwru_core::format::write_series_text(&g.pop().unwrap(), &mut out);
/// assert!(out.starts_with("packet id 3: 2 hops in 1.50µs, freed\n"));
/// assert!(out.contains("  +1.50µs  consume_skb"));
/// ```
pub fn write_series_text(s: &Series, out: &mut String) {
    let _ = write!(out, "packet {}", s.key);
    if let Some(p) = s.parent_packet_id {
        let _ = write!(out, " (clone of id {p})");
    }
    let _ = write!(out, ": {} hops in ", s.hops.len());
    write_ns(out, s.duration_ns());
    let _ = write!(out, ", {}", s.end);
    if s.weak_identity() {
        out.push_str(" [grouped by skb address: a weak identity]");
    }
    if s.hops_not_kept > 0 {
        let _ = write!(out, " [{} hops not kept]", s.hops_not_kept);
    }
    out.push('\n');
    let mut gaps = s.gaps.iter().peekable();
    for (i, hop) in s.hops.iter().enumerate() {
        while let Some(g) = gaps.next_if(|g| g.after_hops <= i) {
            let _ = writeln!(
                out,
                "  ~~ {} records lost here (any packet's: this one possibly affected)",
                g.lost
            );
        }
        write_hop(out, hop, i == 0);
    }
    for g in gaps {
        let _ = writeln!(
            out,
            "  ~~ {} records lost here (any packet's: this one possibly affected)",
            g.lost
        );
    }
    out.push('\n');
}

fn write_hop(out: &mut String, hop: &Hop, first: bool) {
    let start = out.len();
    out.push_str("  +");
    write_ns(out, hop.delta_ns);
    // Align the function names: "+" and up to 8 characters of duration.
    let width = out[start..].chars().count();
    for _ in width..11 {
        out.push(' ');
    }
    out.push_str(&hop.function);
    if first {
        // The state the packet started with, so later changes read against it.
        let st = &hop.state;
        if let Some(t) = &st.tuple {
            let _ = write!(out, "  {t}");
        }
        if let Some(i) = &st.interface {
            let _ = write!(out, "  dev {i}");
        }
        if let Some(n) = st.netns {
            let _ = write!(out, "  netns {n}");
        }
    }
    if let Some(r) = &hop.drop_reason {
        let _ = write!(out, "  drop: {r}");
    }
    for (k, c) in hop.changes.iter().enumerate() {
        out.push_str(if k == 0 { "  | " } else { "; " });
        let _ = write!(out, "{c}");
    }
    out.push('\n');
}
