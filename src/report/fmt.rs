//! Numbers the way the NLAH paper prints them: `16.3M`, `211k`, `13.6k`, `642.6`, and Δ as
//! `+1.6`, `-0.8`, `0.0`.

/// A unit and the number of decimals a value of this size is printed with.
fn unit_of(a: f64) -> (f64, &'static str, usize) {
    // Thresholds sit where rounding would carry into the next unit (999.96k prints as 1.0M).
    if a >= 999.95e6 {
        (1e9, "B", 1)
    } else if a >= 99.95e6 {
        (1e6, "M", 0)
    } else if a >= 999.5e3 {
        (1e6, "M", 1)
    } else if a >= 99.95e3 {
        (1e3, "k", 0)
    } else if a >= 999.95 {
        (1e3, "k", 1)
    } else {
        (1.0, "", 1)
    }
}

/// A count or mean in the paper's style.
pub fn human(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let (div, unit, dec) = unit_of(x.abs());
    let s = format!("{:.*}{unit}", dec, x / div);
    no_negative_zero(s)
}

/// A mean and the half-width of its interval in the mean's unit: `16.3M ± 0.4M`, `211k ± 3.2k`.
/// A half-width that needs more than one decimal gives the mean as many: `642.60 ± 0.04`,
/// `0.0000 ± 0.0001` (never `0.0 ± 0.0001`).
pub fn human_pm(mean: f64, half_width: f64) -> String {
    if !mean.is_finite() {
        return "n/a".into();
    }
    let (div, unit, mean_dec) = unit_of(mean.abs());
    let h_dec = spread_decimals(half_width / div, 1);
    let m_dec = if h_dec > 1 {
        mean_dec.max(h_dec)
    } else {
        mean_dec
    };
    let m = no_negative_zero(format!("{:.m_dec$}{unit}", mean / div));
    format!("{m} ± {:.h_dec$}{unit}", half_width / div)
}

/// A value with its interval's half-width, one decimal or as many as show the half-width's first
/// digit (up to 4), the same for both: `84.0 ± 2.1`, `0.50 ± 0.04`.
pub fn fixed_pm(mean: f64, half_width: f64) -> String {
    let dec = spread_decimals(half_width, 1);
    let m = no_negative_zero(format!("{mean:.dec$}"));
    format!("{m} ± {half_width:.dec$}")
}

/// The decimals that show a half-width's first digit: at least `min_dec`, at most 4 (or
/// `min_dec` if that is more).
fn spread_decimals(h: f64, min_dec: usize) -> usize {
    if h > 0.0 && h < 1.0 {
        ((-h.log10()).ceil() as usize).clamp(min_dec, min_dec.max(4))
    } else {
        min_dec
    }
}

/// The decimals [`dollars`] prints an amount with.
fn dollar_decimals(a: f64) -> usize {
    if a >= 0.1 || a == 0.0 {
        2
    } else if a >= 0.001 {
        4
    } else {
        6
    }
}

/// Dollars with an interval, both with the same decimals: `$1.64 ± 0.02`.
pub fn dollars_pm(mean: f64, half_width: f64) -> String {
    let dec = spread_decimals(half_width, dollar_decimals(mean.abs()));
    let m = no_negative_zero(format!("${mean:.dec$}"));
    format!("{m} ± {half_width:.dec$}")
}

/// A difference in points, one decimal, signed unless it rounds to zero.
pub fn delta(d: f64) -> String {
    if !d.is_finite() {
        return "n/a".into();
    }
    let r = (d * 10.0).round() / 10.0;
    if r == 0.0 {
        "0.0".into()
    } else {
        format!("{r:+.1}")
    }
}

/// A value with one decimal (Perf, shares, runtime).
pub fn fixed1(x: f64) -> String {
    no_negative_zero(format!("{x:.1}"))
}

/// Dollars: cents from a dime up, more digits below it (cheap models cost fractions of a cent).
pub fn dollars(x: f64) -> String {
    let dec = dollar_decimals(x.abs());
    no_negative_zero(format!("${x:.dec$}"))
}

fn no_negative_zero(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| matches!(c, '0' | '.' | '$')) => rest.to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mean_and_its_interval_share_their_decimals() {
        assert_eq!(fixed_pm(84.0, 2.1), "84.0 ± 2.1");
        assert_eq!(fixed_pm(0.0, 0.0001), "0.0000 ± 0.0001");
        assert_eq!(fixed_pm(0.5, 0.04), "0.50 ± 0.04");
        assert_eq!(human_pm(211_000.0, 3_200.0), "211k ± 3.2k");
        assert_eq!(human_pm(0.0, 0.0001), "0.0000 ± 0.0001");
        assert_eq!(human_pm(13_600.0, 400.0), "13.6k ± 0.4k");
        assert_eq!(human_pm(642.6, 0.04), "642.60 ± 0.04");
        assert_eq!(dollars_pm(1.64, 0.02), "$1.64 ± 0.02");
        assert_eq!(dollars_pm(0.0, 0.0001), "$0.0000 ± 0.0001");
    }
}
