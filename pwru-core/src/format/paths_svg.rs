//! The aggregated paths as a picture: a hand-written SVG graph whose nodes are functions and
//! whose edges carry packet counts and p50/p99 latency; drops are drawn in red; a legend
//! explains the marks. It opens in any browser.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::duration;
use crate::series::{LatencyHistogram, PathAggregator};

/// Paths drawn at most (the most common); the legend counts the rest.
const MAX_PATHS_DRAWN: usize = 40;

const ROW: f64 = 96.0;
const NODE_H: f64 = 30.0;
const GAP_X: f64 = 80.0;
const MARGIN: f64 = 24.0;
const LEGEND_H: f64 = 96.0;
const CHAR_W: f64 = 7.2;

/// A node: a function, or the drop reason a path ends with.
#[derive(Debug)]
struct Node {
    label: String,
    drop: bool,
    layer: usize,
    x: f64,
    w: f64,
}

/// Edges between nodes, merged over every drawn path.
#[derive(Debug, Default)]
struct Edge {
    packets: u64,
    latency: LatencyHistogram,
    drop: bool,
}

/// Escapes text for SVG (XML) content and attributes.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// The SVG document of `paths`.
///
/// ```
/// use pwru_core::series::{PathAggregator, PathOptions};
/// let svg = pwru_core::format::paths_svg(&PathAggregator::new(PathOptions::default()));
/// assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
/// ```
pub fn paths_svg(paths: &PathAggregator) -> String {
    let list = paths.paths();
    let drawn = &list[..list.len().min(MAX_PATHS_DRAWN)];
    let mut nodes: Vec<Node> = Vec::new();
    let mut index: HashMap<(Arc<str>, bool), usize> = HashMap::new();
    let mut edges: HashMap<(usize, usize), Edge> = HashMap::new();
    let mut node = |nodes: &mut Vec<Node>, name: &Arc<str>, drop: bool, layer: usize| -> usize {
        let i = *index.entry((name.clone(), drop)).or_insert_with(|| {
            nodes.push(Node {
                label: name.to_string(),
                drop,
                layer,
                x: 0.0,
                w: (name.chars().count() as f64 * CHAR_W + 20.0).max(130.0),
            });
            nodes.len() - 1
        });
        // A node sits at the earliest hop where any path reaches it.
        nodes[i].layer = nodes[i].layer.min(layer);
        i
    };
    for p in drawn {
        let mut prev: Option<usize> = None;
        for (k, f) in p.functions.iter().enumerate() {
            let i = node(&mut nodes, f, false, k);
            if let Some(a) = prev {
                let e = edges.entry((a, i)).or_default();
                e.packets += p.packets;
                if let Some(h) = p.hop_latency.get(k - 1) {
                    e.latency.merge(h);
                }
            }
            prev = Some(i);
        }
        if let (Some(r), Some(a)) = (&p.drop_reason, prev) {
            let label: Arc<str> = Arc::from(format!("drop: {r}"));
            let d = node(&mut nodes, &label, true, p.functions.len());
            let e = edges.entry((a, d)).or_default();
            e.packets += p.packets;
            e.drop = true;
        }
    }
    // Rows by layer, nodes left to right in order of first appearance.
    let layers = nodes.iter().map(|n| n.layer + 1).max().unwrap_or(0);
    let mut row_width = vec![0.0f64; layers];
    for n in nodes.iter_mut() {
        n.x = MARGIN + row_width[n.layer];
        row_width[n.layer] += n.w + GAP_X;
    }
    let content_w = row_width.iter().copied().fold(0.0, f64::max);
    let width = (content_w + 2.0 * MARGIN + 260.0).max(640.0);
    // Centre each row.
    for n in nodes.iter_mut() {
        n.x += (content_w - row_width[n.layer]) / 2.0;
    }
    let height = MARGIN + LEGEND_H + layers as f64 * ROW + MARGIN;
    let y_of = |layer: usize| MARGIN + LEGEND_H + layer as f64 * ROW;
    let max_packets = edges.values().map(|e| e.packets).max().unwrap_or(1).max(1) as f64;

    let mut s = String::with_capacity(4096 + 300 * (nodes.len() + edges.len()));
    let _ = writeln!(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"12\">"
    );
    s.push_str(
        "<defs>\
<marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#455a64\"/></marker>\
<marker id=\"arrow-drop\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#c62828\"/></marker>\
</defs>\n",
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    // Legend.
    let _ = writeln!(
        s,
        "<g id=\"legend\"><rect x=\"{MARGIN}\" y=\"{MARGIN}\" width=\"{:.0}\" height=\"{:.0}\" fill=\"#f5f5f5\" stroke=\"#9e9e9e\"/>",
        width - 2.0 * MARGIN,
        LEGEND_H - 16.0
    );
    let mut title = format!(
        "pwru paths: {} packets, {} distinct paths",
        paths.series(),
        list.len()
    );
    if list.len() > drawn.len() {
        let _ = write!(title, " ({} most common drawn)", drawn.len());
    }
    if paths.series_not_kept() > 0 {
        let _ = write!(title, "; {} on paths past the cap", paths.series_not_kept());
    }
    let lx = MARGIN + 12.0;
    let _ = writeln!(
        s,
        "<text x=\"{lx}\" y=\"{:.0}\" font-weight=\"bold\">{}</text>",
        MARGIN + 20.0,
        xml(&title)
    );
    let _ = writeln!(
        s,
        "<line x1=\"{lx}\" y1=\"{y:.0}\" x2=\"{:.0}\" y2=\"{y:.0}\" stroke=\"#455a64\" stroke-width=\"2\" marker-end=\"url(#arrow)\"/>\
<text x=\"{:.0}\" y=\"{:.0}\">hop: packets, p50 / p99 latency to the next function (width grows with packets)</text>",
        lx + 40.0,
        lx + 50.0,
        MARGIN + 44.0,
        y = MARGIN + 40.0
    );
    let _ = writeln!(
        s,
        "<line x1=\"{lx}\" y1=\"{y:.0}\" x2=\"{:.0}\" y2=\"{y:.0}\" stroke=\"#c62828\" stroke-width=\"2\" marker-end=\"url(#arrow-drop)\"/>\
<rect x=\"{:.0}\" y=\"{:.0}\" width=\"14\" height=\"12\" fill=\"#ffebee\" stroke=\"#c62828\"/>\
<text x=\"{:.0}\" y=\"{:.0}\">drop: the packets dropped there, and the kernel's reason</text></g>",
        lx + 40.0,
        lx + 50.0,
        MARGIN + 56.0,
        lx + 70.0,
        MARGIN + 66.0,
        y = MARGIN + 62.0
    );
    // Edges first, so nodes draw over their ends.
    let mut sorted: Vec<(&(usize, usize), &Edge)> = edges.iter().collect();
    sorted.sort_by_key(|((a, b), _)| (*a, *b));
    s.push_str("<g id=\"edges\" fill=\"none\">\n");
    for (&(a, b), e) in &sorted {
        let (na, nb) = (&nodes[a], &nodes[b]);
        let (x1, y1) = (na.x + na.w / 2.0, y_of(na.layer) + NODE_H);
        let (x2, y2) = (nb.x + nb.w / 2.0, y_of(nb.layer));
        let colour = if e.drop { "#c62828" } else { "#455a64" };
        let marker = if e.drop { "arrow-drop" } else { "arrow" };
        let stroke = 1.2 + 3.0 * (e.packets as f64).ln_1p() / max_packets.ln_1p();
        let (path, lxp, lyp) = if nb.layer > na.layer {
            // Labels near the target end: edges fanning out from one node spread apart there.
            (
                format!("M{x1:.1},{y1:.1} L{x2:.1},{y2:.1}"),
                x1 + (x2 - x1) * 0.7 + if x2 < x1 - 1.0 { -6.0 } else { 6.0 },
                y1 + (y2 - y1) * 0.7 - 8.0,
            )
        } else {
            // Back or sideways: a loop out to the right of both boxes.
            let out = na.x.max(nb.x) + na.w.max(nb.w) + 30.0;
            let (sx, sy) = (na.x + na.w, y_of(na.layer) + NODE_H / 2.0);
            let (ex, ey) = (nb.x + nb.w, y_of(nb.layer) + NODE_H / 2.0);
            (
                format!("M{sx:.1},{sy:.1} C{out:.1},{sy:.1} {out:.1},{ey:.1} {ex:.1},{ey:.1}"),
                out - 6.0,
                (sy + ey) / 2.0 - 8.0,
            )
        };
        // Labels of edges going left end at the edge, so they stay clear of their neighbours.
        let anchor = if nb.layer > na.layer && x2 < x1 - 1.0 {
            "end"
        } else {
            "start"
        };
        let count = format!("{} pkts", e.packets);
        let timing = match (e.latency.percentile(0.5), e.latency.percentile(0.99)) {
            (Some(p50), Some(p99)) => {
                format!("p50 {} / p99 {}", duration::ns(p50), duration::ns(p99))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "<path d=\"{path}\" stroke=\"{colour}\" stroke-width=\"{stroke:.1}\" marker-end=\"url(#{marker})\"><title>{}</title></path>\
<text x=\"{lxp:.1}\" y=\"{lyp:.1}\" fill=\"{colour}\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\" font-size=\"11\" text-anchor=\"{anchor}\">{}<tspan x=\"{lxp:.1}\" dy=\"13\">{}</tspan></text>",
            xml(&format!("{} -> {}: {count} {timing}", na.label, nb.label)),
            xml(&count),
            xml(&timing)
        );
    }
    s.push_str("</g>\n<g id=\"nodes\">\n");
    for n in &nodes {
        let y = y_of(n.layer);
        let (fill, line) = if n.drop {
            ("#ffebee", "#c62828")
        } else {
            ("#e3f2fd", "#1565c0")
        };
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{NODE_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"{line}\" stroke-width=\"1.5\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            n.x,
            n.w,
            n.x + n.w / 2.0,
            y + NODE_H / 2.0 + 4.0,
            xml(&n.label)
        );
    }
    s.push_str("</g>\n</svg>\n");
    s
}
