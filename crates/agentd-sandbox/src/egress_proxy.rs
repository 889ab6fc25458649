//! The host side of a run's egress: an HTTP proxy served by the supervisor on a Unix
//! socket in the run's scratch dir, for one run only. It understands `CONNECT host:port`
//! (tunnels, used for HTTPS) and absolute-URI requests (`GET http://host/path`, forwarded
//! as one request with `Connection: close`). Everything else is refused.
//!
//! Each request is vetted by `egress.rs` (host on the run's list, every resolved address
//! outside the deny list) and connected to a vetted address, never resolved twice. The
//! proxy is a future owned by `Sandbox::run`: when the run ends it is dropped, and so is
//! every connection (the `JoinSet` aborts its tasks).

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::egress::{EgressSettings, host_allowed, is_denied};
use crate::error::SandboxError;
use crate::loopback_bridge::{Bridge, MAX_CONNECTIONS, bind_host_socket};
use crate::namespaces::IdMapping;

/// The port the proxy listens on inside every run that may reach the outside.
pub(crate) const PROXY_PORT: u16 = 3128;
/// The proxy socket's name in the run's scratch dir.
const SOCKET_NAME: &str = "egress.sock";

/// The variables that point HTTP clients at the proxy; the loopback stays direct.
fn proxy_env() -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    let mut env: Vec<(String, String)> = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
        .into_iter()
        .map(|name| (name.to_owned(), url.clone()))
        .collect();
    for name in ["NO_PROXY", "no_proxy"] {
        env.push((name.to_owned(), "localhost,127.0.0.1,::1".to_owned()));
    }
    env
}
/// Largest request head (request line and headers) the proxy reads.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long resolving a name, and then connecting to it, may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What one run's proxy lets through.
#[derive(Debug)]
pub(crate) struct Policy {
    pub hosts: Vec<String>,
    pub settings: EgressSettings,
}

/// One run's proxy: its socket, bound in the run dir, its policy, and what it refused.
pub(crate) struct RunProxy {
    listener: UnixListener,
    policy: Arc<Policy>,
    refusals: Refusals,
}

/// Requests a run's proxy refused, as `host:port: reason`, each once, at most
/// [`MAX_REFUSALS_KEPT`]: what the run's owner needs to see why a client got nowhere.
#[derive(Debug, Clone, Default)]
pub(crate) struct Refusals(Arc<std::sync::Mutex<Vec<String>>>);

const MAX_REFUSALS_KEPT: usize = 20;

