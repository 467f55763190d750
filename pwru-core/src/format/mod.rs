//! pwru's output formats as library functions: the text header, the text line, and JSON lines
//! with pwru's keys, so any tool can print like pwru; [`pcapng`], capture files of the events'
//! packet bytes for Wireshark; and the forms of the [`series`](crate::series) module: a
//! packet's series (text block, JSON line), the path summary (text) and the path graph (SVG).
//!
//! A [`Formatter`] keeps the little state pwru's output has (column widths that grow with the
//! longest tuple and function seen, the last timestamp per skb for relative timestamps) and
//! writes into a caller-provided `Vec<u8>` that can be reused across events, so formatting does
//! not allocate per event.
//!
//! ```
//! use pwru_core::event::{Event, ProbeKind};
//! use pwru_core::format::{FormatOptions, Formatter};
//! let mut f = Formatter::new(FormatOptions::default());
//! let mut out = Vec::new();
//! f.write_header(&mut out);
//! let mut ev = Event::new(ProbeKind::Kprobe, "ip_rcv");
//! ev.skb = 0xffff888012345600;
//! f.write_text(&ev, &mut out);
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.lines().nth(1).unwrap().starts_with("0xffff888012345600 0   <empty>:0"));
//! ```
//!
//! Differences from pwru, on purpose: the PROCESS column is the kernel's task name (`comm`) and
//! process id captured in the kernel, where pwru looks up the executable path in /proc at print
//! time (which fails for processes that have exited); absolute timestamps are the event's own
//! time converted to wall-clock time, where pwru prints the time of printing.

mod bpfmap;
mod duration;
mod json;
mod paths_svg;
mod paths_text;
pub mod pcapng;
mod series_json;
mod series_text;
mod text;

pub use paths_svg::paths_svg;
pub use paths_text::write_paths_text;
pub use series_json::write_series_json;
pub use series_text::write_series_text;

use std::collections::HashMap;
use std::fmt;

use crate::event::{Event, Tuple};

/// Most skbs whose last-seen time a [`Formatter`] remembers for relative timestamps.
pub const LAST_SEEN_MAX: usize = 1 << 16;

/// A remembered skb not seen for this long (1 s) is forgotten when the map is full.
pub const LAST_SEEN_HORIZON_NS: u64 = 1_000_000_000;

/// How timestamps are shown (pwru's `--timestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TimestampMode {
    /// No timestamp column (pwru's default).
    #[default]
    None,
    /// The kernel timestamp in nanoseconds.
    Current,
    /// Nanoseconds since the previous event of the same skb (0 for its first).
    Relative,
    /// Wall-clock time `2006-01-02T15:04:05.000` (local time) as an extra first column, plus
    /// the kernel timestamp column.
    Absolute,
}

impl std::str::FromStr for TimestampMode {
    type Err = String;

    /// Parses pwru's spellings: `none`, `current`, `relative`, `absolute`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(TimestampMode::None),
            "current" => Ok(TimestampMode::Current),
            "relative" => Ok(TimestampMode::Relative),
            "absolute" => Ok(TimestampMode::Absolute),
            _ => Err(format!(
                "invalid timestamp mode {s:?}; use none, current, relative or absolute"
            )),
        }
    }
}

/// Which columns to print (pwru's `--output-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FormatOptions {
    /// NETNS MARK IFACE PROTO MTU LEN (pwru `--output-meta`, on by default).
    pub meta: bool,
    /// TUPLE (pwru `--output-tuple`, on by default).
    pub tuple: bool,
    /// TCP flags inside the tuple (`--output-tcp-flags`).
    pub tcp_flags: bool,
    /// CALLER (`--output-caller`).
    pub caller: bool,
    /// TUNNEL inner tuple (`--output-tunnel`).
    pub tunnel: bool,
    /// `__sk_buff->cb[]` (`--output-skb-cb`, or on when tracing tc programs).
    pub cb: bool,
    /// Stack frames on following lines (`--output-stack`).
    pub stack: bool,
    /// skb dump text on following lines (`--output-skb`).
    pub skb_dump: bool,
    /// skb_shared_info dump text (`--output-skb-shared-info`).
    pub shinfo_dump: bool,
    /// NETNS NAME column of this width (`--output-netns-names`, `--netns-names-max-length`).
    pub netns_names: Option<usize>,
    /// Timestamp mode (`--timestamp`).
    pub timestamp: TimestampMode,
    /// PACKET_ID column after SKB, and the JSON keys `packet_id` and `parent_packet_id`
    /// (`--output-packet-id`; not in pwru, off by default). The column shows the id, and for
    /// a clone or copy `ID<-PARENT`; `-` when the event has no id.
    pub packet_id: bool,
}

