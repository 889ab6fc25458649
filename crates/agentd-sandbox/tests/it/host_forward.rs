//! The host forward: a port of the run's own loopback whose connections reach one address
//! of the host, with or without egress, and nothing else of the host.

use std::net::TcpListener;
use std::sync::Arc;

use agentd_sandbox::{Egress, HostForward, SandboxError, TcpTarget, Termination};

use crate::Test;
use crate::egress::{allowed_hosts, egress_env, upstream};
use crate::support::TestEnv;

pub fn tests() -> Vec<Test> {
    vec![
        (
            "host_forward_carries_connections_to_its_target_and_nothing_else",
            host_forward_carries_connections_to_its_target_and_nothing_else,
        ),
        (
            "host_forward_works_beside_egress_and_bypasses_the_proxy",
            host_forward_works_beside_egress_and_bypasses_the_proxy,
        ),
        (
            "host_forward_to_an_unreachable_target_closes_the_connection",
            host_forward_to_an_unreachable_target_closes_the_connection,
        ),
        ("host_forward_may_not_take_the_egress_proxys_port", host_forward_may_not_take_the_egress_proxys_port),
    ]
}

const PORT: u16 = 8470;

fn forward_to(port: u16) -> Option<HostForward> {
    Some(HostForward { port: PORT, target: Arc::new(TcpTarget { host: "127.0.0.1".into(), port }) })
}

const CLIENT: &str = r#"
import os, socket, sys, threading, urllib.request
host_port = int(sys.argv[1]); other_port = int(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def get(path):
    with opener.open('http://127.0.0.1:8470' + path, timeout=10) as r:
        return '%d %s' % (r.status, r.read().decode())
def direct(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
        return 'connected'
    except OSError as e:
        return 'failed'
print('proxy variables', sorted(k for k in os.environ if 'proxy' in k.lower()))
print('get', get('/hello'))
answers = []
threads = [threading.Thread(target=lambda i=i: answers.append(get('/parallel'))) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print('parallel', len(answers), len(set(answers)))
print('direct target', direct(host_port))
print('direct other host port', direct(other_port))
print('proxy port', direct(3128))
"#;

fn host_forward_carries_connections_to_its_target_and_nothing_else() {
    let env = TestEnv::new();
    let up = upstream("127.0.0.1");
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    let mut spec = env.spec("/usr/bin/python3", &["-c", CLIENT, &up.port().to_string(), &other_port.to_string()]);
    spec.host_forward = forward_to(up.port());
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(
        run.stdout(),
        [
            "proxy variables []",
            "get 200 upstream saw GET /hello HTTP/1.1 for 127.0.0.1:8470",
            "parallel 20 1",
            "direct target failed",
            "direct other host port failed",
            "proxy port failed",
        ]
    );
    other.set_nonblocking(true).unwrap();
    assert!(other.accept().is_err(), "another host service got a connection");
    env.assert_contained_and_healthy();
}

fn host_forward_works_beside_egress_and_bypasses_the_proxy() {
    let env = egress_env();
    let up = upstream("127.0.0.1");
    let egress_up = upstream("127.0.0.2");
    let code = "import urllib.request, sys\n\
        for url in ['http://127.0.0.1:8470/api', 'http://allowed.test:%s/out' % sys.argv[1]]:\n    \
        print(urllib.request.urlopen(url, timeout=10).read().decode())\n";
    let mut spec = env.spec("/usr/bin/python3", &["-c", code, &egress_up.port().to_string()]);
    spec.egress = allowed_hosts();
    spec.host_forward = forward_to(up.port());
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    // The API is reached directly (NO_PROXY covers the loopback), the outside through the proxy.
    let through_proxy = format!("upstream saw GET /out HTTP/1.1 for allowed.test:{}", egress_up.port());
    assert_eq!(run.stdout(), ["upstream saw GET /api HTTP/1.1 for 127.0.0.1:8470", through_proxy.as_str()]);
    assert!(run.outcome.egress_refusals.is_empty(), "{:?}", run.outcome.egress_refusals);
    env.assert_contained_and_healthy();
}

fn host_forward_to_an_unreachable_target_closes_the_connection() {
    let env = TestEnv::new();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let code = "import socket\ns = socket.create_connection(('127.0.0.1', 8470), timeout=10)\n\
        s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\ntry:\n    print('read', s.recv(100))\n\
        except OSError as e:\n    print('read failed')\n";
    let mut spec = env.spec("/usr/bin/python3", &["-c", code]);
    spec.host_forward = forward_to(closed);
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert!(matches!(run.stdout()[..], ["read b''"] | ["read failed"]), "{:?}", run.lines);
    env.assert_contained_and_healthy();
}

fn host_forward_may_not_take_the_egress_proxys_port() {
    let env = TestEnv::new();
    let mut spec = env.spec("/bin/true", &[]);
    spec.egress = Egress::AllowHosts(vec!["example.com".into()]);
    spec.host_forward =
        Some(HostForward { port: 3128, target: Arc::new(TcpTarget { host: "127.0.0.1".into(), port: 1 }) });
    assert!(matches!(env.run(spec), Err(SandboxError::InvalidSpec { .. })));
    env.assert_runs_left_nothing();
}
