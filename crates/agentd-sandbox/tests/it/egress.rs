//! Egress through the run's proxy: allowed names reach an upstream server on the host (an
//! exempted address), everything else is refused by the proxy, and the run itself still
//! has no route anywhere but its own loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};

use agentd_sandbox::{Egress, EgressSettings, Termination};

use crate::Test;
use crate::support::TestEnv;

pub fn tests() -> Vec<Test> {
    vec![
        (
            "egress_reaches_an_allowed_host_through_the_proxy_and_nothing_else",
            egress_reaches_an_allowed_host_through_the_proxy_and_nothing_else,
        ),
        ("egress_works_for_curl_with_a_connect_tunnel", egress_works_for_curl_with_a_connect_tunnel),
        ("egress_denied_runs_get_no_proxy_at_all", egress_denied_runs_get_no_proxy_at_all),
        (
            "hostile_egress_requests_are_refused_and_a_connection_flood_ends_with_the_run",
            hostile_egress_requests_are_refused_and_a_connection_flood_ends_with_the_run,
        ),
    ]
}

/// An HTTP server on `ip` answering every request with what it saw (request line and Host).
/// It serves until the test process exits.
pub fn upstream(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let mut host = String::new();
            let _ = reader.read_line(&mut request_line);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.strip_prefix("Host: ") {
                    host = value.trim().to_owned();
                }
            }
            let body = format!("upstream saw {} for {host}", request_line.trim());
            let response =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

/// 127.0.0.2 stands for an outside server: exempted from the deny list, reached by name.
pub fn egress_env() -> TestEnv {
    TestEnv::with_egress(EgressSettings {
        allowed_networks: vec!["127.0.0.2/32".parse().unwrap()],
        resolve: vec![
            ("allowed.test".into(), "127.0.0.2".parse().unwrap()),
            ("api.wild.test".into(), "127.0.0.2".parse().unwrap()),
            ("loopback.test".into(), "127.0.0.1".parse().unwrap()),
            ("metadata.test".into(), "169.254.169.254".parse().unwrap()),
        ],
    })
}

pub fn allowed_hosts() -> Egress {
    Egress::AllowHosts(
        ["allowed.test", "*.wild.test", "loopback.test", "metadata.test", "localhost"].map(String::from).to_vec(),
    )
}

