//! Durations in log-spaced buckets: quantiles with a bounded relative error, in memory that
//! grows with the range of durations seen, not their number.
//!
//! Bucket `i ≥ 1` holds durations in `(MIN·γ^(i−1), MIN·γ^i]` with `γ` = [`GROWTH`]; bucket 0
//! holds everything up to [`MIN_MS`]. A quantile is read as the geometric middle of its
//! bucket, so it is within [`QUANTILE_RELATIVE_ERROR`] (2 %) of a duration that really was at that
//! rank, clamped to the smallest and largest seen (exact at the ends), for durations from
//! 1 µs to about 22 hours (shorter ones read as up to 1 µs, longer ones as at least 22 h).

/// The ratio between consecutive bucket bounds.
pub(crate) const GROWTH: f64 = 1.04;
/// The largest relative error of the p50, p95 and p99 durations in `performance.summary`
/// events: 2 %. Durations are counted in log-spaced buckets (each bound 1.04 times the last);
/// a quantile is read as the geometric middle of its bucket, within `√1.04 − 1` (1.98 %) of
/// a duration that really was at that rank, for durations from 1 µs to about 22 hours. The
/// smallest and largest are exact.
pub const QUANTILE_RELATIVE_ERROR: f64 = 0.02;
/// Durations up to this (1 µs) share bucket 0.
const MIN_MS: f64 = 0.001;
/// The last bucket: durations from about 22 hours up are counted in it.
const MAX_INDEX: usize = 640;

/// Counts of durations per bucket, with their count, sum, smallest and largest.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Histogram {
    /// The bucket index of `counts[0]`.
    offset: usize,
    counts: Vec<u32>,
    count: u64,
    sum_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

fn index(ms: f64) -> usize {
    if ms <= MIN_MS || ms.is_nan() {
        return 0;
    }
    let i = ((ms / MIN_MS).ln() / GROWTH.ln()).ceil();
    (i as usize).min(MAX_INDEX)
}

/// The value bucket `i` stands for: the geometric middle of its bounds.
fn middle(i: usize) -> f64 {
    if i == 0 { MIN_MS } else { MIN_MS * GROWTH.powf(i as f64 - 0.5) }
}

impl Histogram {
    /// Counts one duration, in milliseconds.
    pub(crate) fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
        let at = self.slot(index(ms));
        self.counts[at] = self.counts[at].saturating_add(1);
        if self.count == 0 {
            self.min_ms = ms;
            self.max_ms = ms;
        } else {
            self.min_ms = self.min_ms.min(ms);
            self.max_ms = self.max_ms.max(ms);
        }
        self.count += 1;
        self.sum_ms += ms;
    }

    /// Adds `other`'s durations to these.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        for (at, &n) in other.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let at = self.slot(at + other.offset);
            self.counts[at] = self.counts[at].saturating_add(n);
        }
        if self.count == 0 {
            (self.min_ms, self.max_ms) = (other.min_ms, other.max_ms);
        } else {
            self.min_ms = self.min_ms.min(other.min_ms);
            self.max_ms = self.max_ms.max(other.max_ms);
        }
        self.count += other.count;
        self.sum_ms += other.sum_ms;
    }

    /// The position of bucket `i` in `counts`, growing it to hold `i`.
    fn slot(&mut self, i: usize) -> usize {
        if self.counts.is_empty() {
            self.offset = i;
        }
        if i < self.offset {
            let grow = self.offset - i;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        }
        let at = i - self.offset;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        at
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    #[cfg(test)]
    pub(crate) fn mean_ms(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum_ms / self.count as f64 }
    }

    #[cfg(test)]
    pub(crate) fn max_ms(&self) -> f64 {
        self.max_ms
    }

    /// The duration at quantile `q` (0 to 1): the smallest bucket holding at least
    /// `⌈q·count⌉` durations, read as its middle, clamped to the smallest and largest seen.
    #[cfg(test)]
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        self.quantiles([q])[0]
    }

    #[cfg(test)]
    /// The durations at quantiles `qs`, given in ascending order, as
    /// [`quantile`](Self::quantile) reads each, in one pass over the buckets.
    pub(crate) fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [f64; N] {
        Both(self, None).quantiles(qs)
    }

    /// The bucket indices this histogram has room for.
    fn span(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.counts.len()
    }

    /// The heap the buckets hold.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * size_of::<u32>()
    }

    /// Empties the histogram, keeping its buckets' memory.
    pub(crate) fn clear(&mut self) {
        self.counts.clear();
        self.count = 0;
        self.sum_ms = 0.0;
        self.min_ms = 0.0;
        self.max_ms = 0.0;
    }
}

/// `h`'s counts laid from bucket `from` on (`from` at most its first), zeros around them.
fn laid(h: Option<&Histogram>, from: usize) -> impl Iterator<Item = u32> + '_ {
    let (start, counts) = match h.filter(|h| h.count > 0) {
        Some(h) => (h.offset, h.counts.as_slice()),
        None => (from, &[][..]),
    };
    std::iter::repeat_n(0, start - from).chain(counts.iter().copied()).chain(std::iter::repeat(0))
}

/// Two histograms read as one, without merging them: an operation's past windows and its
/// current one, read as its session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Both<'a>(pub(crate) &'a Histogram, pub(crate) Option<&'a Histogram>);

