//! `/docs` in a real browser: Debian's headless Chromium, driven over the W3C WebDriver
//! protocol by ChromeDriver, with every host but the server's unreachable. The page
//! renders from the binary's own assets, and a person's path through it works: authorize
//! with an API key, open `GET /v1/me`, "Execute", and the live call answers `200` with
//! the caller's workspace.
//!
//! ChromeDriver is found through `AGENTD_TEST_CHROMEDRIVER` or as `/usr/bin/chromedriver`
//! (`.ci/run` installs `chromium` and `chromium-driver`); without it the test is skipped,
//! except under `CI`, where it fails.

use agentd_test_support::Backend;
use serde_json::{Value, json};

use crate::browser::{Browser, chromedriver};
use crate::harness::TestApp;

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
