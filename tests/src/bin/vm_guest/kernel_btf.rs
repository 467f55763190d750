//! Kernel BTF ids of attach targets, parsed once from `/sys/kernel/btf/vmlinux`.

use aya_obj::btf::{Btf, BtfKind};

/// Lazily parsed vmlinux BTF.
#[derive(Default)]
pub struct KernelBtf {
    btf: Option<Btf>,
}

impl KernelBtf {
    fn get(&mut self) -> Result<&Btf, String> {
        if self.btf.is_none() {
            let btf = Btf::from_sys_fs().map_err(|e| {
                format!("cannot read /sys/kernel/btf/vmlinux ({e}): kernel without CONFIG_DEBUG_INFO_BTF?")
            })?;
            self.btf = Some(btf);
        }
        self.btf
            .as_ref()
            .ok_or_else(|| "vmlinux BTF not loaded".to_string())
    }

    /// BTF id of the kernel function `name` (target of fentry/fexit).
    pub fn func_id(&mut self, name: &str) -> Result<u32, String> {
        self.get()?
            .id_by_type_name_kind(name, BtfKind::Func)
            .map_err(|e| format!("no BTF function {name}: {e}"))
    }

    /// BTF id of the `btf_trace_<name>` typedef (target of tp_btf).
    pub fn tracepoint_id(&mut self, name: &str) -> Result<u32, String> {
        let typedef = format!("btf_trace_{name}");
        self.get()?
            .id_by_type_name_kind(&typedef, BtfKind::Typedef)
            .map_err(|e| format!("no BTF tracepoint {typedef}: {e}"))
    }
}
