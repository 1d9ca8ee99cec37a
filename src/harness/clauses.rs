//! Small grammars of stage and contract clauses: transitions, candidates, budgets.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::markdown::code_spans;
use super::model::{OnFailure, Reflection, Selection, Then};

/// The most a retry or jump may repeat: bounds keep every run finite.
pub const MAX_REPEAT: u32 = 10;
pub const MAX_CANDIDATES: u32 = 16;
pub const DEFAULT_REFLECTION_BYTES: u32 = 4000;

static RETRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^retry(?:\s+(?:up\s+to|at\s+most))?(?:\s+(\d+)\s+times?|\s+once|\s+twice)?$")
        .expect("static regex")
});
static GOTO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^go\s+(?:back\s+)?to\s+(?:stage\s+)?`?([A-Za-z0-9_-]+)`?(?:\s*,?\s*(?:at\s+most|up\s+to)\s+(\d+)\s+times?|\s*,?\s*at\s+most\s+(once|twice))?$")
        .expect("static regex")
});
static BYTES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)at\s+most\s+([\d,_]+)\s*(bytes?|b|kb|kib|k)?").expect("static regex")
});

fn words(s: &str) -> String {
    s.trim()
        .trim_end_matches('.')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn bound(n: Option<&str>, word: Option<&str>) -> Result<Option<u32>, String> {
    let n = match (n, word.map(str::to_lowercase).as_deref()) {
        (Some(n), _) => n
            .parse::<u32>()
            .map_err(|_| format!("`{n}` is not a count"))?,
        (None, Some("once")) => 1,
        (None, Some("twice")) => 2,
        _ => return Ok(None),
    };
    if n == 0 || n > MAX_REPEAT {
        return Err(format!(
            "the bound must be between 1 and {MAX_REPEAT}, not {n}"
        ));
    }
    Ok(Some(n))
}

/// Why a transition could not be read; `Unbounded` gets its own diagnostic code.
#[derive(Debug, PartialEq, Eq)]
pub enum ClauseError {
    Unbounded(String),
    Invalid(String),
}

pub fn on_failure(text: &str) -> Result<OnFailure, ClauseError> {
    let t = words(text);
    match t.to_lowercase().as_str() {
        "stop" | "fail" | "stop the run" | "fail the run" => return Ok(OnFailure::Stop),
        "continue" | "continue anyway" => return Ok(OnFailure::Continue),
        _ => {}
    }
    if let Some(c) = RETRY.captures(&t) {
        let word = c.get(0).and_then(|m| {
            let s = m.as_str().to_lowercase();
            ["once", "twice"].into_iter().find(|w| s.ends_with(w))
        });
        return match bound(c.get(1).map(|m| m.as_str()), word).map_err(ClauseError::Invalid)? {
            Some(max) => Ok(OnFailure::Retry { max }),
            None => Err(ClauseError::Unbounded(
                "a retry needs a bound: `retry up to 2 times`".into(),
            )),
        };
    }
    if let Some((stage, max)) = goto(&t)? {
        return Ok(OnFailure::GoTo { stage, max });
    }
    Err(ClauseError::Invalid(format!(
        "`{t}` is not an on-failure action; write `retry up to N times`, `go back to STAGE, at most N times`, `stop` or `continue`"
    )))
}

pub fn then(text: &str) -> Result<Then, ClauseError> {
    let t = words(text);
    match t.to_lowercase().as_str() {
        "next" | "next stage" | "continue" => return Ok(Then::Next),
        "finish" | "finish the run" | "done" | "end" => return Ok(Then::Finish),
        _ => {}
    }
    if let Some((stage, max)) = goto(&t)? {
        return Ok(Then::GoTo { stage, max });
    }
    Err(ClauseError::Invalid(format!(
        "`{t}` is not a transition; write `next`, `finish` or `go to STAGE, at most N times`"
    )))
}

fn goto(t: &str) -> Result<Option<(String, u32)>, ClauseError> {
    let Some(c) = GOTO.captures(t) else {
        return Ok(None);
    };
    let stage = c[1].to_string();
    match bound(c.get(2).map(|m| m.as_str()), c.get(3).map(|m| m.as_str()))
        .map_err(ClauseError::Invalid)?
    {
        Some(max) => Ok(Some((stage, max))),
        None => Err(ClauseError::Unbounded(format!(
            "the jump to `{stage}` needs a bound: `go back to {stage}, at most 2 times`"
        ))),
    }
}

pub fn candidates(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("`{text}` is not a number of candidates"))?;
    if n == 0 || n > MAX_CANDIDATES {
        return Err(format!("candidates must be between 1 and {MAX_CANDIDATES}"));
    }
    Ok(n)
}

