//! String similarity for repairs: 1 − edit distance / the longer length, over characters, where
//! the edit distance counts a swap of two neighbouring characters as one edit (optimal string
//! alignment), the commonest typo.

/// Edits between `a` and `b`: insertions, deletions, substitutions, neighbour swaps.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// Similarity in [0, 1]: 1 for equal strings.
pub fn ratio(a: &str, b: &str) -> f64 {
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - distance(a, b) as f64 / longest as f64
}

/// Lower case, brackets and punctuation as spaces, single spaces: how actions are compared.
pub fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one candidate at least `min` similar to `word`, strictly better than every other.
pub fn unique_best<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    min: f64,
) -> Option<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (ratio(word, c), c))
        .filter(|(r, _)| *r >= min)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    match scored.as_slice() {
        [(_, c)] => Some(c),
        [(a, c), (b, _), ..] if a > b => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_normal_forms() {
        assert_eq!(ratio("abc", "abc"), 1.0);
        assert!((ratio("kitten", "sitting") - (1.0 - 3.0 / 7.0)).abs() < 1e-9);
        assert_eq!(distance("mvoe", "move"), 1);
        assert_eq!(normalize("[A,  c]"), "a c");
        assert_eq!(unique_best("pth", ["path", "patch"], 0.55), Some("path"));
        assert_eq!(unique_best("xyz", ["path"], 0.55), None);
    }
}
