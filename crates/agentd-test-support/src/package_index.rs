//! The public package indexes (PyPI, npm) for the tests that install real packages.
//!
//! They are an outside service: when they cannot be reached the tests skip with one line
//! on stderr, except under `CI`, where they must be reachable and a miss is a failure.
//! Some networks serve them from a private or reserved address (a mirror, a proxy);
//! [`package_index_networks`] lists the addresses to exempt from the egress proxy's deny
//! list, as an operator of such a network would.

use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use crate::{in_ci, note_once};

/// The hosts a build reaches with the default index settings.
const HOSTS: [&str; 3] = ["pypi.org", "files.pythonhosted.org", "registry.npmjs.org"];

static FOUND: OnceLock<Result<Vec<IpAddr>, String>> = OnceLock::new();
static SKIP_NOTE: Once = Once::new();

fn probe() -> Result<Vec<IpAddr>, String> {
    let mut addresses = Vec::new();
    for host in HOSTS {
        let resolved: Vec<_> =
            (host, 443).to_socket_addrs().map_err(|e| format!("{host} does not resolve ({e})"))?.collect();
        let reachable = resolved.iter().any(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(3)).is_ok());
        if !reachable {
            return Err(format!("{host}:443 does not answer"));
        }
        addresses.extend(resolved.iter().map(|addr| addr.ip()));
    }
    addresses.sort();
    addresses.dedup();
    Ok(addresses)
}

/// `AGENTD_EGRESS_ALLOWED_NETWORKS` for a server whose builds must reach the public
/// indexes here, or `None` (after one note on stderr) when they cannot be reached and
/// this is not CI. Panics under CI when they cannot be reached.
pub fn package_index_networks() -> Option<String> {
    match FOUND.get_or_init(probe) {
        Ok(addresses) => Some(
            addresses
                .iter()
                .map(|ip| if ip.is_ipv4() { format!("{ip}/32") } else { format!("{ip}/128") })
                .collect::<Vec<_>>()
                .join(","),
        ),
        Err(why) if in_ci() => panic!("the package indexes are unreachable ({why}), and CI is set, where they must be"),
        Err(why) => {
            note_once(&SKIP_NOTE, &format!("skipping the tests that install packages from PyPI and npm: {why}"));
            None
        }
    }
}
