//! The kernel-side configuration ([`PwruConfig`], the read-only global `pwru_cfg`) made from
//! the tracer's options: filter and output flags, netns inode, interface index, mark, dump
//! bound.

use pwru_ebpf::{
    PwruConfig, PWRU_CFG_FILTER_IFINDEX, PWRU_CFG_FILTER_MARK, PWRU_CFG_FILTER_NETNS,
    PWRU_CFG_OUTPUT_CALLER, PWRU_CFG_OUTPUT_CB, PWRU_CFG_OUTPUT_META, PWRU_CFG_OUTPUT_PKT,
    PWRU_CFG_OUTPUT_SHINFO, PWRU_CFG_OUTPUT_SKB, PWRU_CFG_OUTPUT_STACK, PWRU_CFG_OUTPUT_TUNNEL,
    PWRU_CFG_OUTPUT_TUPLE, PWRU_CFG_PACKET_ID, PWRU_CFG_TRACK_HEAD, PWRU_CFG_TRACK_SKB,
    PWRU_CFG_TRACK_STACKID,
};

use crate::error::Error;
use crate::netns::{self, NetnsSpec};
use crate::options::Options;

/// The config for options `o`, with `flags` (the filter bits) already set. Fails on a dump
/// bound out of range, a netns that cannot be resolved or an unknown interface.
pub(super) fn kernel_config(o: &Options, mut flags: u32) -> Result<PwruConfig, Error> {
    let dump = o.dump_buffer_bytes;
    let dump_range = crate::options::DUMP_BUFFER_BYTES_MIN..=crate::options::DUMP_BUFFER_BYTES_MAX;
    if dump != 0 && !dump_range.contains(&dump) {
        return Err(Error::InvalidOption(format!(
            "dump buffer size {dump} is outside {}..={} bytes (or 0 for the default {})",
            dump_range.start(),
            dump_range.end(),
            crate::options::DEFAULT_DUMP_BUFFER_BYTES
        )));
    }

    let snaplen = o.capture.snaplen;
    if o.capture.packet && !(1..=crate::options::MAX_SNAPLEN).contains(&snaplen) {
        return Err(Error::InvalidOption(format!(
            "snap length {snaplen} is outside 1..={} bytes (the default is {})",
            crate::options::MAX_SNAPLEN,
            crate::options::DEFAULT_SNAPLEN
        )));
    }

    let mut config = PwruConfig {
        snaplen: if o.capture.packet { snaplen } else { 0 },
        flags: 0,
        netns: 0,
        mark: 0,
        mark_mask: 0,
        ifindex: 0,
        dump_max: if dump == 0 {
            crate::options::DEFAULT_DUMP_BUFFER_BYTES
        } else {
            dump
        },
    };
    let spec = match &o.netns {
        Some(s) => {
            let spec: NetnsSpec = s.parse()?;
            let inode = spec.inode()?;
            config.netns = u32::try_from(inode).map_err(|_| {
                Error::InvalidOption(format!("netns inode {inode} does not fit 32 bits"))
            })?;
            flags |= PWRU_CFG_FILTER_NETNS;
            Some(spec)
        }
        None => None,
    };
    if let Some(name) = &o.interface {
        let spec = match &spec {
            Some(s) => s.clone(),
            None => NetnsSpec::Path("/proc/self/ns/net".into()),
        };
        config.ifindex = netns::ifindex_in(&spec, name)?;
        flags |= PWRU_CFG_FILTER_IFINDEX;
    }
    if let Some(m) = o.mark {
        config.mark = m.mark;
        config.mark_mask = m.mask;
        flags |= PWRU_CFG_FILTER_MARK;
    }
    let c = &o.capture;
    for (on, bit) in [
        (c.meta, PWRU_CFG_OUTPUT_META),
        (c.tuple, PWRU_CFG_OUTPUT_TUPLE),
        (c.tunnel, PWRU_CFG_OUTPUT_TUNNEL),
        (c.stack, PWRU_CFG_OUTPUT_STACK),
        (c.caller, PWRU_CFG_OUTPUT_CALLER),
        (c.cb, PWRU_CFG_OUTPUT_CB),
        (c.skb, PWRU_CFG_OUTPUT_SKB),
        (c.skb_shared_info, PWRU_CFG_OUTPUT_SHINFO),
        (c.packet, PWRU_CFG_OUTPUT_PKT),
        (c.packet_id, PWRU_CFG_PACKET_ID),
        (o.track_skb, PWRU_CFG_TRACK_SKB | PWRU_CFG_TRACK_HEAD),
        (o.track_skb_by_stackid, PWRU_CFG_TRACK_STACKID),
    ] {
        if on {
            flags |= bit;
        }
    }
    // Functions without an skb argument find their packet through the stack links.
    if !o.non_skb_functions.is_empty() || o.track_bpf_helpers || o.bpf_map_ops {
        flags |= PWRU_CFG_TRACK_STACKID;
    }
    config.flags = flags;

    Ok(config)
}
