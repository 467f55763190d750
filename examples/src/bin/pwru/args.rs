//! pwru's command line, flag for flag (same names, same meanings), parsed with clap.

use clap::{ArgAction, Parser};

/// A boolean flag's value, spelled as pwru's flag parser (Go's strconv.ParseBool) accepts it.
pub fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("expected one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False".into()),
    }
}

/// pwru-rs: where does my packet go inside the kernel? (a drop-in for cilium/pwru)
#[derive(Debug, Parser)]
#[command(name = "pwru", version, about, after_help = AFTER_HELP)]
pub struct Args {
    /// pcap-filter expression (the words after the flags are joined, as tcpdump does)
    #[arg(value_name = "PCAP-FILTER")]
    pub pcap_filter: Vec<String>,

    /// Run a self-contained demo: two network namespaces joined by veth, a few packets (one
    /// dropped on purpose), traced and printed; everything created is removed afterwards
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub demo: bool,

    /// trace kernel functions whose whole name matches this regex
    #[arg(long, value_name = "REGEX")]
    pub filter_func: Option<String>,
    /// also trace functions without an skb argument (comma-separated names; implies tracking by stack id)
    #[arg(long, value_delimiter = ',', value_name = "FUNCS")]
    pub filter_non_skb_funcs: Vec<String>,
    /// also trace these kernel modules (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "MODULES")]
    pub kmods: Vec<String>,
    /// also trace every loaded kernel module with BTF
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub all_kmods: bool,
    /// attach backend: auto, kprobe-multi, kprobe, fentry, tracepoint (pwru: kprobe, kprobe-multi)
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// kprobes per attaching worker (accepted for compatibility; pwru-rs sizes its own batches)
    #[arg(long, default_value_t = 10)]
    pub filter_kprobe_batch: u32,
    /// kernel BTF file to use instead of /sys/kernel/btf/vmlinux
    #[arg(long, value_name = "PATH")]
    pub kernel_btf: Option<String>,

    /// only packets in this network namespace: /proc/PID/ns/net, /run/netns/NAME or inode:N
    #[arg(long, value_name = "NETNS")]
    pub filter_netns: Option<String>,
    /// only packets with this mark: mark[/mask], decimal or 0x-hex
    #[arg(long, value_name = "MARK[/MASK]")]
    pub filter_mark: Option<String>,
    /// only packets on this interface (resolved in --filter-netns)
    #[arg(long, value_name = "NAME")]
    pub filter_ifname: Option<String>,
    /// pcap filter on the inner Ethernet frame of tunnelled packets
    #[arg(long, value_name = "PCAP")]
    pub filter_tunnel_pcap_l2: Option<String>,
    /// pcap filter on the inner IP packet of tunnelled packets
    #[arg(long, value_name = "PCAP")]
    pub filter_tunnel_pcap_l3: Option<String>,
    /// follow a matched skb everywhere, including clones
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub filter_track_skb: bool,
    /// link functions without an skb argument to packets by stack id
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub filter_track_skb_by_stackid: bool,
    /// trace the loaded tc BPF programs
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub filter_trace_tc: bool,
    /// trace the loaded XDP programs
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub filter_trace_xdp: bool,
    /// filter skbs with a C-like expression over struct sk_buff, e.g. 'skb->mark & 0xff == 0x1 && skb->dev->ifindex == 2' (`&` binds before comparisons)
    #[arg(long, value_name = "EXPR")]
    pub filter_skb_expr: Option<String>,
    /// filter XDP events with a C-like expression over struct xdp_buff, e.g. 'xdp->rxq->queue_index == 0'
    #[arg(long, value_name = "EXPR")]
    pub filter_xdp_expr: Option<String>,
    /// also trace the kernel functions (BPF helpers, map operations) that loaded tc/XDP programs
    /// call, linked to packets by stack id (needs kprobes or fentry)
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub filter_track_bpf_helpers: bool,