impl Refusals {
    fn record(&self, line: String) {
        let mut kept = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < MAX_REFUSALS_KEPT && !kept.contains(&line) {
            kept.push(line);
        }
    }

    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl RunProxy {
    /// Binds the proxy socket in `run_dir`, where the run's bridge finds it, usable by the
    /// sandbox's root only (the bridge's host uid), and points the run's `env` at the proxy.
    pub(crate) fn open(
        run_dir: &Path,
        mapping: IdMapping,
        policy: Policy,
        env: &mut Vec<(String, String)>,
    ) -> Result<RunProxy, SandboxError> {
        let listener = bind_host_socket(run_dir, SOCKET_NAME, mapping, "egress proxy")?;
        let proxy_env = proxy_env();
        env.retain(|(name, _)| !proxy_env.iter().any(|(ours, _)| ours == name));
        env.extend(proxy_env);
        Ok(RunProxy { listener, policy: Arc::new(policy), refusals: Refusals::default() })
    }

    /// The bridge that carries the run's proxy port to this socket.
    pub(crate) fn bridge(&self) -> Bridge {
        Bridge { port: PROXY_PORT, socket: SOCKET_NAME.to_owned() }
    }

    /// What this proxy refuses, readable after it is gone.
    pub(crate) fn refusals(&self) -> Refusals {
        self.refusals.clone()
    }

    /// Serves until dropped; dropping it closes every connection it carries.
    pub(crate) async fn serve(self) -> Infallible {
        let RunProxy { listener, policy, refusals } = self;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        loop {
            // Reap finished connections so the set does not grow over a long run.
            while connections.try_join_next().is_some() {}
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return std::future::pending().await; // the semaphore is never closed
            };
            match listener.accept().await {
                Ok((client, _)) => {
                    let policy = policy.clone();
                    let refusals = refusals.clone();
                    connections.spawn(async move {
                        if let Err(e) = handle(client, &policy, &refusals).await {
                            tracing::debug!(error = %e, "egress connection ended with an error");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    // EMFILE and the like: back off briefly instead of spinning on the error.
                    tracing::warn!(error = %e, "egress proxy cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Connect {
        host: String,
        port: u16,
    },
    /// A plain HTTP request, already rewritten for the origin server.
    Forward {
        host: String,
        port: u16,
        head: Vec<u8>,
    },
}

/// Why a request is refused, as an HTTP status and a short reason for the client.
#[derive(Debug, PartialEq, Eq)]
struct Refusal(u16, String);

async fn handle(mut client: UnixStream, policy: &Policy, refusals: &Refusals) -> io::Result<()> {
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(Some(read))) => read,
        Ok(Ok(None)) => return refuse(&mut client, Refusal(431, "request head too large".into())).await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return refuse(&mut client, Refusal(408, "request head not received in time".into())).await,
    };
    let request = match parse(&head) {
        Ok(request) => request,
        Err(refusal) => return refuse(&mut client, refusal).await,
    };
    let (host, port) = match &request {
        Request::Connect { host, port } | Request::Forward { host, port, .. } => (host.clone(), *port),
    };
    let mut upstream = match open_upstream(&host, port, policy).await {
        Ok(upstream) => upstream,
        Err(refusal) => {
            tracing::info!(%host, port, status = refusal.0, reason = %refusal.1, "egress refused");
            refusals.record(format!("{host}:{port}: {}", refusal.1));
            return refuse(&mut client, refusal).await;
        }
    };
    match request {
        Request::Connect { .. } => client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?,
        Request::Forward { head, .. } => upstream.write_all(&head).await?,
    }
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await.map(|_| ())
}

/// Reads up to the end of the request head; returns the head and any bytes after it.
/// `None`: the head is larger than `MAX_HEAD_BYTES`.
async fn read_head(client: &mut UnixStream) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Resume the search a few bytes back: the terminator may straddle two reads.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + end + 4;
            let rest = buf.split_off(end);
            return Ok(Some((buf, rest)));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
    }
}

fn bad(reason: &str) -> Refusal {
    Refusal(400, reason.to_owned())
}

/// Parses a request head into what the proxy does with it.
fn parse(head: &[u8]) -> Result<Request, Refusal> {
    let text = std::str::from_utf8(head).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let [method, target, version] = request_line.split(' ').collect::<Vec<_>>()[..] else {
        return Err(bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("only HTTP/1.x is supported"));
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = split_authority(target, None)?;
        return Ok(Request::Connect { host, port });
    }
    let Some(rest) = strip_prefix_ignore_case(target, "http://") else {
        return Err(bad("send an absolute http:// URI, or CONNECT for https"));
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = match path.split('#').next().unwrap_or_default() {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    let (host, port) = split_authority(authority, Some(80))?;
    let mut out = format!("{method} {path} {version}\r\n");
    // The Host header is the URI's: a different one would let a shared front end route the
    // request to a name that is not on the list.
    let host_header = if port == 80 { host_for_header(&host) } else { format!("{}:{port}", host_for_header(&host)) };
    out.push_str(&format!("Host: {host_header}\r\n"));
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        let hop_by_hop = ["host", "connection", "keep-alive", "proxy-connection", "proxy-authorization"];
        if !hop_by_hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(Request::Forward { host, port, head: out.into_bytes() })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn host_for_header(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

/// `host:port`, `[v6]:port` or (with a default port) a bare host; the host comes back
/// lowercase, without a trailing dot or brackets.
fn split_authority(authority: &str, default_port: Option<u16>) -> Result<(String, u16), Refusal> {
    if authority.contains('@') {
        return Err(bad("credentials in the URI are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unterminated IPv6 literal"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match (port, default_port) {
        (Some(p), _) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("invalid port"))?,
        (None, Some(default)) => default,
        (None, None) => return Err(bad("CONNECT needs host:port")),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let is_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !is_name && host.parse::<IpAddr>().is_err() {
        return Err(bad("invalid host name"));
    }
    Ok((host, port))
}

/// Vets `host` and connects to one of its vetted addresses.
async fn open_upstream(host: &str, port: u16, policy: &Policy) -> Result<TcpStream, Refusal> {
    if !host_allowed(host, &policy.hosts) {
        return Err(Refusal(403, format!("{host} is not on this agent's egress list")));
    }
    let addrs = resolve(host, port, &policy.settings).await?;
    if addrs.is_empty() {
        return Err(Refusal(502, format!("{host} has no address")));
    }
    if addrs.iter().any(|a| is_denied(a.ip(), &policy.settings.allowed_networks)) {
        return Err(Refusal(403, format!("{host} resolves to a private or reserved address")));
    }
    let connect = async {
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| "no address".to_owned(), |e| e.to_string()))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(Refusal(502, format!("cannot connect to {host}: {e}"))),
        Err(_) => Err(Refusal(504, format!("connecting to {host} timed out"))),
    }
}

/// The addresses of `host`: the literal itself, the operator's fixed answer, or DNS.
async fn resolve(host: &str, port: u16, settings: &EgressSettings) -> Result<Vec<SocketAddr>, Refusal> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let fixed: Vec<SocketAddr> = settings
        .resolve
        .iter()
        .filter(|(name, _)| name.trim_end_matches('.').eq_ignore_ascii_case(host))
        .map(|(_, ip)| SocketAddr::new(*ip, port))
        .collect();
    if !fixed.is_empty() {
        return Ok(fixed);
    }
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => Ok(addrs.collect()),
        Ok(Err(_)) => Err(Refusal(502, format!("{host} does not resolve"))),
        Err(_) => Err(Refusal(504, format!("resolving {host} timed out"))),
    }
}

async fn refuse(client: &mut UnixStream, Refusal(status, reason): Refusal) -> io::Result<()> {
    let title = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Gateway Timeout",
    };
    let body = format!("agentd egress: {reason}\n");
    let response = format!(
        "HTTP/1.1 {status} {title}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(head: &str) -> (String, u16, String) {
        match parse(head.as_bytes()) {
            Ok(Request::Forward { host, port, head }) => (host, port, String::from_utf8(head).unwrap()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connect_targets_parse_with_names_and_ip_literals() {
        let parsed = parse(b"CONNECT Api.Example.COM.:443 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parsed, Ok(Request::Connect { host: "api.example.com".into(), port: 443 }));
        let parsed = parse(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n");
        assert_eq!(parsed, Ok(Request::Connect { host: "::1".into(), port: 8443 }));
        for bad in [
            "CONNECT example.com HTTP/1.1\r\n\r\n",
            "CONNECT example.com:0 HTTP/1.1\r\n\r\n",
            "CONNECT exa_mple.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT user@example.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT example.com:443 HTTP/2\r\n\r\n",
        ] {
            assert_eq!(parse(bad.as_bytes()).map_err(|r| r.0), Err(400), "{bad}");
        }
    }

    #[test]
    fn absolute_uris_become_origin_requests_for_the_uris_host_only() {
        let (host, port, head) = forward(
            "GET http://api.example.com:8080/v1?q=1#frag HTTP/1.1\r\nHost: evil.example\r\n\
             Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n",
        );
        assert_eq!((host.as_str(), port), ("api.example.com", 8080));
        assert_eq!(
            head,
            "GET /v1?q=1 HTTP/1.1\r\nHost: api.example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let (_, port, head) = forward("GET http://example.com HTTP/1.0\r\n\r\n");
        assert_eq!(port, 80);
        assert!(head.starts_with("GET / HTTP/1.0\r\nHost: example.com\r\n"), "{head}");
        assert_eq!(parse(b"GET https://example.com/ HTTP/1.1\r\n\r\n").map_err(|r| r.0), Err(400));
        assert_eq!(parse(b"GET /relative HTTP/1.1\r\n\r\n").map_err(|r| r.0), Err(400));
    }
}
