//! `/docs` in a real browser: Debian's headless Chromium, driven over the W3C WebDriver
//! protocol by ChromeDriver, with every host but the server's unreachable. The page
//! renders from the binary's own assets, and a person's path through it works: authorize
//! with an API key, open `GET /v1/me`, "Execute", and the live call answers `200` with
//! the caller's workspace.
//!
//! ChromeDriver is found through `AGENTD_TEST_CHROMEDRIVER` or as `/usr/bin/chromedriver`
//! (`.ci/run` installs `chromium` and `chromium-driver`); without it the test is skipped,
//! except under `CI`, where it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agentd_test_support::Backend;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::harness::TestApp;

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Loading Swagger UI and its 1 MB bundle on a loaded 2-core machine can be slow.
const DEADLINE: Duration = Duration::from_secs(90);

fn chromedriver() -> Option<PathBuf> {
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
struct Browser {
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
    async fn start(path: &PathBuf) -> Browser {
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

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let response: Value = self.http.request(method, url).json(&body).send().await.unwrap().json().await.unwrap();
        response["value"].clone()
    }

    async fn go(&self, url: &str) {
        let answer = self.command(reqwest::Method::POST, "/url", json!({"url": url})).await;
        assert!(answer.is_null(), "navigation failed: {answer}");
    }

    async fn script(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// The first element matching `css`, waiting for it to appear.
    async fn find(&self, css: &str) -> String {
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

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        let answer = self.command(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
        assert!(answer.is_null(), "clicking {css} failed: {answer}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        let answer = self.command(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text})).await;
        assert!(answer.is_null(), "typing into {css} failed: {answer}");
    }

    /// Waits until `script` returns something other than `null` or `false`.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
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
}

#[tokio::test]
async fn the_docs_page_loads_with_no_network_and_try_it_calls_the_server() {
    let Some(driver) = chromedriver() else { return };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tenant = app.signup("swagger-reader").await;
    let browser = Browser::start(&driver).await;

    browser.go(&format!("{}/docs/", app.base_url)).await;
    browser
        .wait_for("Swagger UI rendering the operations", "return document.querySelectorAll('.opblock').length > 0")
        .await;
    let foreign = browser
        .script(&format!(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('{}'))",
            app.base_url
        ))
        .await;
    assert_eq!(foreign, json!([]), "the page loaded something from elsewhere");

    // Authorize as a person would: the padlock, the key, "Authorize", "Close".
    browser.click("button.authorize").await;
    browser.type_into(".modal-ux input", &tenant.key).await;
    browser.click(".modal-ux .auth-btn-wrapper button.authorize").await;
    browser.click(".modal-ux button.btn-done").await;

    // GET /v1/me: open it, "Execute" (the page opens operations ready to try, so "Try it
    // out" is pressed only if it is not), and read the live response.
    browser.click("[id$='-accounts_me'] .opblock-summary").await;
    browser.find("[id$='-accounts_me'] .try-out__btn").await;
    let ready = browser.script("return document.querySelector(\"[id$='-accounts_me'] .execute\") !== null").await;
    if ready != true {
        browser.click("[id$='-accounts_me'] .try-out__btn").await;
    }
    browser.click("[id$='-accounts_me'] .execute").await;
    let status = browser
        .wait_for(
            "the live response",
            "const cell = document.querySelector(\"[id$='-accounts_me'] .live-responses-table tr.response .response-col_status\");
             return cell && cell.textContent.trim();",
        )
        .await;
    assert!(status.as_str().is_some_and(|s| s.starts_with("200")), "try it answered {status}");
    let body = browser
        .script(
            "const code = document.querySelector(\"[id$='-accounts_me'] .live-responses-table tr.response .response-col_description pre\");
             return code && code.textContent;",
        )
        .await;
    let body: Value = serde_json::from_str(body.as_str().unwrap_or("null")).unwrap_or(Value::Null);
    assert_eq!(body["tenant"]["slug"], "swagger-reader", "the response body: {body}");

    browser.command(reqwest::Method::DELETE, "", json!({})).await;
}