pub fn selection(text: &str) -> Result<Selection, String> {
    let t = words(text).to_lowercase();
    if matches!(
        t.as_str(),
        "first passing" | "first that passes" | "first that passes the gates" | "gates"
    ) {
        return Ok(Selection::FirstPassing);
    }
    if let Some(rest) = t
        .strip_prefix("ranked by ")
        .or_else(|| t.strip_prefix("gates then ranked by "))
        .or_else(|| t.strip_prefix("gates, then ranked by "))
    {
        let role = code_spans(rest)
            .first()
            .map_or(rest.trim(), |s| s)
            .trim()
            .to_string();
        if !role.is_empty() && !role.contains(' ') {
            return Ok(Selection::RankedBy { role });
        }
    }
    Err(format!(
        "`{t}` is not a selection rule; write `first passing` or `ranked by ROLE`"
    ))
}

pub fn reflection(text: &str) -> Result<Reflection, String> {
    let path = code_spans(text)
        .first()
        .map(|s| s.to_string())
        .or_else(|| {
            text.split([',', ' '])
                .next()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .ok_or("name the reflection file: `artifacts/reflection.md`, at most 4000 bytes")?;
    let max_bytes = match BYTES.captures(text) {
        Some(c) => {
            let n: u32 = c[1]
                .replace([',', '_'], "")
                .parse()
                .map_err(|_| "the size is not a number")?;
            let unit = c.get(2).map_or("", |m| m.as_str()).to_lowercase();
            if unit.starts_with('k') { n * 1024 } else { n }
        }
        None => DEFAULT_REFLECTION_BYTES,
    };
    if max_bytes == 0 {
        return Err("a reflection must be allowed at least 1 byte".into());
    }
    Ok(Reflection { path, max_bytes })
}

/// A count such as `400000`, `400,000`, `400k` or `1.5M`.
pub fn count(text: &str) -> Result<u64, String> {
    let t = text.trim().replace([',', '_', ' '], "");
    let t = t.trim_end_matches("tokens").trim_end_matches("calls");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    let n: f64 = num.parse().map_err(|_| {
        format!(
            "`{}` is not a count; write e.g. `400000` or `400k`",
            text.trim()
        )
    })?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("`{}` is not a count", text.trim()));
    }
    Ok((n * mult).round() as u64)
}

/// A duration such as `30 min`, `90 s`, `1 h` or `1h30m`.
/// A resource limit: `none` (or `unlimited`) for no limit, else what `value` reads.
pub fn limit<T>(
    text: &str,
    value: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match text.trim().trim_end_matches('.').to_lowercase().as_str() {
        "none" | "unlimited" | "no limit" => Ok(None),
        _ => value(text).map(Some),
    }
}

/// A size: `512 MiB`, `4 GiB`, `2GB`, `1048576` (bytes). Decimal and binary units both count in
/// powers of 1024, as memory is sold.
pub fn bytes(text: &str) -> Result<u64, String> {
    let t = text.trim().trim_end_matches('.').replace([',', '_'], "");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!(
            "`{}` is not a size; write e.g. `4 GiB` or `512 MiB`",
            text.trim()
        )
    })?;
    let mult: u64 = match unit.trim().to_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => return Err(format!("`{u}` is not a size unit; use KiB, MiB or GiB")),
    };
    let v = n * mult as f64;
    if !(v >= 1.0 && v < u64::MAX as f64) {
        return Err(format!("`{}` is out of range", text.trim()));
    }
    Ok(v as u64)
}

