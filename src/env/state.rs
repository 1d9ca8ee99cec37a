//! What an environment reports about its state, by the convention of docs/ENVIRONMENTS.md:
//! an object under `_meta["nlah/env"]` of a tool result (or `structuredContent["nlah/env"]`),
//! or the result of `env/reset` and `env/state`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The key under which results carry the state, and the capability a server declares.
pub const KEY: &str = "nlah/env";

/// One report of the environment's state. Every field is optional on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvState {
    /// What the agent sees now, in text.
    #[serde(default)]
    pub observation: Option<String>,
    /// The episode's reward so far (the final one once `done`).
    #[serde(default)]
    pub reward: Option<f64>,
    #[serde(default)]
    pub done: bool,
    /// Whether the last action was refused as invalid.
    #[serde(default)]
    pub invalid: bool,
    /// Why it was, in words.
    #[serde(default)]
    pub invalid_reason: Option<String>,
    /// The legal actions of the current state, where the environment can list them.
    #[serde(default)]
    pub legal_actions: Option<Vec<String>>,
}

impl EnvState {
    /// Reads a state object; anything else (a wrong type in a field included) is `None`.
    pub fn from_value(v: &Value) -> Option<EnvState> {
        if !v.is_object() {
            return None;
        }
        let mut s: EnvState = serde_json::from_value(v.clone()).ok()?;
        if s.reward.is_some_and(|r| !r.is_finite()) {
            s.reward = None;
        }
        Some(s)
    }

    /// The state a `tools/call` result carries, if it carries one.
    pub fn in_result(result: &Value) -> Option<EnvState> {
        result
            .get("_meta")
            .and_then(|m| m.get(KEY))
            .or_else(|| result.get("structuredContent").and_then(|m| m.get(KEY)))
            .and_then(EnvState::from_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_are_read_from_meta_or_structured_content() {
        let r = json!({"content": [], "_meta": {"nlah/env": {"observation": "o", "reward": 1, "done": true}}});
        let s = EnvState::in_result(&r).unwrap();
        assert_eq!(s.reward, Some(1.0));
        assert!(s.done);
        let r =
            json!({"structuredContent": {"nlah/env": {"invalid": true, "invalid_reason": "no"}}});
        assert!(EnvState::in_result(&r).unwrap().invalid);
        assert_eq!(
            EnvState::in_result(&json!({"_meta": {"nlah/env": {"done": "yes"}}})),
            None
        );
        assert_eq!(EnvState::in_result(&json!({"content": []})), None);
    }
}
