//! The project's test BPF programs (`pwru_ebpf::TEST_OBJECT`), loaded for the tests and VM
//! scenarios that trace them, and the record-writing floors of the kernel_cost bench.

use std::os::fd::{AsFd, BorrowedFd};

use aya::maps::{Array, MapData, RingBuf};
use aya::programs::{tc, BtfTracePoint, SchedClassifier, TcAttachType};
use aya::Ebpf;

use crate::netlab::VethPair;

/// Loads tc classifier `name` from the test object without attaching it (a loaded program is
/// listed whether attached or not); keep the object, the program lives as long as it.
pub fn load_classifier(name: &str) -> Result<Ebpf, String> {
    let mut obj = Ebpf::load(pwru_ebpf::TEST_OBJECT).map_err(|e| format!("test object: {e}"))?;
    classifier(&mut obj, name)?
        .load()
        .map_err(|e| format!("load {name}: {e}"))?;
    Ok(obj)
}

/// Loads tc classifier `name` and attaches it to `pair.if_b`'s ingress from inside B.
pub fn attach_classifier(pair: &VethPair, name: &str) -> Result<Ebpf, String> {
    let dev = pair.if_b.clone();
    let name = name.to_string();
    VethPair::in_netns(&pair.ns_b, move || {
        let mut obj = load_classifier(&name).map_err(std::io::Error::other)?;
        // kernels before 6.6 attach through the clsact qdisc (sch_ingress module)
        let _ = tc::qdisc_add_clsact(&dev);
        classifier(&mut obj, &name)
            .map_err(std::io::Error::other)?
            .attach(&dev, TcAttachType::Ingress)
            .map_err(|e| std::io::Error::other(format!("attach {name}: {e}")))?;
        Ok(obj)
    })
    .map_err(|e| e.to_string())
}

fn classifier<'a>(obj: &'a mut Ebpf, name: &str) -> Result<&'a mut SchedClassifier, String> {
    obj.program_mut(name)
        .ok_or_else(|| format!("no program {name} in the test object"))?
        .try_into()
        .map_err(|e| format!("{name} is not a classifier: {e}"))
}

/// The record-writing floors of the test object (`pwru_test_reserve_floor`, `_copy_floor`,
/// `_event_floor`: a ring buffer record of pwru-rs's size, written in place, copied from a
/// cleared scratch record, and copied with the time, task, CPU and command name), each
/// attached to the `kfree_skb` BTF tracepoint; with their ring buffer, which the caller
/// drains.
pub struct RecordFloors {
    obj: Ebpf,
}

/// The names of [`RecordFloors`]' programs.
pub const RECORD_FLOORS: [&str; 3] = [
    "pwru_test_reserve_floor",
    "pwru_test_copy_floor",
    "pwru_test_event_floor",
];

impl RecordFloors {
    /// Loads and attaches every floor program.
    pub fn attach() -> Result<RecordFloors, String> {
        let mut obj =
            Ebpf::load(pwru_ebpf::TEST_OBJECT).map_err(|e| format!("test object: {e}"))?;
        let btf = aya::Btf::from_sys_fs().map_err(|e| format!("kernel BTF: {e}"))?;
        for name in RECORD_FLOORS {
            let p: &mut BtfTracePoint = obj
                .program_mut(name)
                .ok_or_else(|| format!("no program {name} in the test object"))?
                .try_into()
                .map_err(|e| format!("{name} is not a BTF tracepoint: {e}"))?;
            p.load("kfree_skb", &btf)
                .map_err(|e| format!("load {name}: {e}"))?;
            p.attach().map_err(|e| format!("attach {name}: {e}"))?;
        }
        Ok(RecordFloors { obj })
    }

    /// The ring buffer the floors write to (once: later calls get `None`).
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        RingBuf::try_from(self.obj.take_map("pwru_test_ring")?).ok()
    }

    /// Records the floors could not write because their ring buffer was full (a failed
    /// write costs less than a real one, so floors measured with any are too low).
    pub fn ring_full(&self) -> Result<u64, String> {
        let map = self
            .obj
            .map("pwru_test_ring_full")
            .ok_or("no map pwru_test_ring_full in the test object")?;
        let counts: Array<&MapData, u64> =
            Array::try_from(map).map_err(|e| format!("pwru_test_ring_full: {e}"))?;
        counts
            .get(&0, 0)
            .map_err(|e| format!("pwru_test_ring_full: {e}"))
    }

    /// The loaded program `name` (one of [`RECORD_FLOORS`]), to read its run statistics.
    pub fn program_fd(&self, name: &str) -> Option<BorrowedFd<'_>> {
        self.obj.program(name)?.fd().ok().map(|fd| fd.as_fd())
    }
}
