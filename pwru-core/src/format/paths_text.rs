//! The path summary as text: each distinct path with its packet count, how it ended, and
//! p50/p90/p99 latency of every hop and of the whole path.

use std::fmt::Write as _;

use super::duration::write_ns;
use crate::series::{LatencyHistogram, PathAggregator};

/// Appends the summary of `paths` (most packets first).
///
/// ```
/// use pwru_core::series::{PathAggregator, PathOptions};
/// let mut out = String::new();
/// pwru_core::format::write_paths_text(&PathAggregator::new(PathOptions::default()), &mut out);
/// assert_eq!(out, "paths: 0 packets on 0 distinct paths\n");
/// ```
pub fn write_paths_text(paths: &PathAggregator, out: &mut String) {
    let list = paths.paths();
    let _ = write!(
        out,
        "paths: {} packets on {} distinct paths",
        paths.series(),
        list.len()
    );
    if paths.series_not_kept() > 0 {
        let _ = write!(
            out,
            " ({} packets on further paths only counted: path cap reached)",
            paths.series_not_kept()
        );
    }
    out.push('\n');
    let total = paths.series().max(1);
    for (n, p) in list.iter().enumerate() {
        let _ = write!(
            out,
            "\n#{} {} packets ({:.1}%)",
            n + 1,
            p.packets,
            p.packets as f64 * 100.0 / total as f64
        );
        match &p.drop_reason {
            Some(r) => {
                let _ = write!(out, ", dropped: {r}");
            }
            None => out.push_str(", not dropped"),
        }
        if p.unfinished > 0 {
            let _ = write!(out, ", {} without a seen end", p.unfinished);
        }
        if p.possibly_affected > 0 {
            let _ = write!(
                out,
                ", {} possibly affected by lost records",
                p.possibly_affected
            );
        }
        if p.weak_identity > 0 {
            let _ = write!(out, ", {} grouped by skb address", p.weak_identity);
        }
        out.push_str("\n  total ");
        percentiles(out, &p.total_latency);
        out.push('\n');
        for (i, f) in p.functions.iter().enumerate() {
            let _ = write!(out, "  {f}");
            if let Some(h) = i.checked_sub(1).and_then(|j| p.hop_latency.get(j)) {
                out.push_str("  ");
                percentiles(out, h);
            }
            out.push('\n');
        }
    }
}

/// `p50 1.20µs p90 3.40µs p99 8.00µs`.
pub(crate) fn percentiles(out: &mut String, h: &LatencyHistogram) {
    for (k, (name, q)) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
        .iter()
        .enumerate()
    {
        if k > 0 {
            out.push(' ');
        }
        out.push_str(name);
        out.push(' ');
        match h.percentile(*q) {
            Some(ns) => write_ns(out, ns),
            None => out.push('-'),
        }
    }
}
