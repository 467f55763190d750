//! What this machine is expected to support, from `tests/capabilities.conf` and the running
//! kernel's own configuration: the one place a test decides whether it may skip.
//!
//! Rule of use: a test asks [`has`] (or [`expect`]) before touching a capability. When the
//! capability is expected, the test runs and any error of the code under test fails it; when it
//! is not, [`has`] prints one `SKIP <test>: <reason>` line naming what the machine lacks.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;

/// The rules, compiled in so a test binary copied elsewhere still knows them.
pub const RULES: &str = include_str!("../../capabilities.conf");

/// Whether a capability is expected on a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The config (and the machine's known facts) say it works: errors are failures.
    Yes,
    /// It is not expected; the reason names the missing option or the known refusal.
    No(String),
    /// No kernel config could be read, so nothing can be expected.
    Unknown(String),
}

#[derive(Debug)]
enum Rule {
    Need(String, Vec<String>),
    Since(String, (u32, u32)),
    Refuse(String, String, String),
}

/// A machine: its kernel release, its kernel config (or why there is none) and the rules.
#[derive(Debug)]
pub struct Machine {
    release: String,
    config: Result<HashMap<String, String>, String>,
    rules: Vec<Rule>,
}

impl Machine {
    /// Builds a machine from rules text (the format of `tests/capabilities.conf`), a kernel
    /// config's text (or why it is missing) and a kernel release (`uname -r`).
    pub fn parse(rules: &str, config: Result<&str, String>, release: &str) -> Result<Self, String> {
        let mut parsed = Vec::new();
        for (n, line) in rules.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let bad = || format!("capabilities rules, line {}: cannot parse {line:?}", n + 1);
            let (Some(verb), Some(cap)) = (words.next(), words.next()) else {
                return Err(bad());
            };
            let rule = match verb {
                "need" => Rule::Need(cap.into(), words.map(str::to_string).collect()),
                "since" => {
                    let v = words.next().and_then(parse_version).ok_or_else(bad)?;
                    Rule::Since(cap.into(), v)
                }
                "refuse" => {
                    let glob = words.next().ok_or_else(bad)?;
                    let why = words.collect::<Vec<_>>().join(" ");
                    if why.is_empty() {
                        return Err(bad());
                    }
                    Rule::Refuse(cap.into(), glob.into(), why)
                }
                _ => return Err(bad()),
            };
            parsed.push(rule);
        }
        let config = config.map(|text| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .filter(|(k, _)| k.starts_with("CONFIG_"))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        Ok(Machine {
            release: release.to_string(),
            config,
            rules: parsed,
        })
    }

    /// The running machine: its release from /proc, its config from /proc/config.gz or
    /// `/boot/config-<release>`.
    pub fn running() -> Self {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let config = read_running_config(&release);
        Machine::parse(RULES, config.as_deref().map_err(Clone::clone), &release)
            .unwrap_or_else(|e| panic!("tests/capabilities.conf: {e}"))
    }

    /// The kernel release this machine was built for.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// Names of every capability the rules know.
    pub fn capabilities(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .rules
            .iter()
            .filter_map(|r| match r {
                Rule::Need(c, _) => Some(c.as_str()),
                _ => None,
            })
            .collect();
        names.dedup();
        names
    }

    /// What the rules say of `cap` here. Panics on a name the rules do not know (a test bug).
    pub fn expect(&self, cap: &str) -> Expect {
        let needs: Vec<&Vec<String>> = self
            .rules
            .iter()
            .filter_map(|r| match r {
                Rule::Need(c, opts) if c == cap => Some(opts),
                _ => None,
            })
            .collect();
        assert!(
            !needs.is_empty(),
            "capability {cap:?} is not in tests/capabilities.conf (known: {:?})",
            self.capabilities()
        );
        for r in &self.rules {
            if let Rule::Refuse(c, glob, why) = r {
                if c == cap && glob_match(glob, &self.release) {
                    return Expect::No(format!("{why} (kernel {})", self.release));
                }
            }
        }
        let config = match &self.config {
            Ok(c) => c,
            Err(why) => return Expect::Unknown(why.clone()),
        };
        for opt in needs.into_iter().flatten() {
            if config.get(opt).map(String::as_str) != Some("y") {
                return Expect::No(format!("the kernel config lacks {opt}=y"));
            }
        }
        for r in &self.rules {
            if let Rule::Since(c, min) = r {
                if c == cap && parse_version(&self.release).is_some_and(|v| v < *min) {
                    return Expect::No(format!(
                        "Linux {} is older than {}.{}",
                        self.release, min.0, min.1
                    ));
                }
            }
        }
        Expect::Yes
    }
}

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(glob: &str, text: &str) -> bool {
    match glob.split_once('*') {
        None => glob == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob_match(rest, &tail[i..]))
        }
    }
}

fn read_running_config(release: &str) -> Result<String, String> {
    if let Ok(out) = std::process::Command::new("gzip")
        .args(["-dc", "/proc/config.gz"])
        .output()
    {
        if out.status.success() && !out.stdout.is_empty() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    let boot = format!("/boot/config-{release}");
    std::fs::read_to_string(&boot).map_err(|e| {
        format!("no kernel config to judge by (/proc/config.gz unreadable, {boot}: {e})")
    })
}

/// The running machine, read once per test binary.
pub fn machine() -> &'static Machine {
    static M: OnceLock<Machine> = OnceLock::new();
    M.get_or_init(Machine::running)
}

/// What the rules say of `cap` on the running machine.
pub fn expect(cap: &str) -> Expect {
    machine().expect(cap)
}

/// Prints `SKIP <test>: <reason>` as one write (one line, never split by other output).
pub fn skip(test: &str, reason: impl Display) {
    let line = format!("SKIP {test}: {reason}\n");
    // Written straight to the process's stderr, so libtest's capture never hides it.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub use crate::root::{is_root, skip_unless_root};

/// True when `cap` is expected here (the test must then succeed); otherwise prints the SKIP
/// line naming what the machine lacks and returns false.
pub fn has(test: &str, cap: &str) -> bool {
    match expect(cap) {
        Expect::Yes => true,
        Expect::No(why) => {
            skip(test, format!("this machine lacks {cap}: {why}"));
            false
        }
        Expect::Unknown(why) => {
            skip(
                test,
                format!("cannot tell whether this machine has {cap}: {why}"),
            );
            false
        }
    }
}

/// Checks a probe of the code under test against the rules: it must accept an expected
/// capability and refuse one the rules say is missing. Returns whether the capability is
/// usable; panics (fails the test) on any disagreement.
pub fn check_probe(test: &str, cap: &str, probe: Result<(), String>) -> bool {
    match (expect(cap), probe) {
        (Expect::Yes, Ok(())) => true,
        (Expect::Yes, Err(e)) => panic!(
            "{test}: the kernel config says this machine has {cap}, but the probe refused it: {e}"
        ),
        (Expect::No(why), Ok(())) => panic!(
            "{test}: the probe accepted {cap}, but tests/capabilities.conf says this machine \
             lacks it ({why}): fix the probe, or the rules if the machine changed"
        ),
        (Expect::No(why), Err(e)) => {
            skip(
                test,
                format!("this machine lacks {cap}: {why} (probe: {e})"),
            );
            false
        }
        (Expect::Unknown(why), _) => {
            skip(
                test,
                format!("cannot tell whether this machine has {cap}: {why}"),
            );
            false
        }
    }
}
