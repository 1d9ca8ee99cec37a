//! Chat backends by model spec, built once per run and shared by its children. HTTP backends
//! can also be shared by many runs of one process ([`HttpBackends`]): the cells of an ablation
//! then use one client, and its pool of open connections, per model.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::model::anthropic::AnthropicBackend;
use crate::model::openai::OpenAiBackend;
use crate::model::replay::{Recorder, ReplayBackend};
use crate::model::{ChatBackend, ModelError, ModelSpec};

/// Builds and caches backends; `record` wraps every HTTP backend in a cassette recorder.
pub struct Backends {
    record: Option<PathBuf>,
    cache: Mutex<HashMap<String, Arc<dyn ChatBackend>>>,
    http: Arc<HttpBackends>,
}

/// OpenAI and Anthropic backends by model spec, for runs that share them. (Replays keep their
/// place in a cassette, so each run opens its own.)
#[derive(Default)]
pub struct HttpBackends(Mutex<HashMap<String, Arc<dyn ChatBackend>>>);

impl HttpBackends {
    fn get_or_build(&self, spec: &ModelSpec) -> Result<Arc<dyn ChatBackend>, ModelError> {
        let key = spec.to_string();
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = cache.get(&key) {
            return Ok(b.clone());
        }
        let backend: Arc<dyn ChatBackend> = match spec {
            ModelSpec::OpenAi { model } => Arc::new(OpenAiBackend::from_env(model.clone())?),
            ModelSpec::Anthropic { model } => Arc::new(AnthropicBackend::from_env(model.clone())?),
            other => {
                return Err(ModelError::Config(format!(
                    "`{other}` is not served over HTTP"
                )));
            }
        };
        cache.insert(key, backend.clone());
        Ok(backend)
    }
}

/// Checks, before anything is created, that a spec's backend can be built: the cassette of a
/// `replay:` spec reads and parses, an HTTP backend has its key (unless its server is local).
/// Runs and ablations call this first, so a bad spec is a usage error that leaves no workspace.
pub fn preflight(spec: &ModelSpec) -> Result<(), ModelError> {
    match spec {
        ModelSpec::Replay { path } => ReplayBackend::open(path).map(drop),
        ModelSpec::OpenAi { model } => OpenAiBackend::from_env(model.clone()).map(drop),
        ModelSpec::Anthropic { model } => AnthropicBackend::from_env(model.clone()).map(drop),
        ModelSpec::Command { .. } => Ok(()),
    }
}

impl Backends {
    /// `http`: HTTP backends shared with other runs, if any.
    pub fn new(record: Option<PathBuf>, http: Option<Arc<HttpBackends>>) -> Backends {
        Backends {
            record,
            cache: Mutex::new(HashMap::new()),
            http: http.unwrap_or_default(),
        }
    }

    /// The chat backend for a spec (`command:` specs have none: they run whole children).
    pub async fn chat(&self, spec: &ModelSpec) -> Result<Arc<dyn ChatBackend>, ModelError> {
        let key = spec.to_string();
        if let Some(b) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(b.clone());
        }
        let inner: Arc<dyn ChatBackend> = match spec {
            ModelSpec::OpenAi { .. } | ModelSpec::Anthropic { .. } => {
                self.http.get_or_build(spec)?
            }
            ModelSpec::Replay { path } => Arc::new(ReplayBackend::open(path)?),
            ModelSpec::Command { .. } => {
                return Err(ModelError::Config(
                    "a command: backend runs whole children, not chat calls".into(),
                ));
            }
        };
        let backend: Arc<dyn ChatBackend> = match (&self.record, spec) {
            (Some(path), ModelSpec::OpenAi { .. } | ModelSpec::Anthropic { .. }) => {
                Arc::new(Recorder::new(inner, path.clone()).await?)
            }
            _ => inner,
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, backend.clone());
        Ok(backend)
    }
}
