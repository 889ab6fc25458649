#![doc = include_str!("../README.md")]

mod account;
mod admin;
mod agents;
mod audit;
mod error;
mod follow;
mod invocations;
mod members;
mod memory;
mod schedules;
mod threads;
mod triggers;
mod webhooks;
mod worker;

use std::sync::Once;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use audit::AuditFilter;
pub use error::{ClientError, Problem};
pub use follow::{Followed, Follower};
pub use invocations::{InvocationFilter, InvokeOptions};
pub use threads::ThreadFilter;

/// How long to wait for a TCP (and TLS) connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `?limit=&cursor=` of a cursor-paginated list (DESIGN §4). Both absent means the
/// server's default page size, from the start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A handle on one agentd server, optionally authenticated. Cheap to clone: clones share
/// the connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Base URL without a trailing slash; routes are appended as path segments.
    base: Url,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never print it.
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (`http://host:port`, optionally with a path
    /// prefix when the server sits behind a proxy).
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        install_crypto_provider();
        let invalid = |reason: &str| ClientError::InvalidUrl { url: base_url.to_owned(), reason: reason.to_owned() };
        let mut base = Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("it must not have a query or a fragment"));
        }
        base.path_segments_mut().map_err(|()| invalid("it cannot be a base URL"))?.pop_if_empty();
        let http = reqwest::Client::builder()
            .user_agent(concat!("agentd-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Client { http, base, token: None })
    }

    /// The same client, sending `Authorization: Bearer <token>` (an API key or a session
    /// token) on every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// The server's base URL, as given to [`Client::new`] without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Escape hatch for tests: a request to `path` (taken verbatim, e.g. `/v1/agents?x=1`)
    /// with the token applied. The path is not encoded, so it can be anything.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("{}{}", self.base_url(), path);
        self.authorized(self.http.request(method, url))
    }

    /// `GET /healthz`: succeeds when the server answers 2xx.
    pub async fn healthz(&self) -> Result<(), ClientError> {
        let response = self.send(self.route(Method::GET, &["healthz"])?).await?;
        expect_success(response).await.map(drop)
    }

    /// `GET /metrics`: the Prometheus text exposition (the client's token, if any, is
    /// sent as the metrics token).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let response = expect_success(self.send(self.route(Method::GET, &["metrics"])?).await?).await?;
        response.text().await.map_err(ClientError::Transport)
    }

    /// `GET /readyz`: the status (`200` ready, `503` not) and the body naming each check.
    pub async fn readyz(&self) -> Result<(u16, serde_json::Value), ClientError> {
        let response = self.send(self.route(Method::GET, &["readyz"])?).await?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(ClientError::Transport)?;
        let value = serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
            status,
            body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            source,
        })?;
        Ok((status, value))
    }

    /// A request to the route made of `segments`, each percent-encoded, with auth applied.
    pub(crate) fn route(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder, ClientError> {
        Ok(self.authorized(self.http.request(method, self.url(segments)?)))
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut path = self.base.path().trim_end_matches('/').to_owned();
        for segment in segments {
            // URL parsing resolves `.` and `..` even when percent-encoded, so such an id
            // would silently call another route.
            if matches!(*segment, "." | "..") {
                return Err(ClientError::UnsendableSegment { segment: (*segment).to_owned() });
            }
            path.push('/');
            encode_segment(segment, &mut path);
        }
        let mut url = self.base.clone();
        url.set_path(&path);
        Ok(url)
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        let header = self.token.as_ref().and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok());
        match header {
            Some(mut value) => {
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
            None => request,
        }
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        request.send().await.map_err(ClientError::Transport)
    }

    /// Sends `request` and decodes a 2xx JSON body as `T`; anything else is an error.
    pub(crate) async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let response = expect_success(self.send(request).await?).await?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(ClientError::Transport)?;
        serde_json::from_slice(&body).map_err(|e| ClientError::decode(status, &body, e))
    }

    /// Sends `request` and returns the 2xx response as is.
    pub(crate) async fn call_raw(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        expect_success(self.send(request).await?).await
    }

    /// Sends `request` and expects a 2xx answer whose body does not matter.
    pub(crate) async fn call_empty(&self, request: RequestBuilder) -> Result<(), ClientError> {
        expect_success(self.send(request).await?).await.map(drop)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so that no id or slug
/// can add a segment, a query or a fragment to the route.
fn encode_segment(segment: &str, out: &mut String) {
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Passes a 2xx response through; turns any other into [`ClientError::Api`].
async fn expect_success(response: Response) -> Result<Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.map_err(ClientError::Transport)?;
    let problem = Problem::from_response(status.as_u16(), request_id, &body);
    Err(ClientError::Api { status: status.as_u16(), problem: Box::new(problem) })
}

/// reqwest is built without a TLS provider of its own; one process-wide rustls provider
/// (ring) serves it and everything else (DEPENDENCIES.md). Idempotent; call it before
/// building any other reqwest client.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another part of the process installed a provider first; that one
        // serves us just as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_and_the_prefix_is_kept() -> Result<(), ClientError> {
        let client = Client::new("http://127.0.0.1:8080/prefix/")?;
        assert_eq!(client.base_url(), "http://127.0.0.1:8080/prefix");
        let url = client.url(&["v1", "agents", "../x y?#"])?;
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/prefix/v1/agents/..%2Fx%20y%3F%23");
        let dots = client.url(&["v1", "agents", ".."]);
        assert!(matches!(dots, Err(ClientError::UnsendableSegment { .. })));
        Ok(())
    }

    #[test]
    fn a_bare_host_gets_routes_at_the_root() -> Result<(), ClientError> {
        let client = Client::new("http://localhost:9")?;
        assert_eq!(client.url(&["healthz"])?.as_str(), "http://localhost:9/healthz");
        Ok(())
    }

    #[test]
    fn unusable_base_urls_are_refused() {
        for bad in ["", "localhost:8080", "ftp://x", "http://x/?q=1", "mailto:a@b"] {
            assert!(matches!(Client::new(bad), Err(ClientError::InvalidUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn debug_output_redacts_the_token() -> Result<(), ClientError> {
        let client = Client::new("http://localhost:9")?.with_token("agd_secret");
        assert!(!format!("{client:?}").contains("agd_secret"));
        Ok(())
    }
}
