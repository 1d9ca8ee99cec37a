//! The statistics the report needs, written out so they can be checked by hand: means, 95%
//! t-intervals over seeds, and the exact McNemar test.

use serde::{Deserialize, Serialize};

/// Two-sided 95% quantiles of Student's t (t_{0.975, df}) for df = 1..=30.
const T975: [f64; 30] = [
    12.706_204_736,
    4.302_652_730,
    3.182_446_305,
    2.776_445_105,
    2.570_581_836,
    2.446_911_851,
    2.364_624_252,
    2.306_004_135,
    2.262_157_163,
    2.228_138_852,
    2.200_985_160,
    2.178_812_830,
    2.160_368_656,
    2.144_786_688,
    2.131_449_546,
    2.119_905_299,
    2.109_815_578,
    2.100_922_040,
    2.093_024_054,
    2.085_963_447,
    2.079_613_845,
    2.073_873_068,
    2.068_657_610,
    2.063_898_562,
    2.059_538_553,
    2.055_529_439,
    2.051_830_516,
    2.048_407_142,
    2.045_229_642,
    2.042_272_456,
];

/// z_{0.975} of the standard normal.
const Z975: f64 = 1.959_963_984_540_054;

/// t_{0.975, df}: the table up to 30 degrees of freedom, beyond it the normal quantile with the
/// Cornish–Fisher correction for t (its error is below 1e-4 from df 31 on, where the bare normal
/// quantile would be 4% too narrow).
pub fn t975(df: usize) -> Option<f64> {
    match df {
        0 => None,
        1..=30 => Some(T975[df - 1]),
        _ => {
            let (z, v) = (Z975, df as f64);
            let g1 = (z.powi(3) + z) / 4.0;
            let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
            Some(z + g1 / v + g2 / (v * v))
        }
    }
}

pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The sample standard deviation (n − 1 in the denominator).
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// The half-width of the 95% t-interval of the mean of `xs` (one value per seed); `None` with
/// fewer than two values, where no interval exists.
pub fn t_half_width(xs: &[f64]) -> Option<f64> {
    let sd = sample_sd(xs)?;
    let t = t975(xs.len() - 1)?;
    Some(t * sd / (xs.len() as f64).sqrt())
}

/// The exact two-sided McNemar test: under the null, the `gained + lost` discordant pairs split
/// as a fair coin, so p = min(1, 2 · P[Binomial(n, 1/2) ≤ min(gained, lost)]). Summed in log
/// space so thousands of pairs neither overflow nor underflow.
pub fn mcnemar_exact(gained: u64, lost: u64) -> f64 {
    let n = gained + lost;
    if n == 0 {
        return 1.0;
    }
    let k = gained.min(lost);
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    // ln C(n, i) by the running ratio C(n, i+1) = C(n, i) · (n − i) / (i + 1).
    let mut ln_c = 0.0_f64;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_c - ln_half_n);
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ln_tail = max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln();
    (2.0 * ln_tail.exp()).min(1.0)
}

/// A mean with its 95% interval over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The per-cell mean (for Perf: passed / scored × 100).
    pub mean: f64,
    /// The interval's half-width: t_{0.975, seeds−1} · sd(per-seed means) / √seeds; `None` with
    /// fewer than two seeds.
    pub half_width: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// Seeds that contributed a per-seed mean.
    pub seeds: usize,
}

impl Estimate {
    /// `mean` is the pooled per-cell mean; the interval's width comes from the spread of the
    /// per-seed means and is centred on `mean`, so the table shows one number and its ±.
    pub fn new(mean: f64, per_seed: &[f64]) -> Estimate {
        let half_width = t_half_width(per_seed);
        Estimate {
            mean,
            half_width,
            lo: half_width.map(|h| mean - h),
            hi: half_width.map(|h| mean + h),
            seeds: per_seed.len(),
        }
    }
}

/// The Wilson score interval of a proportion `k / n` at 95% (in percent), which stays inside
/// 0–100 and is honest for small `n` and rates near 0 or 1, where a normal interval is not.
/// `None` when `n` is 0.
pub fn wilson_pct(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (k, n) = (k.min(n) as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and n the bounds are exactly 0 and 100; rounding must not leave 99.999….
    let lo = if k == 0.0 {
        0.0
    } else {
        (centre - half) * 100.0
    };
    let hi = if k == n {
        100.0
    } else {
        (centre + half) * 100.0
    };
    Some((lo.max(0.0), hi.min(100.0)))
}

#[cfg(test)]
mod wilson_tests {
    use super::wilson_pct;

    #[test]
    fn wilson_matches_known_values_and_stays_in_range() {
        // 7 of 20: 35.0% with the Wilson interval [18.1, 56.7] (Newcombe 1998's method 3).
        let (lo, hi) = wilson_pct(7, 20).unwrap();
        assert!(
            (lo - 18.12).abs() < 0.05 && (hi - 56.71).abs() < 0.05,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_pct(0, 10).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 27.75).abs() < 0.05, "{hi}");
        let (lo, hi) = wilson_pct(10, 10).unwrap();
        assert!((lo - 72.25).abs() < 0.05 && hi == 100.0, "{lo} {hi}");
        assert_eq!(wilson_pct(0, 0), None);
    }
}
