//! The project's test BPF programs (`pwru_ebpf::TEST_OBJECT`), loaded for the tests and VM
//! scenarios that trace them.

use aya::programs::{tc, SchedClassifier, TcAttachType};
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
