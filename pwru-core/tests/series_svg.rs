//! The path picture, rendered by a real SVG renderer (rsvg-convert, Debian `librsvg2-bin`) and
//! parsed as XML: it must be well-formed, have a node per function, a red drop node and
//! edge, a legend, and render to a PNG with real content (not a blank page).

use std::path::Path;

use pwru_core::event::{DropReason, Event, Interface, Meta, ProbeKind};
use pwru_core::series::{Grouper, PathAggregator, PathOptions, SeriesOptions};
use pwru_testkit::svg_check;

fn ev(id: u64, t: u64, f: &str) -> Event {
    let mut e = Event::new(ProbeKind::Tracepoint, f);
    e.packet_id = Some(id);
    e.timestamp_ns = t;
    let mut m = Meta::default();
    m.interface = Interface::new(2, Some("eth0"));
    m.len = 84;
    e.meta = Some(m);
    e
}

/// Paths with a branch, a loop back to an earlier function, a drop, and a name that needs
/// XML escaping.
fn paths() -> PathAggregator {
    let mut g = Grouper::new(SeriesOptions::default());
    let mut agg = PathAggregator::new(PathOptions::default());
    for id in 0..200u64 {
        let t = id * 1_000_000;
        g.push(&ev(id, t, "net_dev_queue"));
        g.push(&ev(id, t + 2_000 + id * 10, "netif_receive_skb"));
        match id % 4 {
            0 => {
                let mut d = ev(id, t + 9_000, "kfree_skb");
                d.drop_reason = Some(DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET")));
                g.push(&d);
            }
            1 => {
                g.push(&ev(id, t + 4_000, "ip_rcv<&>"));
                g.push(&ev(id, t + 5_000, "netif_receive_skb"));
                g.push(&ev(id, t + 6_000, "consume_skb"));
            }
            _ => g.push(&ev(id, t + 30_000, "consume_skb")),
        }
    }
    while let Some(s) = g.pop() {
        agg.add(&s);
    }
    agg
}

/// Checks an SVG file: XML, structure, and a real rendering.
fn check_svg(path: &Path, want_functions: &[&str], want_drop: bool) {
    let text = std::fs::read_to_string(path).expect("read svg");
    let c = svg_check::parse(&text).expect("the SVG parses as XML");
    for f in want_functions {
        assert!(
            c.texts.iter().any(|t| t == f),
            "no node labelled {f:?} in {:?}",
            c.texts
        );
    }
    assert!(c.legend, "no legend");
    if want_drop {
        // One in the legend, at least one drop node; at least one drop edge.
        assert!(c.drop_rects >= 2, "no highlighted drop node");
        assert!(c.drop_edges >= 1, "no highlighted drop edge");
        assert!(
            c.texts.iter().any(|t| t.starts_with("drop: ")),
            "{:?}",
            c.texts
        );
    }
    if !svg_check::have_renderer() {
        eprintln!("SKIP rendering: rsvg-convert not found (Debian package librsvg2-bin, tests/setup.sh installs it)");
        return;
    }
    let png = path.with_extension("png");
    let r = svg_check::render(path, &png).expect("rendered");
    println!("{}: {r:?}", png.display());
    assert!(r.width >= 300 && r.height >= 200, "{r:?}");
    assert!(r.ink * 100 > r.pixels, "under 1% of the picture is drawn");
    if want_drop {
        assert!(r.red > 50, "the drop is not drawn in red");
    }
    if std::env::var_os("PWRU_KEEP_PNG").is_none() {
        let _ = std::fs::remove_file(&png);
    }
}

#[test]
fn the_path_picture_is_xml_and_renders_with_content() {
    let agg = paths();
    assert_eq!(agg.paths().len(), 3);
    let svg = pwru_core::format::paths_svg(&agg);
    let dir = std::env::temp_dir().join(format!("pwru-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("paths.svg");
    std::fs::write(&path, &svg).expect("write");
    check_svg(
        &path,
        &[
            "net_dev_queue",
            "netif_receive_skb",
            "consume_skb",
            "kfree_skb",
            "ip_rcv<&>",
        ],
        true,
    );
    let mut text = String::new();
    pwru_core::format::write_paths_text(&agg, &mut text);
    assert!(
        text.starts_with("paths: 200 packets on 3 distinct paths\n"),
        "{text}"
    );
    assert!(
        text.contains("dropped: SKB_DROP_REASON_NO_SOCKET"),
        "{text}"
    );
    // PWRU_KEEP_PNG=1 keeps the files to look at.
    if std::env::var_os("PWRU_KEEP_PNG").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
