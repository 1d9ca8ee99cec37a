//! Designs: which variants of a harness a matrix compares.
//!
//! Every variant states exactly which modules are on; modules the design does not list are off
//! in every variant, so results never depend on the modules' `enabled` defaults. The `default`
//! design reads those defaults once, when the matrix is built, and records what they turn on.
//!
//! A design file lists variants explicitly:
//!
//! ```toml
//! baseline = "basic"          # optional; default: the first variant
//! [[variant]]
//! name = "basic"
//! modules = []
//! [[variant]]
//! name = "verifier+state"
//! modules = ["verifier", "file-backed-state"]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::AblationError;

/// More listed modules than this make a factorial design of thousands of variants: refused.
pub const MAX_FACTORIAL_MODULES: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Design {
    /// One variant, `default`: the harness as it is, each module on or off as it says itself.
    /// What `nlah ablate HARNESS TASKS` runs without `--module`: an evaluation of the harness.
    Default,
    /// `basic` (all listed modules off) plus `+M` for each listed module.
    OneAtATime,
    /// `full` (all listed modules on) plus `-M` for each listed module.
    LeaveOneOut,
    /// Every combination of the listed modules.
    Factorial,
    /// Variants from a TOML file.
    File(PathBuf),
}

impl Design {
    /// A design keyword, or else the path of a design file.
    pub fn parse(s: &str) -> Design {
        match s {
            "default" => Design::Default,
            "one-at-a-time" => Design::OneAtATime,
            "leave-one-out" => Design::LeaveOneOut,
            "factorial" => Design::Factorial,
            path => Design::File(PathBuf::from(path)),
        }
    }

    /// The name recorded in the matrix: the keyword, or the file's stem.
    pub fn name(&self) -> String {
        match self {
            Design::Default => "default".into(),
            Design::OneAtATime => "one-at-a-time".into(),
            Design::LeaveOneOut => "leave-one-out".into(),
            Design::Factorial => "factorial".into(),
            Design::File(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
        }
    }
}

/// A variant before composition: its name and the modules it turns on (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: String,
    pub modules: Vec<String>,
}