impl Both<'_> {
    /// Each histogram that counted anything.
    fn parts(&self) -> impl Iterator<Item = &Histogram> {
        [Some(self.0), self.1].into_iter().flatten().filter(|h| h.count > 0)
    }

    pub(crate) fn count(&self) -> u64 {
        self.parts().map(|h| h.count).sum()
    }

    pub(crate) fn mean_ms(&self) -> f64 {
        let count = self.count();
        if count == 0 { 0.0 } else { self.parts().map(|h| h.sum_ms).sum::<f64>() / count as f64 }
    }

    pub(crate) fn max_ms(&self) -> f64 {
        self.parts().map(|h| h.max_ms).fold(0.0, f64::max)
    }

    fn min_ms(&self) -> f64 {
        self.parts().map(|h| h.min_ms).reduce(f64::min).unwrap_or(0.0)
    }

    /// The durations at quantiles `qs`, in ascending order, as if both were one histogram, in
    /// one pass over their buckets.
    pub(crate) fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [f64; N] {
        let mut out = [0.0; N];
        let (count, min, max) = (self.count(), self.min_ms(), self.max_ms());
        if count == 0 {
            return out;
        }
        let from = self.parts().map(|h| h.span().start).min().unwrap_or(0);
        let to = self.parts().map(|h| h.span().end).max().unwrap_or(0);
        let sums = laid(Some(self.0), from).zip(laid(self.1, from)).map(|(a, b)| a + b);
        let mut buckets = (from..to).zip(sums);
        let rank = |q: f64| ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        // The durations counted up to the bucket reached, and that bucket.
        let (mut seen, mut reached) = (0u64, None);
        for (q, out) in qs.into_iter().zip(&mut out) {
            let want = rank(q);
            *out = if want == 1 {
                min
            } else if want >= count {
                max
            } else {
                while seen < want {
                    let Some((i, n)) = buckets.next() else {
                        reached = None;
                        break;
                    };
                    seen += u64::from(n);
                    reached = Some(i);
                }
                reached.map_or(max, |i| middle(i).clamp(min, max))
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact quantile of sorted values, by the same rank rule.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn quantiles_are_within_the_documented_error() {
        assert!(GROWTH.sqrt() - 1.0 <= QUANTILE_RELATIVE_ERROR);
        let mut rng = fastrand::Rng::with_seed(7);
        // Log-uniform from 10 µs to 100 s, the spread of real request latencies.
        let mut values: Vec<f64> = (0..20_000).map(|_| 10f64.powf(rng.f64() * 7.0 - 2.0)).collect();
        let mut h = Histogram::default();
        for v in &values {
            h.record(*v);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let (got, want) = (h.quantile(q), exact(&values, q));
            assert!((got - want).abs() <= want * QUANTILE_RELATIVE_ERROR + 1e-12, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(0.0), values[0], "the ends are exact");
        let qs = [0.0, 0.5, 0.95, 0.99, 1.0];
        assert_eq!(h.quantiles(qs), qs.map(|q| h.quantile(q)), "one pass reads as each alone");
        assert_eq!(h.quantile(1.0), *values.last().unwrap());
        assert_eq!(h.count(), 20_000);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((h.mean_ms() - mean).abs() < 1e-6 * mean);
        assert!(h.heap_bytes() <= 4 * 480, "{} bytes for seven decades", h.heap_bytes());
    }

    #[test]
    fn merged_histograms_answer_as_one() {
        let (mut a, mut b, mut both) = (Histogram::default(), Histogram::default(), Histogram::default());
        for v in 1..=500 {
            a.record(f64::from(v));
            both.record(f64::from(v));
        }
        for v in 9_000..9_500 {
            b.record(f64::from(v) / 100.0);
            both.record(f64::from(v) / 100.0);
        }
        let same = |x: &Histogram, y: &Histogram| {
            assert_eq!((x.count(), x.max_ms(), x.quantile(0.0)), (y.count(), y.max_ms(), y.quantile(0.0)));
            for q in [0.1, 0.5, 0.9, 0.99] {
                assert_eq!(x.quantile(q), y.quantile(q), "q{q}");
            }
            assert!((x.mean_ms() - y.mean_ms()).abs() < 1e-9);
        };
        a.merge(&b);
        same(&a, &both);
        let mut empty = Histogram::default();
        empty.merge(&both);
        same(&empty, &both);
        // Read as one without merging: the same answers.
        let (mut x, mut y) = (Histogram::default(), Histogram::default());
        (1..=500).for_each(|v| x.record(f64::from(v)));
        (9_000..9_500).for_each(|v| y.record(f64::from(v) / 100.0));
        let qs = [0.0, 0.1, 0.5, 0.9, 0.99, 1.0];
        assert_eq!(Both(&x, Some(&y)).quantiles(qs), both.quantiles(qs));
        assert_eq!(Both(&y, Some(&x)).quantiles(qs), both.quantiles(qs));
        assert_eq!(Both(&x, Some(&Histogram::default())).quantiles(qs), x.quantiles(qs));
        assert_eq!((Both(&x, Some(&y)).count(), Both(&x, Some(&y)).max_ms()), (both.count(), both.max_ms()));
        assert!((Both(&x, Some(&y)).mean_ms() - both.mean_ms()).abs() < 1e-9);
    }

    #[test]
    fn edge_values_are_counted_not_lost() {
        let mut h = Histogram::default();
        for v in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12, 5.0] {
            h.record(v);
        }
        assert_eq!(h.count(), 6);
        assert_eq!(h.quantile(0.0), 0.0);
        assert_eq!(h.quantile(1.0), 1e12, "past the last bucket, still the largest seen");
        h.clear();
        assert_eq!((h.count(), h.quantile(0.5), h.mean_ms()), (0, 0.0, 0.0));
        h.record(3.0);
        assert_eq!(h.quantile(0.5), 3.0, "one value is its own every quantile");
    }
}
