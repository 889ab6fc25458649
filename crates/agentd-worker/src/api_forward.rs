//! A run's way back to the platform's API. Every run reaches it at `AGENTD_API_URL`
//! (`http://127.0.0.1:8470` inside the sandbox), through the sandbox's host forward, which
//! carries each connection from the run's loopback to the API address this worker uses:
//! the address `agentd serve` bound for its own worker, the `--server` of `agentd worker`.
//! For an `https://` server the host side originates TLS (rustls with the platform's
//! roots, as the worker's own client does), so the agent speaks plain HTTP to its
//! loopback and the bytes leave the machine encrypted.
//!
//! The forward is the same for every run and carries no authority of its own: what a run
//! may do there is what its `AGENTD_TOKEN` allows.

use std::io;
use std::sync::Arc;

use agentd_sandbox::{ConnectFuture, ForwardStream, ForwardTarget, HostForward, TcpTarget};
use rustls::pki_types::ServerName;
use rustls_platform_verifier::BuilderVerifierExt;
use tokio::net::TcpStream;

/// The port of the API on every run's own loopback.
pub const API_PORT: u16 = 8470;

/// The platform's API as this worker reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAddress {
    /// A host name or an IP address (without brackets).
    pub host: String,
    pub port: u16,
    /// Whether the API is served over TLS (`https://`).
    pub tls: bool,
    /// The path the API is served under (`""`, or `/prefix` without a trailing slash).
    pub path_prefix: String,
}

impl ApiAddress {
    /// `AGENTD_API_URL` as a run sees it: its own loopback, with the API's path prefix.
    pub fn url_in_run(&self) -> String {
        format!("http://127.0.0.1:{API_PORT}{}", self.path_prefix)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS to the API at {host}: {source}")]
pub struct ApiForwardError {
    host: String,
    source: rustls::Error,
}

/// The host forward every run gets.
pub(crate) fn host_forward(api: &ApiAddress) -> Result<HostForward, ApiForwardError> {
    let plain = TcpTarget { host: api.host.clone(), port: api.port };
    let target: Arc<dyn ForwardTarget> = match api.tls {
        false => Arc::new(plain),
        true => Arc::new(TlsTarget::new(plain)?),
    };
    Ok(HostForward { port: API_PORT, target })
}

/// A TCP target reached over TLS, the server's certificate checked against the host name.
struct TlsTarget {
    plain: TcpTarget,
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tls://{}:{}", self.plain.host, self.plain.port)
    }
}

impl TlsTarget {
    fn new(plain: TcpTarget) -> Result<TlsTarget, ApiForwardError> {
        let failed = |source| ApiForwardError { host: plain.host.clone(), source };
        let name = ServerName::try_from(plain.host.clone())
            .map_err(|e| failed(rustls::Error::General(format!("not a host name: {e}"))))?;
        // The process's one provider (ring, DEPENDENCIES.md), named here rather than looked
        // up, so the worker does not depend on who installed the default first.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(failed)?
            .with_no_client_auth();
        Ok(TlsTarget { plain, name, connector: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }
}

impl ForwardTarget for TlsTarget {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let tcp = TcpStream::connect((self.plain.host.as_str(), self.plain.port)).await?;
            tcp.set_nodelay(true)?;
            let tls = self.connector.connect(self.name.clone(), tcp).await.map_err(io::Error::other)?;
            Ok(Box::new(tls) as Box<dyn ForwardStream>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reaches_the_api_on_its_loopback_under_the_apis_path() {
        let api = ApiAddress { host: "api.example.com".into(), port: 443, tls: true, path_prefix: "/agentd".into() };
        assert_eq!(api.url_in_run(), "http://127.0.0.1:8470/agentd");
        let forward = host_forward(&api).map_err(|e| e.to_string());
        assert_eq!(
            forward.map(|f| (f.port, format!("{:?}", f.target))),
            Ok((8470, "tls://api.example.com:443".into()))
        );
        let plain = ApiAddress { tls: false, path_prefix: String::new(), ..api };
        assert_eq!(plain.url_in_run(), "http://127.0.0.1:8470");
    }
}
