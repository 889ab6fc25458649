//! A real browser for the tests: Debian's headless Chromium, driven over the W3C
//! WebDriver protocol by ChromeDriver with plain HTTP, with every host but loopback
//! unreachable. ChromeDriver is found through `AGENTD_TEST_CHROMEDRIVER` or as
//! `/usr/bin/chromedriver` (`.ci/run` installs `chromium` and `chromium-driver`); without
//! it a browser test is skipped, except under `CI`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Loading Swagger UI and its 1 MB bundle on a loaded 2-core machine can be slow.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);

pub(crate) fn chromedriver() -> Option<PathBuf> {
    let found = std::env::var_os("AGENTD_TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromedriver")))
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "chromedriver is missing (apt-get install chromium chromium-driver)");
        eprintln!("skipping: chromedriver is not installed (apt-get install chromium chromium-driver)");
    }
    found
}

/// A ChromeDriver process and one browser session of it, ended on drop.
pub(crate) struct Browser {
    http: reqwest::Client,
    driver: String,
    session: String,
    process: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Browser {
    pub(crate) async fn start(path: &PathBuf) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let driver = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{driver}/status")).send().await.ok();
            if let Some(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(started.elapsed() < DEADLINE, "chromedriver did not become ready");
            sleep(Duration::from_millis(100)).await;
        }
        let binary = std::env::var("AGENTD_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        // No network but loopback: names other than the server's do not resolve, and
        // anything not on loopback goes to a proxy that is not there.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    "--proxy-server=http://127.0.0.1:9",
                    "--window-size=1280,2000",
                ],
            },
        }}});
        let created: Value =
            http.post(format!("{driver}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let session =
            created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_owned();
        Browser { http, driver, session, process }
    }

    pub(crate) async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let request = self.http.request(method.clone(), url);
        let request = if method == reqwest::Method::GET { request } else { request.json(&body) };
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        response["value"].clone()
    }

    pub(crate) async fn go(&self, url: &str) {
        let answer = self.command(reqwest::Method::POST, "/url", json!({"url": url})).await;
        assert!(answer.is_null(), "navigation failed: {answer}");
    }

    pub(crate) async fn script(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// The first element matching `css`, waiting for it to appear.
    pub(crate) async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let found =
                self.command(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(started.elapsed() < DEADLINE, "no element {css} appeared: {found}");
            sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        let id = self.find(css).await;
        let answer = self.command(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
        assert!(answer.is_null(), "clicking {css} failed: {answer}");
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        let answer = self.command(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text})).await;
        assert!(answer.is_null(), "typing into {css} failed: {answer}");
    }

    /// Waits until `script` returns something other than `null` or `false`.
    pub(crate) async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(script).await;
            if !value.is_null() && value != false {
                return value;
            }
            assert!(started.elapsed() < DEADLINE, "{what} did not happen");
            sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves the page as `<dir>/<name>.png` when `AGENTD_SCREENSHOTS=<dir>` is set.
    pub(crate) async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("AGENTD_SCREENSHOTS") else { return };
        let shot = self.command(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap_or_default()).unwrap();
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the browser session.
    pub(crate) async fn quit(&self) {
        self.command(reqwest::Method::DELETE, "", json!({})).await;
    }
}
