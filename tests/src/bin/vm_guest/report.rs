//! The guest -> host protocol: one machine-readable line per fact.
//!
//! ```text
//! RESULT <backend> <scenario> pass|fail|skip <detail>
//! METRIC <name> <value>
//! INFO <text>
//! DONE <number of failed results>
//! ```
//! Lines go to the second serial port (`/dev/ttyS1`, a file on the host that nothing else
//! writes to, so kernel messages can never split a line) and are echoed on stdout (the console
//! log) for people. Outside a VM, stdout alone is used. A skip detail that starts with
//! `unsupported:` states a kernel capability; the host checks it against the kernel's config.

use std::fs::{File, OpenOptions};
use std::io::Write;

/// Result of one scenario on one backend.
#[derive(Debug)]
pub enum Outcome {
    /// It worked; the detail says what was seen.
    Pass(String),
    /// It did not work; the detail says what happened.
    Fail(String),
    /// It could not run here; the detail says why (`unsupported: ...` for kernel facts).
    Skip(String),
}

impl Outcome {
    /// A skip that states a missing kernel capability (checked by the host against the config).
    pub fn unsupported(why: impl std::fmt::Display) -> Self {
        Outcome::Skip(format!("unsupported: {why}"))
    }
}

/// Writes protocol lines and counts failures.
pub struct Reporter {
    channel: Option<File>,
    /// Failed results so far.
    pub failures: usize,
}

impl Reporter {
    /// Uses `/dev/ttyS1` when it exists (inside the harness VM), stdout only otherwise.
    pub fn new() -> Self {
        let channel = if std::env::var_os("PWRU_VM_NO_SERIAL").is_none() {
            OpenOptions::new()
                .write(true)
                .open("/dev/ttyS1")
                .ok()
                .filter(|_| std::path::Path::new("/etc/pwru-vm-guest").exists())
        } else {
            None
        };
        Reporter {
            channel,
            failures: 0,
        }
    }

    fn line(&mut self, text: &str) {
        // one write per line: the host never sees half a line from us
        let mut line = text.replace(['\n', '\r'], " ");
        line.push('\n');
        if let Some(ch) = self.channel.as_mut() {
            let _ = ch.write_all(line.as_bytes());
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    /// Reports one scenario result.
    pub fn result(&mut self, backend: &str, scenario: &str, outcome: &Outcome) {
        let (status, detail) = match outcome {
            Outcome::Pass(d) => ("pass", d),
            Outcome::Fail(d) => {
                self.failures += 1;
                ("fail", d)
            }
            Outcome::Skip(d) => ("skip", d),
        };
        let detail = if detail.is_empty() { "-" } else { detail };
        self.line(&format!("RESULT {backend} {scenario} {status} {detail}"));
    }

    /// Reports one measurement; `name` has no spaces (e.g. `attach_ms.kprobe`).
    pub fn metric(&mut self, name: &str, value: f64) {
        self.line(&format!("METRIC {name} {value:.3}"));
    }

    /// Free text for the log.
    pub fn info(&mut self, text: &str) {
        self.line(&format!("INFO {text}"));
    }

    /// The last line: the host treats a run without it as crashed.
    pub fn done(&mut self) {
        let n = self.failures;
        self.line(&format!("DONE {n}"));
    }
}
