//! pcap-filter expressions compiled to eBPF.
