//! Procedural skills: BM25 (k1 1.5, b 0.75) over a harness's skill library, `skills/*.md`
//! (front matter `name`, `description`, optional `tags`; the body is the skill). The index is
//! built once per harness folder and skills fingerprint and shared by every child.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

const K1: f64 = 1.5;
const B: f64 = 0.75;

/// One skill of the library.
#[derive(Debug, Clone, PartialEq)]
pub struct Skill {
    pub name: String,
    pub tags: Vec<String>,
    pub text: String,
}

/// The library with its BM25 statistics, as an inverted index (a query touches only the skills
/// that hold one of its words).
#[derive(Debug, Default)]
pub struct Index {
    skills: Vec<Skill>,
    /// Per term: (skill, its BM25 term weight `f·(k1+1) / (f + k1·(1 − b + b·dl/avgdl))`,
    /// which depends on the skill alone and is computed once).
    postings: HashMap<String, Vec<(u32, f64)>>,
    len: Vec<usize>,
    avgdl: f64,
}

pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

impl Index {
    pub fn new(skills: Vec<Skill>) -> Index {
        let mut ix = Index::default();
        let mut freqs: Vec<HashMap<String, u32>> = Vec::with_capacity(skills.len());
        for s in &skills {
            let mut tf: HashMap<String, u32> = HashMap::new();
            let mut n = 0;
            for t in tokens(&s.text).chain(s.tags.iter().flat_map(|t| tokens(t))) {
                *tf.entry(t).or_default() += 1;
                n += 1;
            }
            freqs.push(tf);
            ix.len.push(n);
        }
        ix.avgdl = ix.len.iter().sum::<usize>() as f64 / ix.len.len().max(1) as f64;
        for (i, tf) in freqs.into_iter().enumerate() {
            let norm = K1 * (1.0 - B + B * ix.len[i] as f64 / ix.avgdl.max(f64::MIN_POSITIVE));
            for (t, f) in tf {
                let f = f64::from(f);
                ix.postings
                    .entry(t)
                    .or_default()
                    .push((i as u32, f * (K1 + 1.0) / (f + norm)));
            }
        }
        ix.skills = skills;
        ix
    }

    pub fn len(&self) -> usize {
        self.skills.len()
    }

    pub fn is_empty(&self) -> bool {
        self.skills.is_empty()
    }

    /// The best `k` skills for `query` with a positive score, best first (ties by name);
    /// non-empty `tags` keep only skills carrying one of them.
    pub fn top(&self, query: &str, k: usize, tags: &[&str]) -> Vec<&Skill> {
        let mut q: Vec<String> = tokens(query).collect();
        q.sort();
        q.dedup();
        let n = self.skills.len() as f64;
        // Dense scores: one slot per skill, the touched ones listed.
        let mut scores = vec![0.0f64; self.skills.len()];
        let mut touched: Vec<u32> = Vec::new();
        for t in &q {
            let Some(post) = self.postings.get(t) else {
                continue;
            };
            let df = post.len() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(i, w) in post {
                let slot = &mut scores[i as usize];
                if *slot == 0.0 {
                    touched.push(i);
                }
                *slot += idf * w;
            }
        }
        let mut scored: Vec<(f64, usize)> = touched
            .into_iter()
            .map(|i| (scores[i as usize], i as usize))
            .filter(|(s, i)| {
                *s > 0.0
                    && (tags.is_empty()
                        || self.skills[*i]
                            .tags
                            .iter()
                            .any(|t| tags.contains(&t.as_str())))
            })
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.skills[a.1].name.cmp(&self.skills[b.1].name))
        });
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| &self.skills[i])
            .collect()
    }
}

/// Reads `dir/*.md` in name order; files that cannot be read are skipped (nlah check reports them).
pub fn load(dir: &Path) -> Vec<Skill> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md") && p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            Some(parse(&stem, &text))
        })
        .collect()
}

/// A skill file: optional front matter (`name`, `description`, `tags: [a, b]` or `tags: a, b`),
/// then the body. The description and the body make the text.
pub fn parse(stem: &str, text: &str) -> Skill {
    let (front, body) = match text
        .strip_prefix("---\n")
        .and_then(|r| r.split_once("\n---"))
    {
        Some((f, b)) => (f, b.trim_start_matches('-').trim()),
        None => ("", text.trim()),
    };
    let mut name = stem.to_string();
    let mut tags = Vec::new();
    let mut description = String::new();
    for line in front.lines() {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            match k.trim() {
                "name" => name = v.trim_matches('"').to_string(),
                "description" => description = v.trim_matches('"').to_string(),
                "tags" => {
                    tags = v
                        .trim_matches(['[', ']'])
                        .split(',')
                        .map(|t| t.trim().trim_matches('"').to_string())
                        .filter(|t| !t.is_empty())
                        .collect()
                }
                _ => {}
            }
        }
    }
    let text = if description.is_empty() {
        body.to_string()
    } else {
        format!("{description} {body}")
    };
    Skill { name, tags, text }
}

/// Indexes by skills folder and a hash of its skills.
type Cache = HashMap<(std::path::PathBuf, u64), Arc<Index>>;

/// The index of a harness's `skills/`, built once per folder and content (a changed library is a
/// new harness version, and gets its own index).
pub fn index_for(dir: &Path) -> Arc<Index> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let skills = load(dir);
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for s in &skills {
            s.name.hash(&mut h);
            s.text.hash(&mut h);
            s.tags.hash(&mut h);
        }
        (dir.to_path_buf(), h.finish())
    };
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut g = cache.lock().unwrap_or_else(|p| p.into_inner());
    g.entry(key)
        .or_insert_with(|| Arc::new(Index::new(skills)))
        .clone()
}

/// At most `words` words of `text`.
pub fn cap_words(text: &str, words: usize) -> String {
    text.split_whitespace()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_ranks_the_matching_skill_first() {
        let ix = Index::new(vec![
            parse(
                "a",
                "---\nname: hanoi\ntags: [puzzle]\n---\nMove the smallest disk every other move.",
            ),
            parse("b", "Guess the middle of the range, then halve it."),
            parse(
                "c",
                "---\ntags: puzzle\n---\nRead the board before each move.",
            ),
        ]);
        let top = ix.top("tower of hanoi: move the disk", 2, &[]);
        assert_eq!(top[0].name, "hanoi");
        assert_eq!(ix.top("guess the number", 1, &[])[0].name, "b");
        assert!(
            ix.top("guess the number", 3, &["puzzle"])
                .iter()
                .all(|s| s.tags.contains(&"puzzle".to_string()))
        );
        assert_eq!(cap_words("a b c d", 2), "a b");
    }
}
