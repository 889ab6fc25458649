//! What `agentd serve` refuses at start: a second server on one SQLite database, in every
//! environment (the settings' own checks are unit tests beside them).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentd_test_support::Backend;

use crate::harness::{TestApp, bin};

#[tokio::test]
async fn a_second_server_on_one_sqlite_database_is_refused_and_says_why() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let database = app.sqlite_path().expect("a SQLite app");
    let mut second = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--worker-slots", "0", "--data-dir"])
        .arg(&app.data_dir)
        .arg("--database-url")
        .arg(format!("sqlite://{}", database.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second agentd serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second server did not refuse to start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::io::read_to_string(second.stderr.take().expect("stderr")).expect("read stderr");
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("another `agentd serve` is running on the SQLite database"), "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    // The first one goes on serving.
    app.client().healthz().await.expect("the first server still answers");
}
