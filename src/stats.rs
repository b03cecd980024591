//! Fixed-size latency histograms for the real-time threads.
//!
//! [`Histogram`] is a log-linear (HDR-style) histogram of nanosecond values: 64 octaves, each
//! split into [`SUB_BUCKETS`] linear sub-buckets, so every recorded value is known to within
//! 1/32 (about 3 %) of itself from 0 ns to beyond 10^18 ns. Its storage is one array allocated
//! when it is created; [`Histogram::record`] never allocates, locks or fails, so it is safe to
//! call inside the haptic tick.

/// Linear sub-buckets per power of two.
pub const SUB_BUCKETS: usize = 32;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
const OCTAVES: usize = 64 - SUB_BITS as usize + 1;
const BUCKETS: usize = OCTAVES * SUB_BUCKETS;

/// A fixed-size histogram of durations in nanoseconds.
///
/// ```
/// let mut h = haptwin::stats::Histogram::new();
/// for ns in [1_000, 2_000, 3_000, 50_000] {
///     h.record(ns);
/// }
/// assert_eq!(h.count(), 4);
/// assert_eq!(h.max(), 50_000);
/// let p50 = h.quantile(0.5) as f64;
/// assert!((p50 - 2_000.0).abs() / 2_000.0 < 0.04); // within the 3 % resolution
/// ```
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max_ns: u64,
    min_ns: u64,
    sum_ns: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("min_ns", &self.min())
            .field("max_ns", &self.max_ns)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB_BUCKETS as u64 {
        return v as usize;
    }
    // Octave k >= 1 holds [2^(k+SUB_BITS-1), 2^(k+SUB_BITS)).
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let octave = (msb - SUB_BITS + 1) as usize;
    let shift = msb - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB_BUCKETS - 1);
    octave * SUB_BUCKETS + sub
}

/// The lowest value that falls into `bucket`, and the bucket's width.
fn bucket_range(bucket: usize) -> (u64, u64) {
    let octave = bucket / SUB_BUCKETS;
    let sub = (bucket % SUB_BUCKETS) as u64;
    if octave == 0 {
        return (sub, 1);
    }
    let shift = octave as u32 - 1;
    let width = 1u64 << shift;
    (((SUB_BUCKETS as u64) + sub) << shift, width)
}

impl Histogram {
    /// An empty histogram (allocates its fixed storage once).
    pub fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max_ns: 0,
            min_ns: u64::MAX,
            sum_ns: 0,
        }
    }

    /// Records one value. Never allocates.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket_of(ns)] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
        self.min_ns = self.min_ns.min(ns);
        self.sum_ns += ns as u128;
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest recorded value (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max_ns
    }

    /// Smallest recorded value (exact), 0 when empty.
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min_ns
        }
    }

    /// Mean of the recorded values (exact), 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.total as f64
        }
    }

    /// The value below which a fraction `q` (0..=1) of the recorded values lie, taken as the
    /// middle of its bucket and clamped to the exact min and max. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = bucket_range(bucket);
                let mid = lo + width / 2;
                return mid.clamp(self.min(), self.max_ns);
            }
        }
        self.max_ns
    }

    /// Adds every value of `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max_ns = self.max_ns.max(other.max_ns);
        self.min_ns = self.min_ns.min(other.min_ns);
        self.sum_ns += other.sum_ns;
    }
}

/// Percentiles of a histogram, in the unit named by the field that holds them (`lateness_us`,
/// `frame_ms`), as reported by `demo --json` and `doctor --json`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Summarises `h` (nanoseconds) in microseconds, to 0.1 µs.
    pub fn of_ns_in_us(h: &Histogram) -> Self {
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        Self {
            p50: us(h.quantile(0.50)),
            p99: us(h.quantile(0.99)),
            p999: us(h.quantile(0.999)),
            max: us(h.max()),
            mean: (h.mean() / 1000.0 * 10.0).round() / 10.0,
        }
    }

    /// Summarises `h` (nanoseconds) in milliseconds, to 1 µs (frame times). All zero when
    /// `h` is empty.
    pub fn of_ns_in_ms(h: &Histogram) -> Self {
        let ms = |ns: f64| (ns / 1e3).round() / 1e3;
        Self {
            p50: ms(h.quantile(0.50) as f64),
            p99: ms(h.quantile(0.99) as f64),
            p999: ms(h.quantile(0.999) as f64),
            max: ms(h.max() as f64),
            mean: ms(h.mean()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 40, u64::MAX / 3, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last || v > 100_000, "bucket went backwards at {v}");
            last = b;
            let (lo, w) = bucket_range(b);
            assert!(
                lo <= v && v - lo < w,
                "{v} not in bucket {b} = [{lo}, {lo}+{w})"
            );
        }
    }

    #[test]
    fn quantiles_within_resolution() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 10);
        }
        for (q, exact) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64;
            assert!(
                (got - exact).abs() / exact < 1.0 / 16.0,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.min(), 10);
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn empty_and_merge() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.99), 0);
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(5);
        b.record(500);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max(), 500);
        assert_eq!(a.quantile(1.0), 500);
    }
}