/// The variants of a design and the default baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variants {
    pub variants: Vec<VariantSpec>,
    pub baseline: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DesignFile {
    baseline: Option<String>,
    #[serde(default)]
    variant: Vec<FileVariant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVariant {
    name: String,
    #[serde(default)]
    modules: Vec<String>,
}

fn spec(name: impl Into<String>, modules: impl IntoIterator<Item = String>) -> VariantSpec {
    let set: BTreeSet<String> = modules.into_iter().collect();
    VariantSpec {
        name: name.into(),
        modules: set.into_iter().collect(),
    }
}

/// The listed modules without repeats, in the order given.
fn dedup(listed: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    listed
        .iter()
        .filter(|m| seen.insert(m.as_str()))
        .cloned()
        .collect()
}

/// Expands a design over the listed modules. A file design reads its variants from the file; when
/// modules are listed too, its variants may only use those. The default design's one variant
/// turns on `on_by_default`, the modules the harness itself enables.
pub fn variants(
    design: &Design,
    listed: &[String],
    on_by_default: &[String],
) -> Result<Variants, AblationError> {
    let listed = dedup(listed);
    if !matches!(design, Design::File(_) | Design::Default) && listed.is_empty() {
        return Err(AblationError::Design(format!(
            "the {} design needs the modules to ablate: give --module M (repeatable)",
            design.name()
        )));
    }
    let out = match design {
        Design::File(path) => return from_file(path, &listed),
        Design::Default if !listed.is_empty() => {
            return Err(AblationError::Design(format!(
                "the default design runs the harness as it is (each module on or off as it says itself), so it takes no --module (given: {}); leave out --design to ablate them one at a time, or give another design",
                listed.join(", ")
            )));
        }
        Design::Default => Variants {
            variants: vec![spec("default", on_by_default.iter().cloned())],
            baseline: "default".into(),
        },
        Design::OneAtATime => {
            let mut v = vec![spec("basic", [])];
            v.extend(listed.iter().map(|m| spec(format!("+{m}"), [m.clone()])));
            Variants {
                variants: v,
                baseline: "basic".into(),
            }
        }
        Design::LeaveOneOut => {
            let mut v = vec![spec("full", listed.iter().cloned())];
            v.extend(
                listed
                    .iter()
                    .map(|m| spec(format!("-{m}"), listed.iter().filter(|o| *o != m).cloned())),
            );
            Variants {
                variants: v,
                baseline: "full".into(),
            }
        }
        Design::Factorial => {
            let k = listed.len();
            if k > MAX_FACTORIAL_MODULES {
                return Err(AblationError::Design(format!(
                    "a factorial design over {k} modules has {} variants; list at most {MAX_FACTORIAL_MODULES} modules, or write a design file",
                    1u64 << k
                )));
            }
            // Fewest modules first, then in the order listed: basic, a, b, a+b.
            let mut masks: Vec<u32> = (0..(1u32 << k)).collect();
            masks.sort_by_key(|m| {
                let bits: Vec<usize> = (0..k).filter(|i| m & (1 << i) != 0).collect();
                (bits.len(), bits)
            });
            let v = masks
                .into_iter()
                .map(|m| {
                    let on: Vec<String> = (0..k)
                        .filter(|i| m & (1 << i) != 0)
                        .map(|i| listed[i].clone())
                        .collect();
                    let name = if on.is_empty() {
                        "basic".to_string()
                    } else {
                        on.join("+")
                    };
                    spec(name, on)
                })
                .collect();
            Variants {
                variants: v,
                baseline: "basic".into(),
            }
        }
    };
    check_distinct(&out.variants, None)?;
    Ok(out)
}

fn from_file(path: &Path, listed: &[String]) -> Result<Variants, AblationError> {
    let bad = |message: String| AblationError::BadFile {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(AblationError::Design(format!(
            "unknown design `{}`: give default, one-at-a-time, leave-one-out, factorial, or a design file (TOML with [[variant]] name = \"…\" modules = [\"…\"])",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(AblationError::io(path))?;
    let file: DesignFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if file.variant.is_empty() {
        return Err(bad(
            "no variants: add [[variant]] tables with a name and modules".into(),
        ));
    }
    let mut variants = Vec::new();
    for v in file.variant {
        if v.name.trim().is_empty() {
            return Err(bad("a variant has an empty name".into()));
        }
        if !listed.is_empty()
            && let Some(m) = v.modules.iter().find(|m| !listed.contains(m))
        {
            return Err(bad(format!(
                "variant `{}` turns on `{m}`, which is not among the --module flags ({})",
                v.name,
                listed.join(", ")
            )));
        }
        variants.push(spec(v.name, v.modules));
    }
    let baseline = match file.baseline {
        Some(b) => b,
        None => variants[0].name.clone(),
    };
    check_distinct(&variants, Some(path))?;
    if !variants.iter().any(|v| v.name == baseline) {
        return Err(bad(format!("the baseline `{baseline}` is not a variant")));
    }
    Ok(Variants { variants, baseline })
}

/// Two variants with one name, or with one set of modules, would make the same cells twice.
fn check_distinct(variants: &[VariantSpec], file: Option<&Path>) -> Result<(), AblationError> {
    let err = |message: String| match file {
        Some(p) => AblationError::BadFile {
            path: p.to_path_buf(),
            message,
        },
        None => AblationError::Design(message),
    };
    for (i, a) in variants.iter().enumerate() {
        for b in &variants[..i] {
            if a.name == b.name {
                return Err(err(format!("two variants are named `{}`", a.name)));
            }
            if a.modules == b.modules {
                return Err(err(format!(
                    "variants `{}` and `{}` turn on the same modules",
                    b.name, a.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The designs over modules none of which is on by default.
    fn variants(design: &Design, listed: &[String]) -> Result<Variants, AblationError> {
        super::variants(design, listed, &[])
    }

    #[test]
    fn the_default_design_is_the_harness_as_it_is() {
        let v = super::variants(&Design::parse("default"), &[], &l(&["state"])).unwrap();
        assert_eq!(names(&v), [("default", vec!["state"])]);
        assert_eq!(v.baseline, "default");
        let Err(AblationError::Design(e)) = variants(&Design::Default, &l(&["verifier"])) else {
            panic!("--module with the default design")
        };
        assert!(e.contains("takes no --module (given: verifier)"), "{e}");
    }

    fn names(v: &Variants) -> Vec<(&str, Vec<&str>)> {
        v.variants
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.modules.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    fn l(m: &[&str]) -> Vec<String> {
        m.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_at_a_time_is_basic_plus_each() {
        let v = variants(&Design::OneAtATime, &l(&["verifier", "state"])).unwrap();
        assert_eq!(
            names(&v),
            [
                ("basic", vec![]),
                ("+verifier", vec!["verifier"]),
                ("+state", vec!["state"])
            ]
        );
        assert_eq!(v.baseline, "basic");
    }

    #[test]
    fn leave_one_out_is_full_minus_each() {
        let v = variants(&Design::LeaveOneOut, &l(&["verifier", "state", "verifier"])).unwrap();
        assert_eq!(
            names(&v),
            [
                ("full", vec!["state", "verifier"]),
                ("-verifier", vec!["state"]),
                ("-state", vec!["verifier"])
            ]
        );
        assert_eq!(v.baseline, "full");
    }

    #[test]
    fn factorial_has_every_combination() {
        let v = variants(&Design::Factorial, &l(&["verifier", "self-evolution", "c"])).unwrap();
        assert_eq!(v.variants.len(), 8);
        assert_eq!(v.variants[0].name, "basic");
        assert_eq!(v.variants[1].name, "verifier");
        assert_eq!(v.variants[4].name, "verifier+self-evolution");
        assert_eq!(v.variants[4].modules, ["self-evolution", "verifier"]);
        assert_eq!(v.variants[7].name, "verifier+self-evolution+c");
        assert_eq!(v.baseline, "basic");
        let too_many: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
        assert!(variants(&Design::Factorial, &too_many).is_err());
    }

    #[test]
    fn builtin_designs_need_modules() {
        assert!(matches!(
            variants(&Design::OneAtATime, &[]),
            Err(AblationError::Design(_))
        ));
    }

    #[test]
    fn design_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mine.toml");
        std::fs::write(
            &p,
            "[[variant]]\nname = \"none\"\n\n[[variant]]\nname = \"both\"\nmodules = [\"b\", \"a\"]\n",
        )
        .unwrap();
        let d = Design::parse(p.to_str().unwrap());
        assert_eq!(d.name(), "mine");
        let v = variants(&d, &[]).unwrap();
        assert_eq!(names(&v), [("none", vec![]), ("both", vec!["a", "b"])]);
        assert_eq!(v.baseline, "none");
        assert!(
            variants(&d, &l(&["a"])).is_err(),
            "b is not among the listed modules"
        );

        std::fs::write(&p, "baseline = \"x\"\n[[variant]]\nname = \"a\"\n").unwrap();
        assert!(variants(&d, &[]).is_err(), "unknown baseline");
        std::fs::write(
            &p,
            "[[variant]]\nname = \"a\"\n[[variant]]\nname = \"b\"\nmodules = []\n",
        )
        .unwrap();
        assert!(variants(&d, &[]).is_err(), "same modules twice");
        std::fs::write(&p, "[[variant]]\nname = \"a\"\nmodule = [\"x\"]\n").unwrap();
        assert!(variants(&d, &[]).is_err(), "unknown key");
        assert!(matches!(
            variants(&Design::parse("no-such-design"), &[]),
            Err(AblationError::Design(_))
        ));
    }
}
