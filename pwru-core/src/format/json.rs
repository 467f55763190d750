//! pwru's JSON lines: the keys and omission rules of pwru's `jsonPrinter` (Go `omitempty`:
//! zero numbers and empty strings are left out; `cb` is a fixed-size array and always present
//! when meta output is on).

use std::io::Write as _;

use super::{text, write_func, Formatter, TimestampMode};
use crate::event::{Event, Tuple};

/// Appends `s` as a JSON string, escaped as Go's encoder does with HTML escaping off.
pub(crate) fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            // U+2028 / U+2029 (E2 80 A8/A9) are escaped by Go for JavaScript safety.
            0xe2 if s.get(i + 1) == Some(&0x80) && matches!(s.get(i + 2), Some(0xa8 | 0xa9)) => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() && b == 0xe2 {
            let _ = write!(
                out,
                "\\u{:04x}",
                if s[i + 2] == 0xa8 { 0x2028 } else { 0x2029 }
            );
            start = i + 3;
            continue;
        }
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(s.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// Writes `,"key":` (or `"key":` for the first field).
fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn num(out: &mut Vec<u8>, first: &mut bool, k: &str, v: u64) {
    if v != 0 {
        key(out, first, k);
        let _ = write!(out, "{v}");
    }
}

fn text_field(out: &mut Vec<u8>, first: &mut bool, k: &str, v: &[u8]) {
    if !v.is_empty() {
        key(out, first, k);
        string(out, v);
    }
}

fn tuple(out: &mut Vec<u8>, scratch: &mut Vec<u8>, t: &Tuple, tcp_flags: bool) {
    out.push(b'{');
    let mut first = true;
    for (k, a) in [("saddr", t.src), ("daddr", t.dst)] {
        scratch.clear();
        match a {
            Some(std::net::IpAddr::V4(v4)) => {
                let _ = write!(scratch, "{v4}");
            }
            Some(std::net::IpAddr::V6(v6)) => {
                let _ = write!(scratch, "[{v6}]");
            }
            None => {}
        }
        text_field(out, &mut first, k, scratch);
    }
    num(out, &mut first, "sport", u64::from(t.sport));
    num(out, &mut first, "dport", u64::from(t.dport));
    num(out, &mut first, "proto", u64::from(t.l4_proto));
    if tcp_flags {
        scratch.clear();
        let _ = write!(scratch, "{}", t.tcp_flags);
        text_field(out, &mut first, "flags", scratch);
    }
    out.push(b'}');
}

pub(super) fn line(f: &mut Formatter, ev: &Event, out: &mut Vec<u8>) {
    let mut scratch = std::mem::take(&mut f.scratch);
    let mut first = true;
    out.push(b'{');
    scratch.clear();
    let _ = write!(scratch, "{:#x}", ev.skb);
    text_field(out, &mut first, "skb", &scratch);
    if f.opts.packet_id {
        num(out, &mut first, "packet_id", ev.packet_id.unwrap_or(0));
        num(
            out,
            &mut first,
            "parent_packet_id",
            ev.parent_packet_id.unwrap_or(0),
        );
    }
    if f.opts.shinfo_dump {
        if let Some(d) = &ev.shinfo_dump {
            scratch.clear();
            scratch.push(b'\n');
            scratch.extend_from_slice(d.as_bytes());
            text_field(out, &mut first, "skb_shared_info", &scratch);
        }
    }
    num(out, &mut first, "cpu", u64::from(ev.cpu));
    text::process_name(ev, &mut scratch);
    text_field(out, &mut first, "process", &scratch);
    scratch.clear();
    write_func(&mut scratch, ev);
    text_field(out, &mut first, "func", &scratch);
    if f.opts.caller {
        if let Some(c) = &ev.caller {
            text_field(out, &mut first, "caller_func", c.name.as_bytes());
        }
    }
    match f.opts.timestamp {
        TimestampMode::None => {}
        TimestampMode::Absolute => {
            key(out, &mut first, "time");
            out.push(b'"');
            f.clock.write(out, ev);
            out.push(b'"');
        }
        TimestampMode::Current | TimestampMode::Relative => {
            let ts = f.timestamp(ev);
            // A number in an interface field: present even when 0.
            key(out, &mut first, "time");
            let _ = write!(out, "{ts}");
        }
    }
    if f.opts.meta {
        let empty = crate::event::Meta::default();
        let m = ev.meta.as_ref().unwrap_or(&empty);
        num(out, &mut first, "netns", u64::from(m.netns));
        if f.opts.netns_names.is_some() {
            if let Some(n) = f.netns_names.get(&u64::from(m.netns)) {
                text_field(out, &mut first, "netns_name", n.as_bytes());
            }
        }
        num(out, &mut first, "mark", u64::from(m.mark));
        scratch.clear();
        let _ = write!(scratch, "{}", m.interface);
        text_field(out, &mut first, "iface", &scratch);
        num(out, &mut first, "proto", u64::from(m.protocol));
        num(out, &mut first, "mtu", u64::from(m.mtu));
        num(out, &mut first, "len", u64::from(m.len));
        // pwru fills cb only with cb output on, but the array key is always written.
        let cb = if f.opts.cb {
            ev.cb.unwrap_or_default()
        } else {
            [0; 5]
        };
        key(out, &mut first, "cb");
        let _ = write!(out, "[{},{},{},{},{}]", cb[0], cb[1], cb[2], cb[3], cb[4]);
    } else {
        key(out, &mut first, "cb");
        out.extend_from_slice(b"[0,0,0,0,0]");
    }
    if f.opts.tuple {
        key(out, &mut first, "tuple");
        let t = ev.tuple.unwrap_or(text::EMPTY_TUPLE);
        tuple(out, &mut scratch, &t, f.opts.tcp_flags);
    }
    if f.opts.tunnel {
        key(out, &mut first, "tunnel_tuple");
        let t = ev.tunnel.unwrap_or(text::EMPTY_TUPLE);
        tuple(out, &mut scratch, &t, f.opts.tcp_flags);
    }
    if !ev.metadata.is_empty() {
        // [{"name":"skb->mark","value":1},...]: values as numbers, in the order given.
        key(out, &mut first, "metadata");
        out.push(b'[');
        for (i, m) in ev.metadata.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            string(out, m.name.as_bytes());
            let _ = write!(out, ",\"value\":{}}}", m.value);
        }
        out.push(b']');
    }
    if f.opts.stack && !ev.stack.is_empty() {
        scratch.clear();
        for s in &ev.stack {
            scratch.push(b'\n');
            scratch.extend_from_slice(s.name.as_bytes());
        }
        text_field(out, &mut first, "stack", &scratch);
    }
    if f.opts.skb_dump {
        // pwru puts the skb dump under "skb_metadata" (with a leading newline).
        if let Some(d) = &ev.skb_dump {
            scratch.clear();
            scratch.push(b'\n');
            scratch.extend_from_slice(d.as_bytes());
            text_field(out, &mut first, "skb_metadata", &scratch);
        }
    }
    out.extend_from_slice(b"}\n");
    f.scratch = scratch;
}
