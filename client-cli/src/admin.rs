//! `toron admin …`: the HTTP JSON API under `/api/v1`, with the caller's bearer token.

use anyhow::{bail, Context};
use serde_json::Value;

/// `ws://host:port/…` → `http://host:port` (and `wss` → `https`).
pub fn http_base(server: &str) -> String {
    let (scheme, rest) = server.split_once("://").unwrap_or(("ws", server));
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    let scheme = if scheme == "wss" || scheme == "https" {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// A client of the admin API.
#[derive(Debug)]
pub struct Admin {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Admin {
    pub fn new(server: &str, token: Option<String>, timeout: std::time::Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        Self {
            base: http_base(server),
            token,
            agent,
        }
    }

    /// `GET path` as text (reports in HTML, Markdown or CSV).
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        String::from_utf8(self.get_bytes(path)?).context("the answer is not text")
    }

    /// `GET path`: the answer's bytes (a file such as a spreadsheet), or the error it gave.
    pub fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{}", self.base, path);
        let mut r = self.agent.get(&url);
        if let Some(t) = &self.token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = r
            .call()
            .with_context(|| format!("could not reach {}", self.base))?;
        if !resp.status().is_success() {
            return answer(resp).map(|v| v.to_string().into_bytes());
        }
        resp.body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()
            .context("the answer could not be read")
    }

    /// `POST path` with a raw JSON body (a bundle file as it is); returns the JSON answer.
    pub fn post_bytes(&self, path: &str, body: Vec<u8>) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path);
        let mut r = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        let resp = r
            .send(&body[..])
            .with_context(|| format!("could not reach {}", self.base))?;
        answer(resp)
    }

    /// Calls `method path` with an optional JSON body; returns the JSON answer, or the
    /// server's error message.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (m, body) => {
                let mut r = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.delete(&url).force_send_body(),
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send_json(body.unwrap_or(Value::Null))
            }
        };
        let resp = result.with_context(|| format!("could not reach {}", self.base))?;
        answer(resp)
    }
}

/// The JSON of an answer, or the server's error message.
fn answer(mut resp: ureq::http::Response<ureq::Body>) -> anyhow::Result<Value> {
    {
        let status = resp.status();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let msg = json
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| json.to_string());
            if status.as_u16() == 401 {
                bail!("401 {msg}; {}", crate::sync_client::TOKEN_HINT);
            }
            bail!("{} {msg}", status.as_u16());
        }
        Ok(json)
    }
}
