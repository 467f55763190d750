//! A bounded latency histogram: log-spaced buckets (four per power of two), so percentiles of
//! any number of samples cost a few hundred bytes at most and are within 12.5% of the truth.

/// Values below this are counted exactly (one bucket each).
const EXACT: u64 = 8;
/// Sub-buckets per power of two (2 bits of mantissa).
const SUB_BITS: u32 = 2;

/// Counts of nanosecond durations in log-spaced buckets.
///
/// Buckets are exact below 8 ns, then four per power of two: a reported percentile is the
/// middle of its bucket, within 12.5% of any sample in it. Memory grows only with the largest
/// value seen (at most 252 counters).
///
/// ```
/// use pwru_core::series::LatencyHistogram;
/// let mut h = LatencyHistogram::default();
/// for ns in 1..=100u64 {
///     h.record(ns * 1000);
/// }
/// let p50 = h.percentile(0.5).unwrap();
/// assert!((44_000..=56_000).contains(&p50), "{p50}");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u32>,
    total: u64,
    max: u64,
}

fn bucket(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 3
    let mantissa = (v >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (EXACT + u64::from(exp - 3) * (1 << SUB_BITS) + mantissa) as usize
}

/// The smallest value in bucket `i` and the bucket's width.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        return (i, 1);
    }
    let exp = (i - EXACT) / (1 << SUB_BITS) + 3;
    let mantissa = (i - EXACT) % (1 << SUB_BITS);
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    ((1u64 << exp) + mantissa * width, width)
}

impl LatencyHistogram {
    /// Counts one duration (nanoseconds).
    pub fn record(&mut self, ns: u64) {
        let i = bucket(ns);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Adds every count of `other` (for merging paths that share an edge).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest duration counted (exact), `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The `q`-quantile (`0.5` for p50, `0.99` for p99; clamped to `0..=1`), as the middle of
    /// its bucket (never above [`max`](Self::max)); `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // The rank of the wanted sample, 1-based: ceil(q * n), at least 1.
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                let (lo, width) = bounds(i);
                return Some((lo + width / 2).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Heap bytes held (for the memory benchmarks).
    pub fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once_and_in_order() {
        let mut last = 0;
        for v in (0..4096u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = bucket(v);
            assert!(i >= last, "bucket of {v} went backwards");
            last = i;
            let (lo, width) = bounds(i);
            assert!(
                lo <= v && v - lo < width,
                "{v} outside bucket {i} [{lo}, +{width})"
            );
        }
        assert!(bucket(u64::MAX) < 252);
    }

    #[test]
    fn percentiles_are_within_an_eighth_of_the_true_value() {
        let mut h = LatencyHistogram::default();
        let samples: Vec<u64> = (1..=10_000u64).map(|i| i * 37).collect();
        for &s in &samples {
            h.record(s);
        }
        for q in [0.5, 0.9, 0.99] {
            let truth = samples[(q * samples.len() as f64).ceil() as usize - 1] as f64;
            let got = h.percentile(q).expect("non-empty") as f64;
            assert!(
                (got - truth).abs() / truth <= 0.125,
                "q {q}: {got} vs {truth}"
            );
        }
        assert_eq!(h.max(), Some(370_000));
        assert_eq!(h.count(), 10_000);
        assert!(LatencyHistogram::default().percentile(0.5).is_none());
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        a.record(10);
        b.record(1_000_000);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.percentile(0.99).unwrap() > 800_000);
        assert!(a.percentile(0.2).unwrap() <= 11);
    }
}
