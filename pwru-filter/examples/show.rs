//! Prints what libpcap and the translator make of an expression:
//! `cargo run -p pwru-filter --example show -- 'tcp port 80' [l2|l3] [direct|probe]`.
use pwru_filter::{compile, disassemble, translate, Layer, Mode};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let expr = args.first().cloned().unwrap_or_default();
    let layer = if args.get(1).map(String::as_str) == Some("l3") {
        Layer::L3
    } else {
        Layer::L2
    };
    let mode = if args.get(2).map(String::as_str) == Some("probe") {
        Mode::ProbeRead
    } else {
        Mode::Direct
    };
    match compile(&expr, layer) {
        Ok(cbpf) => {
            print!(
                "classic BPF ({} insns, rejects all: {:?}):\n{cbpf}",
                cbpf.insns().len(),
                cbpf.reject_reason()
            );
            match translate(&cbpf, mode) {
                Ok(ebpf) => print!(
                    "eBPF {mode:?} ({} insns):\n{}",
                    ebpf.len(),
                    disassemble(&ebpf)
                ),
                Err(e) => eprintln!("error: {e}"),
            }
        }
        Err(e) => eprintln!("error: {e}"),
    }
}
