//! The HTTP side both providers share: one endpoint's client (call timeout, no proxy for
//! loopback servers), posting a request and reading its answer, and turning failures (no
//! connection, a timeout, a non-2xx status, an error object in a body) into [`ModelError`]s
//! that retry decisions can classify.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde::Serialize;
use serde_json::Value;

use super::ModelError;
use super::retry::parse_retry_after;
use super::sse::{Answer, read_answer};

/// Generous, because a slow local model on two cores can take minutes for one answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of an error body is kept: enough to see the provider's message, not a whole page.
const ERROR_BODY_LIMIT: usize = 2048;

/// How a provider wants its key.
pub(crate) enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key as the value of a header of its own, e.g. `x-api-key`.
    Header(&'static str),
}

/// Where one provider's requests go, the pooled client that sends them, and the key they carry.
pub(crate) struct Endpoint {
    client: reqwest::Client,
    /// The URL as configured, named in errors.
    url: String,
    parsed: Url,
    api_key: Option<String>,
    auth: Auth,
    timeout: Duration,
}

impl Endpoint {
    /// `{base_url}{path}`, e.g. a base `http://127.0.0.1:8080/v1/` and `/chat/completions`. A
    /// blank key counts as none.
    pub fn new(
        base_url: String,
        path: &str,
        api_key: Option<String>,
        auth: Auth,
        timeout: Duration,
    ) -> Result<Self, ModelError> {
        let base = base_url.trim().trim_end_matches('/');
        let url = format!("{base}{path}");
        let parsed = parse_base(&url)?;
        Ok(Endpoint {
            client: http_client(&parsed, timeout)?,
            url,
            parsed,
            api_key: api_key.filter(|k| !k.trim().is_empty()),
            auth,
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn host(&self) -> Option<&str> {
        self.parsed.host_str()
    }

    /// The fields a backend's `Debug` shows: whether there is a key, never the key itself.
    pub fn debug<'a, 'b>(
        &self,
        f: &'a mut fmt::Formatter<'b>,
        name: &str,
        model: &str,
    ) -> fmt::DebugStruct<'a, 'b> {
        let mut d = f.debug_struct(name);
        d.field("endpoint", &self.url)
            .field("model", &model)
            .field("has_key", &self.api_key.is_some())
            .field("timeout", &self.timeout);
        d
    }

    /// Posts `body` as JSON with the provider's own `headers` and the key, and reads a
    /// successful answer.
    pub async fn post(
        &self,
        body: &impl Serialize,
        headers: &[(&'static str, &'static str)],
    ) -> Result<Answer, ModelError> {
        let mut http = self.client.post(&self.url);
        for (name, value) in headers {
            http = http.header(*name, *value);
        }
        http = {
            let _p = crate::profile::phase(crate::profile::Phase::Request);
            http.json(body)
        };
        if let Some(key) = &self.api_key {
            http = match self.auth {
                Auth::Bearer => http.bearer_auth(key),
                Auth::Header(name) => http.header(name, key),
            };
        }
        let resp = http
            .send()
            .await
            .map_err(|e| send_error(e, &self.url, self.timeout))?;
        if !resp.status().is_success() {
            return Err(http_error(&self.url, resp).await);
        }
        read_answer(resp, &self.url, self.timeout).await
    }

    /// GETs the sibling path `path` of this endpoint (`/chat/completions` → `/models`) as JSON,
    /// with the key, within 10 s; `None` on any failure (what it asks is optional).
    pub async fn get_sibling(&self, own: &str, path: &str) -> Option<Value> {
        let url = format!("{}{path}", self.url.strip_suffix(own)?);
        let mut http = self.client.get(&url).timeout(Duration::from_secs(10));
        if let Some(key) = &self.api_key {
            http = match self.auth {
                Auth::Bearer => http.bearer_auth(key),
                Auth::Header(name) => http.header(name, key),
            };
        }
        let resp = http.send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// Names this endpoint in an error the body reported (the parsers do not know it).
    pub fn locate(&self, e: ModelError) -> ModelError {
        match e {
            ModelError::Http {
                url,
                status,
                body,
                retry_after,
            } if url.is_empty() => ModelError::Http {
                url: self.url.clone(),
                status,
                body,
                retry_after,
            },
            other => other,
        }
    }
}

/// A key, unless the server is on this machine (local servers need none).
pub(crate) fn required_key(
    base: &str,
    key: Option<String>,
    var: &'static str,
) -> Result<Option<String>, ModelError> {
    let key = key.filter(|k| !k.trim().is_empty());
    if key.is_none() && !is_loopback(base) {
        return Err(ModelError::MissingKey { var });
    }
    Ok(key)
}

/// An error object a provider sent in a body (HTTP 200 or inside a stream), as the HTTP error it
/// stands for: its message, or the whole object when it has none.
pub(crate) fn provider_http_error(err: &Value, status: u16) -> ModelError {
    let body = err["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| err.to_string());
    ModelError::Http {
        url: String::new(), // filled in by `locate`
        status,
        body: clip(&body, ERROR_BODY_LIMIT),
        retry_after: None,
    }
}

/// The variable's value, unless unset or blank.
pub(crate) fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn parse_base(endpoint: &str) -> Result<Url, ModelError> {
    let url = Url::parse(endpoint)
        .map_err(|e| ModelError::Config(format!("`{endpoint}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ModelError::Config(format!(
            "`{endpoint}` is not an http(s) URL"
        )));
    }
    Ok(url)
}

/// Whether a base URL points at this machine, where servers need no key.
pub fn is_loopback(base: &str) -> bool {
    let Ok(url) = Url::parse(base.trim()) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// A client with the call timeout; loopback servers bypass any proxy from the environment.
fn http_client(url: &Url, timeout: Duration) -> Result<reqwest::Client, ModelError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)));
    if is_loopback(url.as_str()) {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| ModelError::Config(format!("cannot build an HTTP client: {}", chain(&e))))
}

/// An error and its causes, because reqwest's own message hides the useful part.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

/// A failure before any response arrived.
fn send_error(e: reqwest::Error, url: &str, timeout: Duration) -> ModelError {
    if e.is_timeout() {
        timed_out(url, timeout)
    } else {
        ModelError::Unreachable {
            url: url.to_string(),
            reason: chain(&e),
        }
    }
}

/// A failure while the body streamed in: the answer is cut short.
pub(crate) fn body_error(e: reqwest::Error, url: &str, timeout: Duration) -> ModelError {
    if e.is_timeout() {
        timed_out(url, timeout)
    } else {
        ModelError::Malformed(format!("the response from {url} broke off: {}", chain(&e)))
    }
}

fn timed_out(url: &str, timeout: Duration) -> ModelError {
    ModelError::Timeout {
        url: url.to_string(),
        secs: timeout.as_secs(),
    }
}

/// A non-2xx response, with the start of its body and any `Retry-After`.
async fn http_error(url: &str, resp: reqwest::Response) -> ModelError {
    let status = resp.status().as_u16();
    let retry_after = parse_retry_after(resp.headers());
    let body = resp.text().await.unwrap_or_default();
    ModelError::Http {
        url: url.to_string(),
        status,
        body: clip(body.trim(), ERROR_BODY_LIMIT),
        retry_after,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_bases() {
        assert!(is_loopback("http://127.0.0.1:8080/v1"));
        assert!(is_loopback("http://localhost:11434/v1"));
        assert!(is_loopback("http://[::1]:8000"));
        assert!(!is_loopback("https://api.openai.com/v1"));
        assert!(!is_loopback("https://openrouter.ai/api/v1"));
        assert!(!is_loopback("not a url"));
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h…");
        assert_eq!(clip("abc", 5), "abc");
    }
}
