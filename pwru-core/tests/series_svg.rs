//! The path picture, rendered by a real SVG renderer (rsvg-convert, Debian `librsvg2-bin`) and
//! parsed as XML: it must be well-formed, have a node per function, a red drop node and
//! edge, a legend, and render to a PNG with real content (not a blank page).

use std::path::Path;
use std::process::Command;

use pwru_core::event::{DropReason, Event, Interface, Meta, ProbeKind};
use pwru_core::series::{Grouper, PathAggregator, PathOptions, SeriesOptions};

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

fn rsvg_convert() -> Option<&'static str> {
    let ok = Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("rsvg-convert")
}

/// Checks an SVG file: XML, structure, and a real rendering. Shared with the CLI test.
pub fn check_svg(path: &Path, want_functions: &[&str], want_drop: bool) {
    let text = std::fs::read_to_string(path).expect("read svg");
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect();
    for f in want_functions {
        assert!(
            texts.iter().any(|t| t == f),
            "no node labelled {f:?} in {texts:?}"
        );
    }
    assert!(
        doc.descendants()
            .any(|n| n.attribute("id") == Some("legend")),
        "no legend"
    );
    let red_rects = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("stroke") == Some("#c62828"))
        .count();
    let red_paths = doc
        .descendants()
        .filter(|n| n.has_tag_name("path") && n.attribute("stroke") == Some("#c62828"))
        .count();
    if want_drop {
        // One in the legend, at least one drop node; at least one drop edge.
        assert!(red_rects >= 2, "no highlighted drop node");
        assert!(red_paths >= 1, "no highlighted drop edge");
        assert!(texts.iter().any(|t| t.starts_with("drop: ")), "{texts:?}");
    }

    let Some(rsvg) = rsvg_convert() else {
        eprintln!("SKIP rendering: rsvg-convert not found (Debian package librsvg2-bin, tests/setup.sh installs it)");
        return;
    };
    let png = path.with_extension("png");
    let out = Command::new(rsvg)
        .arg("-o")
        .arg(&png)
        .arg(path)
        .output()
        .expect("run rsvg-convert");
    assert!(
        out.status.success(),
        "rsvg-convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png).expect("png"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    assert!(
        info.width >= 300 && info.height >= 200,
        "{}x{}",
        info.width,
        info.height
    );
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = &buf[..info.buffer_size()];
    let (mut ink, mut red, mut total) = (0usize, 0usize, 0usize);
    for px in pixels.chunks(channels) {
        total += 1;
        let (r, g, b) = (px[0], px[1], px[2]);
        if (r, g, b) != (255, 255, 255) {
            ink += 1;
        }
        if r > 150 && g < 90 && b < 90 {
            red += 1;
        }
    }
    println!(
        "{}: {}x{}, {ink} of {total} pixels not background, {red} red",
        png.display(),
        info.width,
        info.height
    );
    assert!(ink * 100 > total, "under 1% of the picture is drawn");
    if want_drop {
        assert!(red > 50, "the drop is not drawn in red");
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
