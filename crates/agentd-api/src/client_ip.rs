//! The address a request came from, carried in a task-local like the request id: the
//! peer's address or, when the peer is a proxy the operator trusts, the address that
//! proxy says it forwarded for. Audit entries and per-address limits read it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static CURRENT: Option<IpAddr>;
}

/// The client address of the request being served, if called within one whose peer
/// is known (the server is run with connect info).
pub fn current() -> Option<IpAddr> {
    CURRENT.try_with(|ip| *ip).ok().flatten()
}

/// Which peers are proxies whose `X-Forwarded-For` is believed. None by default: a
/// header anyone can send names nobody.
#[derive(Clone)]
pub struct TrustedProxies(Arc<dyn Fn(IpAddr) -> bool + Send + Sync>);

impl TrustedProxies {
    pub fn new(is_trusted: impl Fn(IpAddr) -> bool + Send + Sync + 'static) -> TrustedProxies {
        TrustedProxies(Arc::new(is_trusted))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from its right end, the first
    /// address that is not a trusted proxy (a proxy appends the address it saw, so only
    /// the entries trusted proxies added are believed).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = peer;
        let hops = forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')).map(str::trim);
        for hop in hops {
            if !(self.0)(client) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(ip) => client = ip,
                // Garbage from a trusted proxy ends the walk at that proxy.
                Err(_) => break,
            }
        }
        client
    }
}

impl Default for TrustedProxies {
    fn default() -> TrustedProxies {
        TrustedProxies::new(|_| false)
    }
}

pub async fn middleware(State(trusted): State<TrustedProxies>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    let client = peer.map(|peer| {
        let headers = request.headers().get_all("x-forwarded-for");
        let forwarded: Vec<&str> = headers.iter().filter_map(|v| v.to_str().ok()).collect();
        trusted.client(peer, &forwarded)
    });
    CURRENT.scope(client, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("203.0.113.9"), &["198.51.100.1"]), ip("203.0.113.9"));
    }

    #[test]
    fn only_the_hops_trusted_proxies_added_are_believed() {
        let trusted = TrustedProxies::new(|ip| ip.is_loopback() || ip == "10.0.0.5".parse::<IpAddr>().unwrap());
        // The client forged the first entry; the proxy at 10.0.0.5 appended what it saw.
        let forwarded = ["1.1.1.1, 198.51.100.7", "10.0.0.5"];
        assert_eq!(trusted.client(ip("127.0.0.1"), &forwarded), ip("198.51.100.7"));
        assert_eq!(trusted.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(trusted.client(ip("127.0.0.1"), &["not-an-address"]), ip("127.0.0.1"));
        // Every hop trusted: the leftmost is the best guess there is.
        assert_eq!(trusted.client(ip("127.0.0.1"), &["10.0.0.5"]), ip("10.0.0.5"));
    }
}
