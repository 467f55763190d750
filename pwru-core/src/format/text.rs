//! pwru's text header and line.

use std::fmt::Write as _;
use std::io::Write as _;

use super::{write_func, write_tuple, FormatOptions, Formatter, TimestampMode, VecWriter};
use crate::event::Event;

/// Width of the PACKET_ID column: an id of a CPU below 32 (wider ones, and clones' `ID<-PARENT`,
/// push the rest of their line right).
const PACKET_ID_WIDTH: usize = 16;

/// Width of pwru's PROCESS and IFACE columns; longer values keep their end, prefixed by `~`.
const NAME_WIDTH: usize = 16;

/// Display width as Go's fmt counts it (runes).
fn width(s: &[u8]) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        String::from_utf8_lossy(s).chars().count()
    }
}

/// Appends `s` left-aligned in `w` columns.
fn pad_right(out: &mut Vec<u8>, s: &[u8], w: usize) {
    out.extend_from_slice(s);
    let n = width(s);
    if n < w {
        out.resize(out.len() + (w - n), b' ');
    }
}

/// Appends `s` centred in `w` columns (extra space on the right), as pwru's centerAlignString.
fn center(out: &mut Vec<u8>, s: &[u8], w: usize) {
    let n = width(s);
    if n >= w {
        out.extend_from_slice(s);
        return;
    }
    let left = (w - n) / 2;
    out.resize(out.len() + left, b' ');
    out.extend_from_slice(s);
    out.resize(out.len() + (w - n - left), b' ');
}

/// Keeps the last 16 bytes of an over-long name, marking the cut with `~` (pwru's rule).
fn shorten(s: &mut Vec<u8>) {
    if s.len() > NAME_WIDTH {
        let cut = s.len() - NAME_WIDTH;
        s.drain(..cut);
        s[0] = b'~';
    }
}

pub(super) fn header(o: &FormatOptions, out: &mut Vec<u8>) {
    if o.timestamp == TimestampMode::Absolute {
        pad_right(out, b"TIME", 23);
        out.push(b' ');
    }
    pad_right(out, b"SKB", 18);
    out.push(b' ');
    if o.packet_id {
        pad_right(out, b"PACKET_ID", PACKET_ID_WIDTH);
        out.push(b' ');
    }
    pad_right(out, b"CPU", 3);
    out.push(b' ');
    pad_right(out, b"PROCESS", 16);
    if o.timestamp != TimestampMode::None {
        out.push(b' ');
        pad_right(out, b"TIMESTAMP", 16);
    }
    if o.meta {
        out.push(b' ');
        pad_right(out, b"NETNS", 10);
        out.push(b' ');
        pad_right(out, b"MARK/x", 8);
        out.push(b' ');
        center(out, b"IFACE", 16);
        out.push(b' ');
        pad_right(out, b"PROTO", 6);
        out.push(b' ');
        pad_right(out, b"MTU", 5);
        out.push(b' ');
        pad_right(out, b"LEN", 5);
        if o.cb {
            out.push(b' ');
            pad_right(out, b"__sk_buff->cb[]", 56);
        }
    }
    if let Some(w) = o.netns_names {
        out.push(b' ');
        center(out, b"NETNS NAME", w);
    }
    if o.tuple {
        out.extend_from_slice(b" TUPLE");
    }
    out.extend_from_slice(b" FUNC");
    if o.caller {
        out.extend_from_slice(b" CALLER");
    }
    if o.tunnel {
        out.extend_from_slice(b" TUNNEL");
    }
    out.push(b'\n');
}

/// Appends a formatted value padded to `w`, using `scratch` to measure it.
fn pad_fmt(out: &mut Vec<u8>, scratch: &mut Vec<u8>, w: usize, args: std::fmt::Arguments<'_>) {
    scratch.clear();
    let _ = scratch.write_fmt(args);
    pad_right(out, scratch, w);
}

