//! An S3-compatible server for tests: moto's standalone server (`pip install
//! 'moto[server]'`), which speaks the S3 wire protocol. S3 is an outside service; this is
//! the stand-in. `.ci/run` installs it; elsewhere a test without it says so (once per
//! process, on stderr) and passes, unless `CI` is set, where a missing server is a failure.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::{in_ci, note_once};

static SKIP_NOTE: Once = Once::new();

/// A running moto server, stopped when dropped.
pub struct S3Server {
    /// Its `http://127.0.0.1:PORT`.
    pub endpoint: String,
    child: Child,
}

/// The environment a process needs to use `bucket` on `server` through `AWS_*` variables.
pub fn aws_env(server: &S3Server) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", server.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test-key".into()),
        ("AWS_SECRET_ACCESS_KEY", "test-secret".into()),
    ]
}

fn moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AGENTD_TEST_MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("moto_server")).find(|p| p.is_file())
}

impl S3Server {
    /// Starts a server with `bucket` created; `None` (after saying why) when moto is not
    /// installed and this is not CI.
    pub fn start(bucket: &str) -> Option<S3Server> {
        let Some(program) = moto_server() else {
            assert!(!in_ci(), "moto_server is missing (pip install 'moto[server]', or set AGENTD_TEST_MOTO_SERVER)");
            note_once(
                &SKIP_NOTE,
                "skipping the S3 part of the tests: moto_server is not installed (pip install 'moto[server]', \
                 or set AGENTD_TEST_MOTO_SERVER)",
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = S3Server { endpoint: format!("http://127.0.0.1:{port}"), child };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto_server did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        // moto accepts unsigned requests, so plain HTTP creates the bucket.
        let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto_server");
        write!(
            conn,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("send the bucket's creation");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).expect("read the bucket's creation");
        assert!(reply.starts_with("HTTP/1.1 200"), "creating the bucket: {reply}");
        Some(server)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // It may have died already; either way it is gone once waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