impl Default for FormatOptions {
    /// pwru's defaults: meta and tuple on, everything else off, no timestamp.
    fn default() -> Self {
        FormatOptions {
            meta: true,
            tuple: true,
            tcp_flags: false,
            caller: false,
            tunnel: false,
            cb: false,
            stack: false,
            skb_dump: false,
            shinfo_dump: false,
            netns_names: None,
            timestamp: TimestampMode::None,
            packet_id: false,
        }
    }
}

/// Formats events like pwru. One per output stream (it keeps column widths and per-skb times).
#[derive(Debug, Clone)]
pub struct Formatter {
    opts: FormatOptions,
    last_seen: HashMap<u64, u64>,
    last_seen_forgotten: u64,
    max_tuple: usize,
    max_func: usize,
    netns_names: HashMap<u64, String>,
    clock: text::WallText,
    scratch: Vec<u8>,
}

impl Formatter {
    /// A formatter with `opts`.
    pub fn new(opts: FormatOptions) -> Formatter {
        Formatter {
            opts,
            last_seen: HashMap::new(),
            last_seen_forgotten: 0,
            max_tuple: 0,
            max_func: 0,
            netns_names: HashMap::new(),
            clock: text::WallText::new(),
            scratch: Vec::with_capacity(128),
        }
    }

    /// The options.
    pub fn options(&self) -> &FormatOptions {
        &self.opts
    }

    /// Names for the NETNS NAME column (keyed by namespace inode, as `ip netns` names them).
    pub fn set_netns_names(&mut self, names: HashMap<u64, String>) {
        self.netns_names = names;
    }

    /// The timestamp to show for `ev` in `Current`/`Relative` modes; in `Relative` mode also
    /// records it as the skb's last-seen time (the only mode that reads it).
    fn timestamp(&mut self, ev: &Event) -> u64 {
        if self.opts.timestamp != TimestampMode::Relative {
            return ev.timestamp_ns;
        }
        if self.last_seen.len() >= LAST_SEEN_MAX && !self.last_seen.contains_key(&ev.skb) {
            self.prune_last_seen(ev.timestamp_ns);
        }
        let prev = self.last_seen.insert(ev.skb, ev.timestamp_ns);
        prev.map_or(0, |p| ev.timestamp_ns.wrapping_sub(p))
    }

    /// Keeps the last-seen map bounded: skb addresses are recycled by the kernel's slab, so an
    /// skb not seen for [`LAST_SEEN_HORIZON_NS`] is forgotten (its next event shows a relative
    /// time of 0, as a new skb). If that frees too little (a flood of distinct skbs), all go,
    /// so that the next prune is at least `LAST_SEEN_MAX / 2` insertions away.
    fn prune_last_seen(&mut self, now: u64) {
        let before = self.last_seen.len();
        self.last_seen
            .retain(|_, t| now.saturating_sub(*t) < LAST_SEEN_HORIZON_NS);
        if self.last_seen.len() > LAST_SEEN_MAX / 2 {
            self.last_seen.clear();
        }
        self.last_seen_forgotten += (before - self.last_seen.len()) as u64;
    }

    /// How many skbs were forgotten to keep the last-seen map under [`LAST_SEEN_MAX`] (each
    /// one's next event, if any, shows a relative time of 0).
    pub fn last_seen_forgotten(&self) -> u64 {
        self.last_seen_forgotten
    }