    /// print netns, mark, interface, protocol, MTU and length
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_meta: bool,
    /// print the L3/L4 tuple
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_tuple: bool,
    /// print TCP flags
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_tcp_flags: bool,
    /// print the inner tuple of tunnelled packets
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_tunnel: bool,
    /// print the kernel stack
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_stack: bool,
    /// print the calling function
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_caller: bool,
    /// print struct sk_buff
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_skb: bool,
    /// print struct skb_shared_info
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_skb_shared_info: bool,
    /// print the skb control buffer
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_skb_cb: bool,
    /// (pwru-rs) print each packet's id (a PACKET_ID column, `ID<-PARENT` for clones and
    /// copies; JSON keys packet_id and parent_packet_id)
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_packet_id: bool,
    /// print up to 4 skb values per event, e.g. 'skb->mark,skb->dev->ifindex'
    #[arg(long, value_delimiter = ',', value_name = "EXPR")]
    pub output_skb_metadata: Vec<String>,
    /// print up to 4 xdp_buff values per XDP event, e.g. 'xdp->rxq->queue_index'
    #[arg(long, value_delimiter = ',', value_name = "EXPR")]
    pub output_xdp_metadata: Vec<String>,
    /// print the map operations (lookup, update, delete: map id, name, key and value) of the
    /// loaded tc/XDP programs, with the packet's events; needs the kprobe, kprobe-multi or
    /// fentry backend
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_bpfmap: bool,
    /// print the network namespace's name (`ip netns` and container runtimes' bind mounts,
    /// else `comm:pid` of a process in it): a NETNS NAME column, `netns_name` in JSON
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_netns_names: bool,
    /// width of the NETNS NAME column: longer names are cut (text output only)
    #[arg(long, default_value_t = 16, value_name = "CHARS")]
    pub netns_names_max_length: usize,
    /// print one JSON object per event
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_json: bool,
    /// print each packet as one block when its series completes (hops with +delta time and
    /// what changed at each hop) instead of one line per event; one JSON object per packet with
    /// --output-json
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_series: bool,
    /// at exit, print the distinct paths packets took (counts, per-hop latency percentiles,
    /// drop reasons)
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_paths: bool,
    /// at exit, write a picture of the paths (SVG: functions joined by edges with packet
    /// counts and latencies, drops in red) to this file
    #[arg(long, value_name = "FILE")]
    pub output_paths_svg: Option<String>,
    /// write events to this file instead of standard output
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<String>,
    /// rotate the output file when it reaches this many megabytes
    #[arg(long, default_value_t = 100, value_name = "MB")]
    pub output_file_max_size: u64,
    /// keep this many rotated files (0: keep all)
    #[arg(long, default_value_t = 0)]
    pub output_file_max_backups: u32,
    /// delete rotated files last written more than this many days ago (0: keep all)
    #[arg(long, default_value_t = 0)]
    pub output_file_max_age: u32,
    /// gzip rotated files (NAME.1 becomes NAME.1.gz)
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub output_file_compress: bool,
    /// also write the events' packets to this pcap-ng file (Wireshark, tshark), each with the
    /// function and skb as comments; rotated like --output-file (same size and backup flags)
    #[arg(long, value_name = "PATH")]
    pub output_pcapng: Option<String>,
    /// packet bytes per event kept for --output-pcapng, 1..=4096 (default 256)
    #[arg(long, value_name = "BYTES")]
    pub output_pcapng_snaplen: Option<u32>,
    /// stop after this many events (0: no limit)
    #[arg(long, default_value_t = 0)]
    pub output_limit_lines: u64,
    /// timestamp column: none, current, relative, absolute
    #[arg(long, default_value = "none")]
    pub timestamp: String,
    /// size of buffers to print skb data (used by --output-skb and --output-skb-shared-info),
    /// in bytes, 64..=4096; longer dumps are cut and say so
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub set_percpu_buf: u32,
    /// ring buffer size shared by all CPUs, in bytes (a power of two, at least 4096)
    #[arg(long, value_name = "BYTES")]
    pub ring_buffer_size: Option<u32>,
    /// create this file once every probe is attached
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<String>,
    /// print debug information (verifier logs on failure are always printed)
    #[arg(long, action = ArgAction::Set, value_parser = go_bool, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub debug: bool,
}

const AFTER_HELP: &str = "Needs root (CAP_BPF, CAP_PERFMON; CAP_NET_ADMIN for --demo and tc/XDP tracing).\n\
Examples:\n  pwru --demo\n  pwru 'host 10.0.0.1 and tcp port 443'\n  pwru --output-json --filter-func 'ip_.*' icmp";

impl Args {
    /// Whether events are grouped into per-packet series (any of the series flags).
    pub fn series(&self) -> bool {
        self.output_series || self.output_paths || self.output_paths_svg.is_some()
    }

    /// The snap length for --output-pcapng, checked; refused without --output-pcapng.
    pub fn pcapng_snaplen(&self) -> Result<u32, String> {
        let max = pwru_core::options::MAX_SNAPLEN;
        match (self.output_pcapng.is_some(), self.output_pcapng_snaplen) {
            (false, Some(_)) => {
                Err("--output-pcapng-snaplen needs --output-pcapng FILE".to_string())
            }
            (_, Some(n)) if !(1..=max).contains(&n) => Err(format!(
                "--output-pcapng-snaplen {n}: must be 1..={max} bytes"
            )),
            (_, n) => Ok(n.unwrap_or(pwru_core::options::DEFAULT_SNAPLEN)),
        }
    }

    /// The pcap filter: positional words joined by spaces.
    pub fn pcap(&self) -> String {
        self.pcap_filter.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_parse_as_go_strconv_parsebool_does() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(go_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(go_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", "2", "on"] {
            assert!(go_bool(bad).is_err(), "{bad:?} accepted");
        }
        let a = Args::try_parse_from(["pwru", "--output-meta=F", "--output-json=T", "--debug"])
            .expect("parse");
        assert!(!a.output_meta && a.output_json && a.debug);
        assert!(Args::try_parse_from(["pwru", "--debug=yes"]).is_err());
    }
}
