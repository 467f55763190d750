//! Text and JSON of a [`BpfMapOp`]: in text, a line naming the packet, the map function and
//! the map, then the key and the value as pwru prints them (`key(N):` and `value(N):`, each
//! followed by a canonical hex dump: offset, 16 bytes in two groups of 8, the printable
//! characters between bars); in JSON, one object with the packet, the function and a
//! `bpfmap` object (bytes as hex strings).

use std::io::Write as _;

use super::json::string;
use crate::event::BpfMapOp;

/// Appends `bytes` as a canonical hex dump, one line per 16 bytes (nothing for none).
pub(crate) fn hex_dump(out: &mut Vec<u8>, bytes: &[u8]) {
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", row * 16);
        for i in 0..16 {
            if i == 8 {
                out.push(b' ');
            }
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.extend_from_slice(b"   "),
            }
        }
        out.extend_from_slice(b"  |");
        for &b in chunk {
            out.push(if (0x20..0x7f).contains(&b) { b } else { b'.' });
        }
        out.extend_from_slice(b"|\n");
    }
}

/// Appends the text of `op` (several lines, each ending with `\n`).
pub(crate) fn text(op: &BpfMapOp, out: &mut Vec<u8>) {
    let _ = writeln!(
        out,
        "{:<18} {:<3} {}({}) map id={} name={}",
        format!("{:#x}", op.skb),
        op.cpu,
        op.function,
        op.op,
        op.map_id,
        op.map_name.as_str()
    );
    let _ = writeln!(out, "key({}):", op.key_size);
    hex_dump(out, &op.key);
    if let Some(v) = &op.value {
        let _ = writeln!(out, "value({}):", op.value_size);
        hex_dump(out, v);
    }
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out.push(b'"');
}

/// Appends `op` as one JSON object and `\n`.
pub(crate) fn json(op: &BpfMapOp, out: &mut Vec<u8>) {
    let _ = write!(
        out,
        "{{\"skb\":\"{:#x}\",\"cpu\":{},\"func\":",
        op.skb, op.cpu
    );
    string(out, op.function.as_bytes());
    let _ = write!(
        out,
        ",\"bpfmap\":{{\"op\":\"{}\",\"id\":{},\"name\":",
        op.op, op.map_id
    );
    string(out, op.map_name.as_str().as_bytes());
    let _ = write!(out, ",\"key_size\":{},\"key\":", op.key_size);
    hex(out, &op.key);
    let _ = write!(out, ",\"value_size\":{}", op.value_size);
    if let Some(v) = &op.value {
        out.extend_from_slice(b",\"value\":");
        hex(out, v);
    }
    out.extend_from_slice(b"}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_is_canonical() {
        let mut out = Vec::new();
        hex_dump(&mut out, b"0123456789abcdefXY");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n\
             00000010  58 59                                             |XY|\n"
        );
    }
}