pub fn duration(text: &str) -> Result<Duration, String> {
    static PART: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)")
            .expect("static regex")
    });
    let t = text.trim();
    let mut total = 0.0;
    let mut parts = 0;
    for c in PART.captures_iter(t) {
        let n: f64 = c[1].parse().map_err(|_| "not a number")?;
        total += n * match c[2].to_lowercase().chars().next() {
            Some('h') => 3600.0,
            Some('m') => 60.0,
            _ => 1.0,
        };
        parts += 1;
    }
    // Everything must be a number with a unit: `30 minutes or so` is not a duration.
    let leftover = PART.replace_all(t, "");
    if parts == 0 || !leftover.trim().is_empty() {
        return Err(format!(
            "`{t}` is not a duration; write e.g. `30 min`, `90 s` or `1h30m`"
        ));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Dollars such as `$2.50`, `2.5 USD` or `2 dollars`.
pub fn cost(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let num = t
        .trim_start_matches('$')
        .trim_end_matches("USD")
        .trim_end_matches("usd")
        .trim_end_matches("dollars")
        .trim();
    match num.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("`{t}` is not a cost; write e.g. `$2.50`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_limits() {
        assert_eq!(bytes("4 GiB").unwrap(), 4 << 30);
        assert_eq!(bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(bytes("1.5 GB").unwrap(), 3 << 29);
        assert_eq!(bytes("1048576").unwrap(), 1 << 20);
        assert!(bytes("lots").unwrap_err().contains("not a size"));
        assert!(bytes("3 parsecs").unwrap_err().contains("size unit"));
        assert!(bytes("0").is_err());
        assert_eq!(limit("none", bytes).unwrap(), None);
        assert_eq!(limit("Unlimited.", count).unwrap(), None);
        assert_eq!(limit("2 GiB", bytes).unwrap(), Some(2 << 30));
        assert_eq!(
            limit("10 min", duration).unwrap(),
            Some(Duration::from_secs(600))
        );
    }

    #[test]
    fn on_failure_forms() {
        assert_eq!(on_failure("stop").unwrap(), OnFailure::Stop);
        assert_eq!(
            on_failure("retry up to 2 times").unwrap(),
            OnFailure::Retry { max: 2 }
        );
        assert_eq!(
            on_failure("Retry once.").unwrap(),
            OnFailure::Retry { max: 1 }
        );
        assert_eq!(
            on_failure("go back to plan, at most 3 times").unwrap(),
            OnFailure::GoTo {
                stage: "plan".into(),
                max: 3
            }
        );
        assert!(matches!(
            on_failure("retry"),
            Err(ClauseError::Unbounded(_))
        ));
        assert!(matches!(
            on_failure("go back to plan"),
            Err(ClauseError::Unbounded(_))
        ));
        assert!(matches!(
            on_failure("retry 99 times"),
            Err(ClauseError::Invalid(_))
        ));
        assert!(matches!(on_failure("panic"), Err(ClauseError::Invalid(_))));
    }

    #[test]
    fn then_forms() {
        assert_eq!(then("finish").unwrap(), Then::Finish);
        assert_eq!(
            then("go to `verify`, at most twice").unwrap(),
            Then::GoTo {
                stage: "verify".into(),
                max: 2
            }
        );
    }

    #[test]
    fn values() {
        assert_eq!(count("400k").unwrap(), 400_000);
        assert_eq!(count("1.5M").unwrap(), 1_500_000);
        assert_eq!(count("400,000").unwrap(), 400_000);
        assert!(count("lots").is_err());
        assert_eq!(duration("30 min").unwrap().as_secs(), 1800);
        assert_eq!(duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(duration("90 s").unwrap().as_secs(), 90);
        assert!(duration("soon").is_err());
        assert_eq!(cost("$2.50").unwrap(), 2.5);
        assert_eq!(cost("2 USD").unwrap(), 2.0);
        assert!(cost("free").is_err());
        assert_eq!(
            reflection("`artifacts/r.md`, at most 2,000 bytes")
                .unwrap()
                .max_bytes,
            2000
        );
        assert_eq!(
            selection("ranked by `selector`").unwrap(),
            Selection::RankedBy {
                role: "selector".into()
            }
        );
        assert_eq!(candidates("3").unwrap(), 3);
        assert!(candidates("40").is_err());
    }
}