const CLIENT: &str = r#"
import os, socket, sys, urllib.request, urllib.error
port = int(sys.argv[1]); host_port = int(sys.argv[2])
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return '%d %s' % (r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        return '%d %s' % (e.code, e.read().decode().strip())
def connect(target):
    s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
    s.sendall(('CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (target, target)).encode())
    head = s.recv(4096).decode()
    status = head.split(' ')[1]
    if status != '200':
        return status + ' ' + head.split('\r\n\r\n', 1)[1].strip()
    s.sendall(b'GET /tunnel HTTP/1.0\r\nHost: x\r\n\r\n')
    data = b''
    while True:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    return status + ' ' + data.decode().split('\r\n\r\n', 1)[1]
def direct(addr):
    try:
        socket.create_connection(addr, timeout=2).close()
        return 'connected'
    except OSError:
        return 'failed'
print('proxy', os.environ.get('HTTP_PROXY'), os.environ.get('NO_PROXY'))
print('get allowed', get('http://allowed.test:%d/hello' % port))
print('get wildcard', get('http://api.wild.test:%d/w' % port))
print('get not listed', get('http://other.test:%d/' % port))
print('get wildcard apex', get('http://wild.test:%d/' % port))
print('get loopback name', get('http://loopback.test:%d/' % port))
print('get metadata name', get('http://metadata.test/latest/meta-data/'))
print('connect allowed', connect('allowed.test:%d' % port))
print('connect localhost', connect('localhost:%d' % port))
print('connect ip literal', connect('127.0.0.2:%d' % port))
print('direct upstream', direct(('127.0.0.2', port)))
print('direct host loopback', direct(('127.0.0.1', host_port)))
print('direct outside', direct(('192.0.2.1', 80)))
"#;

fn egress_reaches_an_allowed_host_through_the_proxy_and_nothing_else() {
    let env = egress_env();
    let up = upstream("127.0.0.2");
    let host_service = TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    let port = up.port().to_string();
    let mut spec = env.spec("/usr/bin/python3", &["-c", CLIENT, &port, &host_port.to_string()]);
    spec.egress = allowed_hosts();
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    let p = &port;
    let refused = |host: &str| format!("403 agentd egress: {host} is not on this agent's egress list");
    let inward = |host: &str| format!("403 agentd egress: {host} resolves to a private or reserved address");
    assert_eq!(
        run.stdout(),
        [
            "proxy http://127.0.0.1:3128 localhost,127.0.0.1,::1".to_owned(),
            format!("get allowed 200 upstream saw GET /hello HTTP/1.1 for allowed.test:{p}"),
            format!("get wildcard 200 upstream saw GET /w HTTP/1.1 for api.wild.test:{p}"),
            format!("get not listed {}", refused("other.test")),
            format!("get wildcard apex {}", refused("wild.test")),
            format!("get loopback name {}", inward("loopback.test")),
            format!("get metadata name {}", inward("metadata.test")),
            "connect allowed 200 upstream saw GET /tunnel HTTP/1.0 for x".to_owned(),
            format!("connect localhost {}", inward("localhost")),
            format!("connect ip literal {}", refused("127.0.0.2")),
            "direct upstream failed".to_owned(),
            "direct host loopback failed".to_owned(),
            "direct outside failed".to_owned(),
        ]
    );
    host_service.set_nonblocking(true).unwrap();
    assert!(host_service.accept().is_err(), "the host service got a connection");
    env.assert_contained_and_healthy();
}

fn egress_works_for_curl_with_a_connect_tunnel() {
    let env = egress_env();
    let up = upstream("127.0.0.2");
    let program = env.script(
        "curl.sh",
        "#!/bin/sh\ncurl -sS --proxytunnel \"http://allowed.test:$1/curl\"\necho\n\
         curl -s -o /dev/null -w '%{http_code}\\n' \"http://other.test:$1/\"\n",
    );
    let mut spec = env.spec(&program, &[&up.port().to_string()]);
    spec.egress = allowed_hosts();
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    let expected = format!("upstream saw GET /curl HTTP/1.1 for allowed.test:{}", up.port());
    assert_eq!(run.stdout(), [expected.as_str(), "403"]);
    env.assert_contained_and_healthy();
}

fn egress_denied_runs_get_no_proxy_at_all() {
    let env = egress_env();
    let run = env.python(
        "import os, socket\nprint(sorted(k for k in os.environ if 'proxy' in k.lower()))\ntry:\n    \
         socket.create_connection(('127.0.0.1', 3128), timeout=2); print('proxy port open')\n\
         except OSError as e:\n    print('proxy port', e.strerror)\n",
        |_| {},
    );
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(run.stdout(), ["[]", "proxy port Connection refused"]);
    env.assert_contained_and_healthy();
}

const HOSTILE_CLIENT: &str = r#"
import socket, sys
def ask(raw):
    s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
    try:
        s.sendall(raw)
        return s.recv(4096).decode().split(' ')[1]
    except OSError as e:
        return 'error %s' % e
    finally:
        s.close()
print('oversized', ask(b'GET http://allowed.test/ HTTP/1.1\r\nX-Pad: ' + b'a' * 20000 + b'\r\n\r\n'))
print('garbage', ask(b'\x16\x03\x01 hello\r\n\r\n'))
print('https uri', ask(b'GET https://allowed.test/ HTTP/1.1\r\n\r\n'))
print('credentials', ask(b'GET http://user:pw@allowed.test/ HTTP/1.1\r\n\r\n'))
print('closed port', ask(('CONNECT allowed.test:%s HTTP/1.1\r\n\r\n' % sys.argv[1]).encode()))
# Far more idle connections than the proxy serves at once; exiting must end the run.
flood = []
for _ in range(150):
    s = socket.socket(); s.settimeout(5); s.connect(('127.0.0.1', 3128)); s.sendall(b'GET http://allowed.test/'); flood.append(s)
print('flooded', len(flood))
"#;

fn hostile_egress_requests_are_refused_and_a_connection_flood_ends_with_the_run() {
    let env = egress_env();
    // A port with nothing behind it on the exempted address.
    let closed = TcpListener::bind("127.0.0.2:0").unwrap().local_addr().unwrap().port().to_string();
    let mut spec = env.spec("/usr/bin/python3", &["-c", HOSTILE_CLIENT, &closed]);
    spec.egress = allowed_hosts();
    let run = env.run(spec).unwrap();
    assert_eq!(run.outcome.termination, Termination::Exited(0), "{:?}", run.lines);
    assert_eq!(
        run.stdout(),
        ["oversized 431", "garbage 400", "https uri 400", "credentials 400", "closed port 502", "flooded 150"]
    );
    assert!(run.outcome.wall < std::time::Duration::from_secs(10), "{:?}", run.outcome.wall);
    env.assert_contained_and_healthy();
}