    /// Number of skbs whose last-seen time is remembered (for `--timestamp relative`).
    pub fn last_seen_len(&self) -> usize {
        self.last_seen.len()
    }

    /// Forgets the per-skb last-seen times.
    pub fn clear_last_seen(&mut self) {
        self.last_seen.clear();
    }

    /// Appends pwru's header line (with `\n`).
    pub fn write_header(&self, out: &mut Vec<u8>) {
        text::header(&self.opts, out);
    }

    /// Appends `ev` as pwru's text line (with `\n`, plus stack/dump lines when enabled).
    pub fn write_text(&mut self, ev: &Event, out: &mut Vec<u8>) {
        text::line(self, ev, out);
    }

    /// Appends `ev` as one JSON object with pwru's keys, followed by `\n`.
    pub fn write_json(&mut self, ev: &Event, out: &mut Vec<u8>) {
        json::line(self, ev, out);
    }

    /// Appends a map operation ([`crate::Item::BpfMap`]) as text: a line with the packet,
    /// CPU, map function, operation and map (`0x... 1   htab_map_update_elem(update) map
    /// id=12 name=counts`), then `key(N):` and, with a value, `value(N):`, each followed by a
    /// hex dump as pwru prints them (offset, 16 bytes, printable text between bars).
    pub fn write_bpfmap_text(&self, op: &crate::event::BpfMapOp, out: &mut Vec<u8>) {
        bpfmap::text(op, out);
    }

    /// Appends a map operation as one JSON object and `\n`: `skb`, `cpu`, `func` and
    /// `bpfmap` (`op`, `id`, `name`, `key_size`, `key`, `value_size`, `value` when there is
    /// one; bytes as lowercase hex strings).
    pub fn write_bpfmap_json(&self, op: &crate::event::BpfMapOp, out: &mut Vec<u8>) {
        bpfmap::json(op, out);
    }
}

/// The function column: name, `(DROP_REASON)` when the event has one, `(tc)`/`(xdp)` for
/// traced BPF programs.
pub(crate) fn write_func(out: &mut Vec<u8>, ev: &Event) {
    use crate::event::ProbeKind;
    out.extend_from_slice(ev.function.as_bytes());
    if let Some(r) = &ev.drop_reason {
        match &r.name {
            Some(n) => {
                out.push(b'(');
                out.extend_from_slice(n.as_bytes());
                out.push(b')');
            }
            None => {
                use std::io::Write;
                let _ = write!(out, " ({})", r.code);
            }
        }
    }
    match ev.kind {
        ProbeKind::Tc => out.extend_from_slice(b"(tc)"),
        ProbeKind::Xdp | ProbeKind::XdpExit => out.extend_from_slice(b"(xdp)"),
        _ => {}
    }
}

// The text spelling of a tuple lives here with the rest of pwru's text, so that events know
// nothing of formatting.
impl fmt::Display for Tuple {
    /// pwru's spelling without TCP flags: `10.0.0.1:40000->10.0.0.2:9(udp)`, IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tuple(f, self, false)
    }
}

/// pwru's tuple spelling: `saddr:sport->daddr:dport(proto[:FLAGS])`.
pub(crate) fn write_tuple(w: &mut impl fmt::Write, t: &Tuple, tcp_flags: bool) -> fmt::Result {
    write_addr(w, t.src)?;
    write!(w, ":{}->", t.sport)?;
    write_addr(w, t.dst)?;
    write!(w, ":{}({}", t.dport, t.l4_name())?;
    if tcp_flags && t.l4_proto == 6 && !t.tcp_flags.is_empty() {
        write!(w, ":{}", t.tcp_flags)?;
    }
    w.write_char(')')
}

fn write_addr(w: &mut impl fmt::Write, a: Option<std::net::IpAddr>) -> fmt::Result {
    match a {
        Some(std::net::IpAddr::V4(v4)) => write!(w, "{v4}"),
        Some(std::net::IpAddr::V6(v6)) => write!(w, "[{v6}]"),
        None => Ok(()),
    }
}

/// Adapts a `Vec<u8>` to `fmt::Write`.
pub(crate) struct VecWriter<'a>(pub &'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
