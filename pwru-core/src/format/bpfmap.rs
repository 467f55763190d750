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

    fn op(value: Option<Vec<u8>>) -> BpfMapOp {
        BpfMapOp {
            op: crate::event::MapOpType::Update,
            kind: crate::event::ProbeKind::Fentry,
            function: "htab_map_update_elem".into(),
            address: 0xffff_ffff_8100_0000,
            skb: 0xffff_8880_0435_6700,
            cpu: 1,
            pid: 7,
            timestamp_ns: 5,
            wall_time: None,
            map_id: 20,
            map_name: crate::event::ShortName::new("pwru_test_lengt"),
            key_size: 4,
            value_size: 8,
            key: vec![0x42, 0, 0, 0],
            value,
        }
    }

    #[test]
    fn text_names_the_packet_map_and_dumps_key_and_value() {
        let mut out = Vec::new();
        text(&op(Some(vec![1, 0, 0, 0, 0, 0, 0, 0])), &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "0xffff888004356700 1   htab_map_update_elem(update) map id=20 name=pwru_test_lengt\n\
             key(4):\n\
             00000000  42 00 00 00                                       |B...|\n\
             value(8):\n\
             00000000  01 00 00 00 00 00 00 00                           |........|\n"
        );
    }

    #[test]
    fn json_has_the_map_and_hex_bytes_and_no_value_when_none() {
        let mut out = Vec::new();
        json(&op(None), &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"skb\":\"0xffff888004356700\",\"cpu\":1,\"func\":\"htab_map_update_elem\",\
             \"bpfmap\":{\"op\":\"update\",\"id\":20,\"name\":\"pwru_test_lengt\",\
             \"key_size\":4,\"key\":\"42000000\",\"value_size\":8}}\n"
        );
    }

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
