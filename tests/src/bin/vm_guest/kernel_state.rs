//! What a tracer leaves in the kernel: BPF programs, maps, links and kprobes.
//!
//! A snapshot before and after a run (or after killing the process that made them) tells
//! whether everything went away. The kernel frees them asynchronously after the last file
//! descriptor closes, so [`wait_until_back`] polls.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::counters::{self, ObjectKind};

/// The BPF objects and kprobes present at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Program ids.
    pub progs: BTreeSet<u32>,
    /// Map ids.
    pub maps: BTreeSet<u32>,
    /// Link ids.
    pub links: BTreeSet<u32>,
    /// Lines of the kprobe list (one per registered kprobe or kretprobe).
    pub kprobes: BTreeSet<String>,
}

const KPROBE_LIST: &str = "/sys/kernel/debug/kprobes/list";

impl Snapshot {
    /// Reads the current state.
    pub fn take() -> Result<Self, String> {
        let ids = |k| {
            counters::object_ids(k)
                .map(|v| v.into_iter().collect::<BTreeSet<u32>>())
                .map_err(|e| e.to_string())
        };
        // without debugfs (or kprobes) the list is simply empty
        let kprobes = std::fs::read_to_string(KPROBE_LIST)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        Ok(Snapshot {
            progs: ids(ObjectKind::Prog)?,
            maps: ids(ObjectKind::Map)?,
            links: ids(ObjectKind::Link)?,
            kprobes,
        })
    }

    /// What `self` has that `before` had not.
    pub fn added_since(&self, before: &Snapshot) -> Snapshot {
        Snapshot {
            progs: self.progs.difference(&before.progs).copied().collect(),
            maps: self.maps.difference(&before.maps).copied().collect(),
            links: self.links.difference(&before.links).copied().collect(),
            kprobes: self.kprobes.difference(&before.kprobes).cloned().collect(),
        }
    }

    /// What of `objects` is still in `self`.
    pub fn still_present(&self, objects: &Snapshot) -> Snapshot {
        Snapshot {
            progs: self.progs.intersection(&objects.progs).copied().collect(),
            maps: self.maps.intersection(&objects.maps).copied().collect(),
            links: self.links.intersection(&objects.links).copied().collect(),
            kprobes: self
                .kprobes
                .intersection(&objects.kprobes)
                .cloned()
                .collect(),
        }
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.progs.is_empty()
            && self.maps.is_empty()
            && self.links.is_empty()
            && self.kprobes.is_empty()
    }

    /// `progs=N maps=N links=N kprobes=N`.
    pub fn summary(&self) -> String {
        format!(
            "progs={} maps={} links={} kprobes={}",
            self.progs.len(),
            self.maps.len(),
            self.links.len(),
            self.kprobes.len()
        )
    }
}

/// Polls until none of `objects` (ids and kprobes, e.g. those a killed process made) is left,
/// or `limit` passes. Returns how long it took, or what was still there. Only those objects
/// are watched, so others loading programs at the same time cannot confuse it.
pub fn wait_until_gone(objects: &Snapshot, limit: Duration) -> Result<Duration, String> {
    let t0 = Instant::now();
    loop {
        let left = Snapshot::take()?.still_present(objects);
        if left.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() >= limit {
            return Err(format!("still there after {limit:?}: {}", left.summary()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
