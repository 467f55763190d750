//! Checks a path picture (`pwru --output-paths-svg`, `pwru_core::format::paths_svg`) the way a
//! person would see it: parsed as XML, and rendered by a real SVG renderer (`rsvg-convert`,
//! Debian package `librsvg2-bin`) into a PNG whose pixels are counted.

use std::io;
use std::path::Path;
use std::process::Command;

/// What the XML holds.
#[derive(Debug, Default)]
pub struct SvgContent {
    /// Text of every `<text>` element (tspans included).
    pub texts: Vec<String>,
    /// `<rect>`s outlined in the drop colour (drop nodes and the legend's sample).
    pub drop_rects: usize,
    /// `<path>`s stroked in the drop colour (drop edges).
    pub drop_edges: usize,
    /// Whether an element has `id="legend"`.
    pub legend: bool,
}

/// The drop colour of the picture.
pub const DROP_COLOUR: &str = "#c62828";

/// Parses `svg` (fails when it is not well-formed XML or its root is not `<svg>`).
pub fn parse(svg: &str) -> io::Result<SvgContent> {
    let doc = roxmltree::Document::parse(svg)
        .map_err(|e| io::Error::other(format!("not well-formed XML: {e}")))?;
    if doc.root_element().tag_name().name() != "svg" {
        return Err(io::Error::other("the root element is not <svg>"));
    }
    let mut c = SvgContent::default();
    for n in doc.descendants() {
        if n.has_tag_name("text") {
            c.texts.push(
                n.children()
                    .filter(|k| k.is_text())
                    .filter_map(|k| k.text())
                    .collect::<String>(),
            );
        }
        if n.has_tag_name("rect") && n.attribute("stroke") == Some(DROP_COLOUR) {
            c.drop_rects += 1;
        }
        if n.has_tag_name("path") && n.attribute("stroke") == Some(DROP_COLOUR) {
            c.drop_edges += 1;
        }
        if n.attribute("id") == Some("legend") {
            c.legend = true;
        }
    }
    Ok(c)
}

/// Pixels of a rendering.
#[derive(Debug)]
pub struct Rendering {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixels in all.
    pub pixels: usize,
    /// Pixels that are not the white background.
    pub ink: usize,
    /// Clearly red pixels (the drop colour).
    pub red: usize,
}

/// Whether `rsvg-convert` can be run.
pub fn have_renderer() -> bool {
    Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Renders `svg_file` with rsvg-convert into `png_file` and counts its pixels.
pub fn render(svg_file: &Path, png_file: &Path) -> io::Result<Rendering> {
    let out = Command::new("rsvg-convert")
        .arg("-o")
        .arg(png_file)
        .arg(svg_file)
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run rsvg-convert ({e}): install librsvg2-bin"),
            )
        })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "rsvg-convert failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let decoder = png::Decoder::new(std::fs::File::open(png_file)?);
    let mut reader = decoder.read_info().map_err(io::Error::other)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(io::Error::other)?;
    let channels = info.color_type.samples();
    if channels < 3 {
        return Err(io::Error::other(format!(
            "unexpected PNG colour type {:?}",
            info.color_type
        )));
    }
    let mut r = Rendering {
        width: info.width,
        height: info.height,
        pixels: 0,
        ink: 0,
        red: 0,
    };
    for px in buf[..info.buffer_size()].chunks(channels) {
        r.pixels += 1;
        let (red, green, blue) = (px[0], px[1], px[2]);
        if (red, green, blue) != (255, 255, 255) {
            r.ink += 1;
        }
        if red > 150 && green < 90 && blue < 90 {
            r.red += 1;
        }
    }
    Ok(r)
}