pub(super) fn line(f: &mut Formatter, ev: &Event, out: &mut Vec<u8>) {
    // Reused across events: no allocation per line once warmed up.
    let mut scratch = std::mem::take(&mut f.scratch);
    let o = &f.opts;
    if o.timestamp == TimestampMode::Absolute {
        f.clock.write(out, ev);
        out.push(b' ');
    }
    pad_fmt(out, &mut scratch, 18, format_args!("{:#x}", ev.skb));
    out.push(b' ');
    if o.packet_id {
        scratch.clear();
        match (ev.packet_id, ev.parent_packet_id) {
            (Some(id), Some(parent)) => {
                let _ = write!(scratch, "{id}<-{parent}");
            }
            (Some(id), None) => {
                let _ = write!(scratch, "{id}");
            }
            (None, _) => scratch.push(b'-'),
        }
        pad_right(out, &scratch, PACKET_ID_WIDTH);
        out.push(b' ');
    }
    pad_fmt(out, &mut scratch, 3, format_args!("{}", ev.cpu));
    out.push(b' ');
    process_name(ev, &mut scratch);
    pad_right(out, &scratch, 16);
    if f.opts.timestamp != TimestampMode::None {
        let ts = f.timestamp(ev);
        out.push(b' ');
        pad_fmt(out, &mut scratch, 16, format_args!("{ts}"));
    }
    let o = &f.opts;
    if o.meta {
        let empty = crate::event::Meta::default();
        let m = ev.meta.as_ref().unwrap_or(&empty);
        out.push(b' ');
        pad_fmt(out, &mut scratch, 10, format_args!("{}", m.netns));
        out.push(b' ');
        pad_fmt(out, &mut scratch, 8, format_args!("{:x}", m.mark));
        out.push(b' ');
        scratch.clear();
        let _ = write!(scratch, "{}", m.interface);
        shorten(&mut scratch);
        center(out, &scratch, 16);
        // Go's %#04x zero-pads the digits to 4 and then adds 0x: 0x0800.
        let _ = write!(out, " 0x{:04x} ", m.protocol);
        pad_fmt(out, &mut scratch, 5, format_args!("{}", m.mtu));
        out.push(b' ');
        pad_fmt(out, &mut scratch, 5, format_args!("{}", m.len));
        if o.cb {
            let cb = ev.cb.unwrap_or_default();
            out.extend_from_slice(b" [");
            for (i, v) in cb.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = write!(out, "0x{v:08X}");
            }
            out.push(b']');
        }
    }
    if let Some(w) = o.netns_names {
        out.push(b' ');
        let netns = ev.meta.as_ref().map_or(0, |m| u64::from(m.netns));
        match f.netns_names.get(&netns) {
            Some(name) => {
                let cut = name.len().min(w);
                let mut end = cut;
                while !name.is_char_boundary(end) {
                    end -= 1;
                }
                center(out, &name.as_bytes()[..end], w)
            }
            None => out.resize(out.len() + w, b' '),
        }
    }
    if o.tuple {
        scratch.clear();
        let t = ev.tuple.unwrap_or(EMPTY_TUPLE);
        let _ = write_tuple(&mut VecWriter(&mut scratch), &t, o.tcp_flags);
        f.max_tuple = f.max_tuple.max(width(&scratch));
        out.push(b' ');
        pad_right(out, &scratch, f.max_tuple);
    }
    let o = &f.opts;
    if o.caller {
        scratch.clear();
        write_func(&mut scratch, ev);
        f.max_func = f.max_func.max(width(&scratch));
        out.push(b' ');
        pad_right(out, &scratch, f.max_func);
        out.push(b' ');
        if let Some(c) = &ev.caller {
            out.extend_from_slice(c.name.as_bytes());
        }
    } else {
        out.push(b' ');
        write_func(out, ev);
    }
    // After the function, as pwru: ` skb->mark=0x1` per metadata expression.
    for m in &ev.metadata {
        let _ = write!(out, " {}={:#x}", m.name, m.value);
    }
    let o = &f.opts;
    if o.stack {
        for s in &ev.stack {
            out.push(b'\n');
            out.extend_from_slice(s.name.as_bytes());
        }
    }
    if o.skb_dump {
        if let Some(d) = &ev.skb_dump {
            out.push(b'\n');
            out.extend_from_slice(d.as_bytes());
            if ev.skb_dump_cut {
                write_cut(out, "skb", d);
            }
        }
    }
    if o.shinfo_dump {
        if let Some(d) = &ev.shinfo_dump {
            out.push(b'\n');
            out.extend_from_slice(d.as_bytes());
            if ev.shinfo_dump_cut {
                write_cut(out, "skb_shared_info", d);
            }
        }
    }
    if o.tunnel {
        out.push(b' ');
        let t = ev.tunnel.unwrap_or(EMPTY_TUPLE);
        let _ = write_tuple(&mut VecWriter(out), &t, o.tcp_flags);
    }
    out.push(b'\n');
    f.scratch = scratch;
}

