//! Summaries of a sample of durations: mean and nearest-rank percentiles, in milliseconds.
//! Nearest-rank keeps every reported figure an observed one (no interpolation).

use std::time::Duration;

use serde::Serialize;

/// Mean, p50 and p99 of one sample, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub runs: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Summary {
    /// An empty sample has no figures: NaN (`null` in JSON, `n/a` in the table).
    pub fn of(sample: &[Duration]) -> Summary {
        let mut ms: Vec<f64> = sample.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean_ms = ms.iter().sum::<f64>() / ms.len() as f64;
        Summary { runs: ms.len(), mean_ms, p50_ms: nearest_rank(&ms, 50), p99_ms: nearest_rank(&ms, 99) }
    }
}

/// The smallest value with at least `percent` % of the sorted sample at or below it.
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// `a / b`, or NaN when `b` is not positive (printed as `n/a`).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_are_observed_values_by_nearest_rank() {
        let sample: Vec<u64> = (1..=100).rev().collect();
        let summary = Summary::of(&ms(&sample));
        assert_eq!((summary.p50_ms, summary.p99_ms, summary.runs), (50.0, 99.0, 100));
        assert_eq!(summary.mean_ms, 50.5);
    }

    #[test]
    fn a_single_run_is_every_percentile_and_an_empty_sample_has_none() {
        let one = Summary::of(&ms(&[7]));
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        let none = Summary::of(&[]);
        assert!(none.mean_ms.is_nan() && none.p50_ms.is_nan() && none.p99_ms.is_nan());
    }

    #[test]
    fn a_ratio_over_zero_is_not_a_number() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert!(ratio(1.0, 0.0).is_nan());
    }
}
