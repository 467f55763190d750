//! pwru's flags, one by one, on the `pwru` example: the real binary on the host's kernel with
//! real packets over a veth pair, each flag's effect checked in what it prints.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pwru_testkit::netlab::VethPair;
use pwru_testkit::root::skip_unless_root_for;
use pwru_testkit::sys;

const PWRU: &str = env!("CARGO_BIN_EXE_pwru");

fn skip_unless_root(name: &str) -> bool {
    skip_unless_root_for(name, "to load BPF programs and make namespaces")
}

/// Text a child writes on one stream, gathered by a reader thread as it comes.
#[derive(Clone, Default)]
struct Gathered(Arc<Mutex<String>>);

impl Gathered {
    fn follow(r: impl Read + Send + 'static) -> (Gathered, std::thread::JoinHandle<()>) {
        let g = Gathered::default();
        let g2 = g.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                let mut text = g2.0.lock().expect("text");
                text.push_str(&line);
                text.push('\n');
            }
        });
        (g, reader)
    }

    fn text(&self) -> String {
        self.0.lock().expect("text").clone()
    }
}

/// What one run printed, and how it ended.
struct Ran {
    out: String,
    err: String,
    success: bool,
}

/// A pwru run: started with a ready file, given traffic, stopped by SIGINT once its output
/// satisfies `until` (or after 15 s without), and read to the end.
struct Run {
    child: Child,
    ready: PathBuf,
    out: Gathered,
    err: Gathered,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Run {
    /// Starts pwru with `args` and waits until it attached; Err(what it printed) when it
    /// exited first.
    fn start<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
        tag: &str,
        args: &[S],
    ) -> Result<Run, Ran> {
        let ready = std::env::temp_dir().join(format!("pwru-flags-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(PWRU)
            .arg(format!("--ready-file={}", ready.display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pwru");
        let (out, r1) = Gathered::follow(child.stdout.take().expect("stdout"));
        let (err, r2) = Gathered::follow(child.stderr.take().expect("stderr"));
        let mut run = Run {
            child,
            ready,
            out,
            err,
            readers: vec![r1, r2],
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !run.ready.exists() {
            if let Ok(Some(_)) = run.child.try_wait() {
                return Err(run.finish());
            }
            assert!(
                Instant::now() < deadline,
                "pwru {args:?} not ready after 90 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(run)
    }

    /// Waits until the output so far satisfies `until` (15 s at most), then stops pwru.
    fn stop_when(self, until: impl Fn(&str) -> bool) -> Ran {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !until(&self.out.text()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Our own child, by its pid; it may have exited already (the wait then shows it).
        let _ = sys::kill(self.child.id(), libc::SIGINT);
        self.finish()
    }

    fn finish(mut self) -> Ran {
        let success = self.child.wait().is_ok_and(|s| s.success());
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let _ = std::fs::remove_file(&self.ready);
        Ran {
            out: self.out.text(),
            err: self.err.text(),
            success,
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The event lines (skb address first) of a text run.
fn events(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("0x")).collect()
}

#[test]
fn netns_names_come_from_ip_netns_in_text_and_json() {
    let test = "netns_names_come_from_ip_netns_in_text_and_json";
    if skip_unless_root(test) {
        return;
    }
    let tag = format!("n{}", std::process::id() % 100_000);
    // The namespaces are made after pwru starts: their names are learnt at their first event.
    let filter_b = |pair: &VethPair| format!("udp and dst host {} and dst port 7100", pair.addr_b);
    let probe = VethPair::create(&tag, 233).expect("veth pair");
    let filter = filter_b(&probe);
    let (ns_a, ns_b) = (probe.ns_a.clone(), probe.ns_b.clone());
    drop(probe);

    let run = Run::start(
        "netns-text",
        &[
            "--output-netns-names",
            "--netns-names-max-length=40",
            &filter,
        ],
    )
    .unwrap_or_else(|r| panic!("pwru failed to start:\n{}\n{}", r.out, r.err));
    let pair = VethPair::create(&tag, 233).expect("veth pair");
    pair.send_udp(41100, 7100, 3, 16).expect("send");
    let ran = run.stop_when(|o| o.contains(&ns_a) && o.contains(&ns_b));
    assert!(ran.success, "{}", ran.err);
    let header = ran.out.lines().next().unwrap_or_default();
    assert!(header.contains(" NETNS NAME "), "{header}");
    let lines = events(&ran.out);
    assert!(
        lines.iter().any(|l| l.contains(&format!(" {ns_a} "))),
        "no event named {ns_a}:\n{}",
        ran.out
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!(" {ns_b} "))),
        "no event named {ns_b}:\n{}",
        ran.out
    );
    // The name belongs to the namespace printed in the NETNS column.
    let inode_a = VethPair::netns_inode(&ns_a).expect("inode").to_string();
    for l in lines.iter().filter(|l| l.contains(&format!(" {ns_a} "))) {
        assert_eq!(l.split_whitespace().nth(3), Some(inode_a.as_str()), "{l}");
    }

    // A short maximum cuts the column; JSON keeps the whole name.
    let run = Run::start(
        "netns-short",
        &[
            "--output-netns-names",
            "--netns-names-max-length=6",
            &filter,
        ],
    )
    .unwrap_or_else(|r| panic!("pwru failed to start:\n{}\n{}", r.out, r.err));
    pair.send_udp(41101, 7100, 2, 16).expect("send");
    let cut = &ns_a[..6];
    let ran = run.stop_when(|o| o.contains(&format!(" {cut} ")));
    assert!(ran.success, "{}", ran.err);
    assert!(
        events(&ran.out)
            .iter()
            .any(|l| l.contains(&format!(" {cut} ")))
            && !ran.out.contains(&ns_a),
        "names not cut to 6:\n{}",
        ran.out
    );

    let run = Run::start(
        "netns-json",
        &["--output-netns-names", "--output-json", &filter],
    )
    .unwrap_or_else(|r| panic!("pwru failed to start:\n{}\n{}", r.out, r.err));
    pair.send_udp(41102, 7100, 2, 16).expect("send");
    let ran = run.stop_when(|o| o.contains(&ns_b));
    assert!(ran.success, "{}", ran.err);
    let mut named = 0;
    for l in ran.out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let name = v.get("netns_name").and_then(|n| n.as_str());
        if let Some(name) = name.filter(|n| *n == ns_a || *n == ns_b) {
            let inode = VethPair::netns_inode(name).expect("inode");
            assert_eq!(v["netns"], inode, "{l}");
            named += 1;
        }
    }
    assert!(named > 0, "no netns_name in JSON:\n{}", ran.out);
}

/// Every flag cilium/pwru defines (its `SetFlags`, newest release: the output-file rotation,
/// netns-name and debug flags included), as `pwru --help` must list them.
const PWRU_FLAGS: &[&str] = &[
    "--help",
    "--version",
    "--kernel-btf",
    "--kmods",
    "--all-kmods",
    "--filter-func",
    "--filter-non-skb-funcs",
    "--filter-netns",
    "--filter-mark",
    "--filter-track-skb",
    "--filter-track-skb-by-stackid",
    "--filter-trace-tc",
    "--filter-trace-xdp",
    "--filter-track-bpf-helpers",
    "--filter-tunnel-pcap-l2",
    "--filter-tunnel-pcap-l3",
    "--filter-ifname",
    "--filter-kprobe-batch",
    "--filter-skb-expr",
    "--filter-xdp-expr",
    "--timestamp",
    "--output-meta",
    "--output-tuple",
    "--output-skb",
    "--output-skb-shared-info",
    "--output-tunnel",
    "--output-stack",
    "--output-caller",
    "--output-limit-lines",
    "--output-skb-cb",
    "--output-tcp-flags",
    "--output-skb-metadata",
    "--output-xdp-metadata",
    "--output-bpfmap",
    "--output-netns-names",
    "--netns-names-max-length",
    "--output-file",
    "--output-file-max-size",
    "--output-file-max-backups",
    "--output-file-max-age",
    "--output-file-compress",
    "--output-json",
    "--ready-file",
    "--backend",
    "--set-percpu-buf",
    "--debug",
];

#[test]
fn help_lists_every_pwru_flag() {
    let out = Command::new(PWRU)
        .arg("--help")
        .output()
        .expect("pwru --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
        .collect();
    let missing: Vec<&&str> = PWRU_FLAGS.iter().filter(|f| !listed.contains(f)).collect();
    assert!(missing.is_empty(), "--help lacks {missing:?}:\n{help}");
    // pwru's short form of --help.
    let short = Command::new(PWRU).arg("-h").output().expect("pwru -h");
    assert!(short.status.success() && !short.stdout.is_empty());
}

/// The traffic a row's run gets.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Traffic {
    /// None: the flag makes pwru exit (or refuse) before attaching.
    None,
    /// UDP datagrams from A to B's closed port (dropped there with NO_SOCKET).
    Udp,
    /// A TCP connection attempt from A to B's closed port (SYN, then RST).
    Tcp,
}

type Until = Box<dyn Fn(&str) -> bool>;
type Check = Box<dyn Fn(&Ran) -> Result<(), String>>;

/// One pwru flag run on real traffic: the arguments, what is sent, when the run has seen
/// enough, and what proves the flag did what it says.
struct Row {
    flag: &'static str,
    args: Vec<String>,
    traffic: Traffic,
    /// True once stdout so far shows enough; pwru is then stopped.
    until: Until,
    /// Checks the whole run; Err says what is wrong.
    check: Check,
}

const PORT: u16 = 7300;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

impl Row {
    /// A run with UDP traffic that must print events, stopped after two.
    fn new(flag: &'static str, args: &[&str]) -> Row {
        Row {
            flag,
            args: args.iter().map(|s| s.to_string()).collect(),
            traffic: Traffic::Udp,
            until: Box::new(|o: &str| events(o).len() >= 2),
            check: Box::new(|r: &Ran| ensure(!events(&r.out).is_empty(), || "no events".into())),
        }
    }

    /// A run that must end before attaching, its stderr containing each of `words`.
    fn refused(flag: &'static str, args: &[&str], words: &'static [&'static str]) -> Row {
        Row {
            traffic: Traffic::None,
            until: Box::new(|_: &str| false),
            check: Box::new(move |r: &Ran| {
                ensure(!r.success, || "accepted".into())?;
                match words.iter().find(|w| !r.err.contains(*w)) {
                    Some(w) => Err(format!("stderr lacks {w:?}")),
                    None => Ok(()),
                }
            }),
            ..Row::new(flag, args)
        }
    }

    /// Events must be printed, the header must satisfy `header` and every event line `each`.
    fn lines(
        mut self,
        header: impl Fn(&str) -> bool + 'static,
        each: impl Fn(&str) -> bool + 'static,
    ) -> Row {
        self.check = Box::new(move |r: &Ran| {
            let lines = events(&r.out);
            ensure(!lines.is_empty(), || "no events".into())?;
            let head = r.out.lines().next().unwrap_or_default();
            ensure(header(head), || format!("header {head:?}"))?;
            match lines.iter().find(|l| !each(l)) {
                Some(l) => Err(format!("line {l:?}")),
                None => Ok(()),
            }
        });
        self
    }

    fn check(mut self, check: impl Fn(&Ran) -> Result<(), String> + 'static) -> Row {
        self.check = Box::new(check);
        self
    }

    fn until(mut self, until: impl Fn(&str) -> bool + 'static) -> Row {
        self.until = Box::new(until);
        self
    }

    fn traffic(mut self, t: Traffic) -> Row {
        self.traffic = t;
        self
    }
}

/// Lines that are not the header nor events: stack frames and dumps.
fn extra_lines(out: &str) -> Vec<&str> {
    out.lines()
        .skip(1)
        .filter(|l| !l.starts_with("0x") && !l.is_empty())
        .collect()
}

/// Every flag's row.
fn rows(pair: &VethPair, dir: &std::path::Path) -> Vec<Row> {
    let udp = format!("udp and dst host {} and dst port {PORT}", pair.addr_b);
    let tcp = format!("tcp and dst host {} and dst port {PORT}", pair.addr_b);
    let u = udp.as_str();
    let ns_b = VethPair::netns_path(&pair.ns_b)
        .to_string_lossy()
        .into_owned();
    let inode_b = VethPair::netns_inode(&pair.ns_b)
        .expect("inode")
        .to_string();
    let ifname = format!("--filter-ifname={}", pair.if_b);
    let if_b = format!("{}:", pair.if_b);
    let netns = format!("--filter-netns={ns_b}");
    let out_file = dir.join("events.txt");
    let out_arg = format!("--output-file={}", out_file.display());
    let aged = dir.join("aged.txt");
    let aged_arg = format!("--output-file={}", aged.display());
    let (ns_a, ns_b_name) = (pair.ns_a.clone(), pair.ns_b.clone());
    vec![
        Row::new("--version", &["--version"])
            .traffic(Traffic::None)
            .check(|r| ensure(r.success && r.out.starts_with("pwru 0."), || r.out.clone())),
        Row::new("--kernel-btf", &["--kernel-btf=/sys/kernel/btf/vmlinux", u]),
        Row::refused(
            "--kernel-btf",
            &["--kernel-btf=/etc/hostname", u],
            &["/etc/hostname", "BTF"],
        ),
        // This host's kernel has no module BTF: the module asked for is looked for by name.
        Row::refused(
            "--kmods",
            &["--kmods=pwru_no_such_module", u],
            &["/sys/kernel/btf/pwru_no_such_module"],
        ),
        Row::new("--all-kmods", &["--all-kmods", u]),
        // The tracepoint backend: the regex selects tracepoints by name.
        Row::new("--filter-func", &["--filter-func=kfree_skb", u])
            .until(|o| !events(o).is_empty())
            .lines(|_| true, |l| l.contains(" kfree_skb")),
        Row::refused(
            "--filter-non-skb-funcs",
            &["--filter-non-skb-funcs=sock_def_readable", u],
            &["sock_def_readable", "kprobe"],
        ),
        Row::new("--filter-netns", &[&netns, u]).lines(
            |_| true,
            move |l| l.split_whitespace().nth(3) == Some(inode_b.as_str()),
        ),
        Row::new("--filter-ifname", &[&netns, &ifname, u])
            .lines(|_| true, move |l| l.contains(&if_b)),
        // The traffic is unmarked: mark 0 matches it (mark 1 would match none).
        Row::new("--filter-mark", &["--filter-mark=0x0/0xffffffff", u])
            .lines(|_| true, |l| l.split_whitespace().nth(4) == Some("0")),
        Row::new("--filter-track-skb", &["--filter-track-skb", u]),
        Row::new(
            "--filter-track-skb-by-stackid",
            &["--filter-track-skb-by-stackid", u],
        ),
        // No tc/XDP program is loaded: nothing to trace, the flows' events still come.
        Row::new("--filter-trace-tc", &["--filter-trace-tc", u]),
        Row::new("--filter-trace-xdp", &["--filter-trace-xdp", u]),
        Row::refused(
            "--filter-track-bpf-helpers",
            &["--filter-track-bpf-helpers", u],
            &["track_bpf_helpers", "kprobe", "fentry"],
        ),
        // Packets that are not tunnelled pass the tunnel filters (pwru's rule).
        Row::new(
            "--filter-tunnel-pcap-l2",
            &["--filter-tunnel-pcap-l2=udp", u],
        ),
        Row::refused(
            "--filter-tunnel-pcap-l3",
            &["--filter-tunnel-pcap-l3=bogus((", u],
            &["tunnel", "bogus(("],
        ),
        Row::new("--filter-kprobe-batch", &["--filter-kprobe-batch=3", u]),
        Row::refused(
            "--filter-kprobe-batch",
            &["--filter-kprobe-batch=x", u],
            &["filter-kprobe-batch"],
        ),
        Row::new("--timestamp", &["--timestamp=current", u]).lines(
            |h| h.contains(" TIMESTAMP "),
            |l| {
                l.split_whitespace()
                    .nth(3)
                    .is_some_and(|t| t.parse::<u64>().is_ok_and(|n| n > 0))
            },
        ),
        // The traffic is unmarked: an expression on the mark keeps it, and shows in the column.
        Row::new(
            "--filter-skb-expr",
            &["--filter-skb-expr=skb->mark == 0", u],
        )
        .lines(|_| true, |l| l.split_whitespace().nth(4) == Some("0")),
        // No XDP program is loaded: the expression is compiled against BTF, traces nothing,
        // and the flows' skb events still come.
        Row::new(
            "--filter-xdp-expr",
            &[
                "--filter-trace-xdp",
                "--filter-xdp-expr=xdp->rxq->queue_index == 0",
                u,
            ],
        ),
        Row::refused(
            "--filter-xdp-expr",
            &[
                "--filter-trace-xdp",
                "--filter-xdp-expr=xdp->rxq->no_such_member == 0",
                u,
            ],
            &["no_such_member"],
        ),
        Row::new(
            "--output-skb-metadata",
            &["--output-skb-metadata=skb->mark,skb->len", u],
        )
        .lines(
            |_| true,
            |l| l.contains(" skb->mark=0x0 ") && l.contains(" skb->len=0x"),
        ),
        Row::new(
            "--output-xdp-metadata",
            &[
                "--filter-trace-xdp",
                "--output-xdp-metadata=xdp->rxq->queue_index",
                u,
            ],
        ),
        Row::new("--output-meta", &["--output-meta=false", u])
            .lines(|h| !h.contains("NETNS") && !h.contains("IFACE"), |_| true),
        Row::new("--output-tuple", &["--output-tuple=false", u])
            .lines(|h| !h.contains("TUPLE"), |l| !l.contains("->")),
        Row::new("--output-skb", &["--output-skb", u]).check(|r| {
            ensure(
                extra_lines(&r.out)
                    .iter()
                    .any(|l| l.contains("(struct sk_buff)")),
                || "no skb dump".into(),
            )
        }),
        Row::new("--output-skb-shared-info", &["--output-skb-shared-info", u]).check(|r| {
            ensure(
                extra_lines(&r.out)
                    .iter()
                    .any(|l| l.contains("(struct skb_shared_info)")),
                || "no skb_shared_info dump".into(),
            )
        }),
        Row::new(
            "--set-percpu-buf",
            &["--output-skb", "--set-percpu-buf=64", u],
        )
        .check(|r| {
            ensure(r.out.contains("(skb dump cut at 64 bytes)"), || {
                "dump not cut at 64".into()
            })
        }),
        Row::new("--output-tunnel", &["--output-tunnel", u])
            .lines(|h| h.ends_with(" TUNNEL"), |_| true),
        Row::new("--output-stack", &["--output-stack", u]).check(|r| {
            let frames = extra_lines(&r.out);
            ensure(
                !frames.is_empty() && frames.iter().all(|f| !f.contains(' ')),
                || format!("stack frames: {frames:?}"),
            )
        }),
        Row::new("--output-caller", &["--output-caller", u])
            .lines(|h| h.contains(" CALLER"), |_| true),
        Row::new("--output-limit-lines", &["--output-limit-lines=2", u])
            .until(|_| false)
            .check(|r| {
                ensure(r.success && events(&r.out).len() == 2, || {
                    format!("{} events", events(&r.out).len())
                })
            }),
        Row::new("--output-skb-cb", &["--output-skb-cb", u])
            .lines(|h| h.contains("__sk_buff->cb[]"), |l| l.contains(" [0x")),
        Row::new("--output-tcp-flags", &["--output-tcp-flags", &tcp])
            .traffic(Traffic::Tcp)
            .until(|o| o.contains("(tcp:SYN)"))
            .lines(|_| true, |l| l.contains("(tcp:")),
        Row::new("--output-netns-names", &["--output-netns-names", u]).lines(
            |h| h.contains(" NETNS NAME "),
            move |l| l.contains(&format!(" {ns_a} ")) || l.contains(&format!(" {ns_b_name} ")),
        ),
        Row::new(
            "--netns-names-max-length",
            &["--output-netns-names", "--netns-names-max-length=3", u],
        )
        .lines(|h| h.contains("NETNS NAME"), |l| l.contains(" pwr ")),
        Row::new("--output-json", &["--output-json", u]).check(|r| {
            let lines: Vec<&str> = r.out.lines().collect();
            ensure(!lines.is_empty(), || "no events".into())?;
            for l in lines {
                let v: serde_json::Value =
                    serde_json::from_str(l).map_err(|e| format!("{e}: {l}"))?;
                ensure(v["tuple"]["dport"] == PORT, || format!("not the flow: {l}"))?;
            }
            Ok(())
        }),
        {
            let file = out_file.clone();
            Row::new("--output-file", &[&out_arg, u])
                .until(move |_| std::fs::read_to_string(&file).is_ok_and(|t| events(&t).len() >= 2))
                .check(move |r| {
                    let text = std::fs::read_to_string(&out_file).map_err(|e| e.to_string())?;
                    ensure(r.out.is_empty() && events(&text).len() >= 2, || {
                        format!("stdout {:?}, file {text:?}", r.out)
                    })
                })
        },
        // Rotation: the file is filled to its 1 MB limit before pwru opens it, so the first
        // event rotates it.
        rotation_row("--output-file-max-size", dir, "size", &[u], |d| {
            let first = std::fs::read(d.join("size.txt.1")).map_err(|e| e.to_string())?;
            ensure(first == filler(), || "NAME.1 is not the full file".into())
        }),
        rotation_row(
            "--output-file-max-backups",
            dir,
            "backups",
            &["--output-file-max-backups=1", u],
            |d| {
                // The older backup made beforehand is gone; the rotated file is the one kept.
                let first = std::fs::read(d.join("backups.txt.1")).map_err(|e| e.to_string())?;
                ensure(
                    first == filler() && !d.join("backups.txt.2").exists(),
                    || "more than one backup kept".into(),
                )
            },
        ),
        rotation_row(
            "--output-file-compress",
            dir,
            "gz",
            &["--output-file-compress", u],
            |d| {
                let mut text = Vec::new();
                let gz = std::fs::File::open(d.join("gz.txt.1.gz")).map_err(|e| e.to_string())?;
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut text)
                    .map_err(|e| format!("not gzip: {e}"))?;
                ensure(text == filler() && !d.join("gz.txt.1").exists(), || {
                    "NAME.1.gz is not the rotated file".into()
                })
            },
        ),
        {
            // A rotated file 3 days old is deleted when pwru opens the file; a young one kept.
            let (old, young) = (dir.join("aged.txt.2"), dir.join("aged.txt.1"));
            for (p, days) in [(&old, 3u64), (&young, 0)] {
                std::fs::write(p, b"x\n").expect("backup");
                let f = std::fs::File::options().write(true).open(p).expect("open");
                f.set_modified(
                    std::time::SystemTime::now() - Duration::from_secs(days * 86_400 + 60),
                )
                .expect("mtime");
            }
            Row::new(
                "--output-file-max-age",
                &[&aged_arg, "--output-file-max-age=2", u],
            )
            .until(|_| true)
            .check(move |_| {
                ensure(!old.exists() && young.exists(), || {
                    format!("old kept: {}, young kept: {}", old.exists(), young.exists())
                })
            })
        },
        Row::new("--backend", &["--backend=tracepoint", u]),
        Row::refused("--backend", &["--backend=kprobe", u], &["kprobe"]),
        Row::new("--debug", &["--debug", u]).check(|r| {
            ensure(r.err.contains("pwru: building the tracer"), || {
                r.err.clone()
            })
        }),
        // Map operations are traced with kprobes or fentry, both refused on this host: the
        // refusal names the option and the backends it needs (the VM scenario `bpfmap`
        // proves the output on kprobe-multi and fentry).
        Row::refused(
            "--output-bpfmap",
            &["--output-bpfmap", u],
            &["bpf_map_ops", "kprobe", "fentry"],
        ),
    ]
}

/// 1 MB of text: what `--output-file-max-size=1` holds before it rotates.
fn filler() -> Vec<u8> {
    let mut v = b"filler line written before pwru started\n".repeat((1 << 20) / 40);
    v.resize(1 << 20, b'.');
    v
}

/// `--output-file=DIR/NAME.txt --output-file-max-size=1 EXTRA udp...`, the file filled to
/// 1 MB and a stale backup `NAME.txt.1` made beforehand; `check` looks at DIR once the new
/// file has events.
fn rotation_row(
    flag: &'static str,
    dir: &std::path::Path,
    name: &str,
    extra: &[&str],
    check: fn(&std::path::Path) -> Result<(), String>,
) -> Row {
    let file = dir.join(format!("{name}.txt"));
    std::fs::write(&file, filler()).expect("fill the output file");
    std::fs::write(dir.join(format!("{name}.txt.1")), b"older backup\n").expect("backup");
    let mut args = vec![
        format!("--output-file={}", file.display()),
        "--output-file-max-size=1".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let dir = dir.to_path_buf();
    Row {
        flag,
        args,
        traffic: Traffic::Udp,
        until: Box::new(move |_: &str| {
            std::fs::read_to_string(&file).is_ok_and(|t| events(&t).len() >= 2)
        }),
        check: Box::new(move |r: &Ran| {
            ensure(r.success, || "failed".into())?;
            check(&dir)
        }),
    }
}

/// Sends the row's traffic from A to B.
fn send(pair: &VethPair, t: Traffic) {
    match t {
        Traffic::None => {}
        Traffic::Udp => pair.send_udp(41300, PORT, 3, 32).expect("send udp"),
        Traffic::Tcp => {
            let to = std::net::SocketAddr::from((pair.addr_b, PORT));
            // A closed port: the SYN is answered with RST; the refusal is expected.
            let _ = VethPair::in_netns(&pair.ns_a, move || {
                std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)).map(drop)
            });
        }
    }
}

#[test]
fn every_pwru_flag_runs_on_real_traffic_with_its_effect() {
    let test = "every_pwru_flag_runs_on_real_traffic_with_its_effect";
    if skip_unless_root(test) {
        return;
    }
    let pair = VethPair::create(&format!("f{}", std::process::id() % 100_000), 234).expect("pair");
    let dir = std::env::temp_dir().join(format!("pwru-flag-table-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let rows = rows(&pair, &dir);

    // Every pwru flag has a row here.
    let missing: Vec<&&str> = PWRU_FLAGS
        .iter()
        .filter(|f| !["--help", "--ready-file"].contains(f))
        .filter(|f| !rows.iter().any(|r| r.flag == **f))
        .collect();
    assert!(missing.is_empty(), "flags without a run: {missing:?}");

    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let ran = match Run::start(&format!("row{i}"), &row.args) {
            Err(ran) => ran,
            Ok(run) => {
                send(&pair, row.traffic);
                run.stop_when(&row.until)
            }
        };
        if let Err(why) = (row.check)(&ran) {
            failures.push(format!(
                "{} {:?}: {why}\n  stdout: {}\n  stderr: {}",
                row.flag,
                row.args,
                ran.out
                    .lines()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join("\n          "),
                ran.err
                    .lines()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join("\n          ")
            ));
        } else {
            println!("{test}: {} {:?} ok", row.flag, row.args);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
