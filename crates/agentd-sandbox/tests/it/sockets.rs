//! Which sockets a program can open: Unix, IPv4, IPv6 and netlink route sockets (name
//! lookups need the last), and no other address family, whatever the call looks like.

use agentd_sandbox::Termination;

use crate::Test;
use crate::support::TestEnv;

pub fn tests() -> Vec<Test> {
    vec![
        (
            "unix_ip_and_netlink_route_sockets_open_and_name_lookups_work",
            unix_ip_and_netlink_route_sockets_open_and_name_lookups_work,
        ),
        (
            "hostile_sockets_of_other_families_fail_with_eafnosupport",
            hostile_sockets_of_other_families_fail_with_eafnosupport,
        ),
    ]
}

/// Prints `<name> ok` or `<name> <errno name>` for each attempt.
const ATTEMPT: &str = r#"
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, make):
    try:
        made = make()
        for s in made if isinstance(made, tuple) else (made,):
            s.close()
        print(name, 'ok')
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def raw(name, nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r >= 0:
        os.close(r)
    print(name, 'ok' if r >= 0 else errno.errorcode.get(ctypes.get_errno()))
"#;

fn unix_ip_and_netlink_route_sockets_open_and_name_lookups_work() {
    let env = TestEnv::new();
    let code = format!(
        r#"{ATTEMPT}
attempt('unix_stream', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
attempt('unix_datagram', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
attempt('unix_pair', lambda: socket.socketpair(socket.AF_UNIX))
attempt('tcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
attempt('tcp6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
attempt('netlink_route', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
found = socket.getaddrinfo('localhost', 80, 0, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
print('getaddrinfo_addrconfig', ' '.join(sorted(set(f[4][0] for f in found))))
"#
    );
    let run = env.python(&code, |_| {});
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(
        run.stdout(),
        [
            "unix_stream ok",
            "unix_datagram ok",
            "unix_pair ok",
            "tcp ok",
            "udp ok",
            "tcp6 ok",
            "netlink_route ok",
            "getaddrinfo_addrconfig 127.0.0.1",
        ]
    );
    // Node's default `dns.lookup` asks getaddrinfo with AI_ADDRCONFIG.
    let lookup = "require('dns').lookup('localhost', (err, address) => console.log(err ? err.code : address))";
    let run = env.run(env.spec("/usr/bin/node", &["-e", lookup])).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert!(["127.0.0.1", "::1"].contains(&run.stdout()[0]), "{:?}", run.lines);
    env.assert_contained_and_healthy();
}

fn hostile_sockets_of_other_families_fail_with_eafnosupport() {
    let env = TestEnv::new();
    let mut code = format!(
        r#"{ATTEMPT}
for name, family, kind in [('vsock', 40, socket.SOCK_STREAM), ('packet', 17, socket.SOCK_RAW),
        ('alg', 38, socket.SOCK_SEQPACKET), ('bluetooth', 31, socket.SOCK_STREAM),
        ('key', 15, socket.SOCK_RAW), ('tipc', 30, socket.SOCK_RDM), ('xdp', 44, socket.SOCK_RAW)]:
    attempt(name, lambda: socket.socket(family, kind, 0))
attempt('vsock_pair', lambda: socket.socketpair(40, socket.SOCK_STREAM))
attempt('tcp_pair', lambda: socket.socketpair(socket.AF_INET, socket.SOCK_STREAM))
"#
    );
    let mut expected: Vec<String> =
        ["vsock", "packet", "alg", "bluetooth", "key", "tipc", "xdp", "vsock_pair", "tcp_pair"]
            .iter()
            .map(|name| format!("{name} EAFNOSUPPORT"))
            .collect();
    if std::env::consts::ARCH == "x86_64" {
        // socket(2) is 41 on x86_64. The kernel reads the family as an int: bits above it
        // neither smuggle AF_VSOCK in nor keep AF_UNIX out.
        code.push_str(
            "raw('vsock_high_bits', 41, (1 << 32) | 40, 1, 0)\nraw('unix_high_bits', 41, (1 << 32) | 1, 1, 0)\n",
        );
        expected.extend(["vsock_high_bits EAFNOSUPPORT".into(), "unix_high_bits ok".into()]);
    }
    let run = env.python(&code, |_| {});
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(run.stdout(), expected);
    env.assert_contained_and_healthy();
}
