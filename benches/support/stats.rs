//! Sample summaries the benchmarks print.

use std::time::Duration;

/// The median of `samples`, and a line: `median 12.3 ms, min …, max … (n=9)`.
pub fn median_min_max(mut samples: Vec<Duration>) -> (Duration, String) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = samples[samples.len() / 2];
    let text = format!(
        "median {:.1} ms, min {:.1} ms, max {:.1} ms (n={})",
        ms(median),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
    (median, text)
}