pub(super) const EMPTY_TUPLE: crate::event::Tuple = crate::event::Tuple {
    src: None,
    dst: None,
    sport: 0,
    dport: 0,
    l4_proto: 0,
    tcp_flags: crate::event::TcpFlags(0),
};

/// `comm:tgid`, `<empty>:tgid` without a name, shortened like pwru.
pub(super) fn process_name(ev: &Event, out: &mut Vec<u8>) {
    out.clear();
    let comm = ev.process.comm.as_str();
    if comm.is_empty() {
        out.extend_from_slice(b"<empty>");
    } else {
        out.extend_from_slice(comm.as_bytes());
    }
    let _ = write!(out, ":{}", ev.process.tgid);
    shorten(out);
}

/// Writes an event's wall-clock time as local time text, caching the formatted second so
/// that most events only append milliseconds. Uses the event's own
/// [`wall_time`](Event::wall_time) (the session's clock, measured at attach); events decoded
/// without one are converted with a clock measured when the formatter was made.
#[derive(Debug, Clone)]
pub(super) struct WallText {
    /// For events without `wall_time`; `None` if the clocks could not be read.
    fallback: Option<crate::event::WallClock>,
    cached_sec: i64,
    cached: [u8; 19],
}

impl WallText {
    pub(super) fn new() -> WallText {
        WallText {
            fallback: crate::event::WallClock::measure().ok(),
            cached_sec: i64::MIN,
            cached: [b'0'; 19],
        }
    }

    pub(super) fn write(&mut self, out: &mut Vec<u8>, ev: &Event) {
        let wall = ev
            .wall_time
            .or_else(|| self.fallback.map(|c| c.to_system_time(ev.timestamp_ns)))
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        let sec = i64::try_from(wall.as_secs()).unwrap_or(0);
        let ms = wall.subsec_millis();
        if sec != self.cached_sec {
            self.cached_sec = sec;
            let mut s = String::with_capacity(19);
            let _ = local_time(&mut s, sec);
            let b = s.as_bytes();
            let n = b.len().min(19);
            self.cached[..n].copy_from_slice(&b[..n]);
        }
        out.extend_from_slice(&self.cached);
        let _ = write!(out, ".{ms:03}");
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in local time.
fn local_time(out: &mut String, sec: i64) -> std::fmt::Result {
    // A time the C library cannot represent prints as the zero `struct tm` would.
    let tm = crate::sys::time::local_time(sec).unwrap_or(crate::sys::time::LocalTime {
        year: 1900,
        month: 1,
        ..Default::default()
    });
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.year, tm.month, tm.day, tm.hour, tm.minute, tm.second
    )
}

/// The line after a dump the kernel cut at its bound (the bound counts the NUL).
fn write_cut(out: &mut Vec<u8>, what: &str, dump: &str) {
    let bound = dump.len() + 1;
    out.extend_from_slice(format!("\n... ({what} dump cut at {bound} bytes)").as_bytes());
}
