//! Readers of the kernel programs' per-CPU counters: runs by outcome (among them the records
//! lost to a full ring buffer) and nested record building.

use aya::maps::{MapData, PerCpuArray};

use super::LoaderError;

/// The per-CPU run counters of the event programs, indexed by outcome
/// ([`pwru_ebpf::outcome`]); [`LostCounter::total`] is the ring-full entry.
pub struct LostCounter(pub(super) PerCpuArray<MapData, u64>);

impl LostCounter {
    fn sum(&self, outcome: u32) -> Result<u64, LoaderError> {
        let values = self.0.get(&outcome, 0).map_err(|source| LoaderError::Map {
            name: pwru_ebpf::MAP_RUNS.into(),
            source: Box::new(source),
        })?;
        Ok(values.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
    }

    /// Records lost because the ring buffer was full, summed over all CPUs.
    pub fn total(&self) -> Result<u64, LoaderError> {
        self.sum(pwru_ebpf::outcome::RING_FULL)
    }

    /// Runs by outcome, summed over all CPUs: entry `i` counts outcome `i` of
    /// [`pwru_ebpf::outcome`].
    pub fn outcomes(&self) -> Result<[u64; pwru_ebpf::outcome::COUNT as usize], LoaderError> {
        let mut out = [0u64; pwru_ebpf::outcome::COUNT as usize];
        for (i, slot) in (0u32..).zip(out.iter_mut()) {
            *slot = self.sum(i)?;
        }
        Ok(out)
    }
}

/// The per-CPU record-building depth of the event programs ([`pwru_ebpf::MAP_DEPTH`]).
pub struct NestingCounter(pub(super) PerCpuArray<MapData, u64>);

impl NestingCounter {
    /// Runs that built their record while another run on the same CPU was building one (an
    /// interrupt or another program nested inside it), summed over all CPUs. Each used its
    /// own scratch slot, so neither record was disturbed.
    pub fn nested(&self) -> Result<u64, LoaderError> {
        let values = self
            .0
            .get(&pwru_ebpf::PWRU_DEPTH_NESTED, 0)
            .map_err(|source| LoaderError::Map {
                name: pwru_ebpf::MAP_DEPTH.into(),
                source: Box::new(source),
            })?;
        Ok(values.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
    }
}
