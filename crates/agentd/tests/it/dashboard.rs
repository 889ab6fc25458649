//! The web dashboard over HTTP: the session cookie and its attributes, CSRF tokens on
//! every form, the security headers, escaping of what tenants and agents wrote, and
//! tenancy (another workspace's invocation is 404).

use agentd_test_support::{Backend, on_both_stores};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::harness::{TestApp, poll_invocation};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// `application/x-www-form-urlencoded`, as a browser sends a form.
pub(crate) trait FormBody {
    fn form_fields<K: AsRef<str>, V: AsRef<str>>(self, fields: &[(K, V)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_fields<K: AsRef<str>, V: AsRef<str>>(self, fields: &[(K, V)]) -> Self {
        let encode = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                    b' ' => "+".to_owned(),
                    other => format!("%{other:02X}"),
                })
                .collect::<String>()
        };
        let body: Vec<String> =
            fields.iter().map(|(k, v)| format!("{}={}", encode(k.as_ref()), encode(v.as_ref()))).collect();
        self.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body.join("&"))
    }
}

/// A client that follows no redirects, so each answer is seen as sent.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The `Set-Cookie` line for `name`, whole (with its attributes).
pub(crate) fn set_cookie_line(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub(crate) fn cookie_value(line: &str) -> String {
    line.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

/// The value of the page's hidden `csrf` field.
pub(crate) fn csrf_field(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// A signed-in dashboard visitor: the session cookie and its CSRF token.
pub(crate) struct Visitor {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) session: String,
    pub(crate) csrf: String,
}

impl Visitor {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        let cookie = format!("agentd_session={}", self.session);
        self.http.get(format!("{}{path}", self.base)).header(COOKIE, cookie).send().await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let cookie = format!("agentd_session={}", self.session);
        self.http.post(format!("{}{path}", self.base)).header(COOKIE, cookie).form_fields(form).send().await.unwrap()
    }
}

/// Logs in through the login form (its double-submit CSRF cookie included).
pub(crate) async fn log_in(app: &TestApp, email: &str) -> Visitor {
    let http = browser();
    let form = http.get(format!("{}/login", app.base_url)).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let csrf_cookie = cookie_value(&set_cookie_line(&form, "agentd_csrf").expect("a csrf cookie"));
    let csrf = csrf_field(&form.text().await.unwrap());
    assert_eq!(csrf, csrf_cookie);
    let response = http
        .post(format!("{}/login", app.base_url))
        .header(COOKIE, format!("agentd_csrf={csrf_cookie}"))
        .form_fields(&[("csrf", csrf.as_str()), ("email", email), ("password", PASSWORD), ("workspace_slug", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = cookie_value(&set_cookie_line(&response, "agentd_session").expect("a session cookie"));
    let mut visitor = Visitor { http, base: app.base_url.clone(), session, csrf: String::new() };
    let agents = visitor.get("/agents").await;
    assert_eq!(agents.status(), StatusCode::OK);
    visitor.csrf = csrf_field(&agents.text().await.unwrap());
    visitor
}

on_both_stores!(signup_sets_the_session_cookie_and_every_form_needs_its_csrf_token);
async fn signup_sets_the_session_cookie_and_every_form_needs_its_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let http = browser();

    // `/` sends a stranger to the login page; every page carries the security headers.
    let home = http.get(format!("{}/", app.base_url)).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(home.headers()[LOCATION], "/login");
    let form = http.get(format!("{}/signup", app.base_url)).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let csp = form.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(form.headers()["x-content-type-options"], "nosniff");
    let csrf_line = set_cookie_line(&form, "agentd_csrf").expect("a csrf cookie");
    let csrf_cookie = cookie_value(&csrf_line);
    let html = form.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script: {html}");
    assert!(html.contains(r#"<label for="email">"#), "inputs have labels");
    let csrf = csrf_field(&html);

    let fields = |csrf: Option<&str>| {
        let mut f = vec![
            ("email", "dash@example.com".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("workspace_name", "Dash".to_owned()),
            ("workspace_slug", "dash".to_owned()),
        ];
        if let Some(c) = csrf {
            f.push(("csrf", c.to_owned()));
        }
        f
    };
    // Without the token, or with one that is not the cookie's: 403, and no workspace.
    for (cookie, token) in
        [(Some(csrf_cookie.as_str()), None), (Some(csrf_cookie.as_str()), Some("0000")), (None, Some(csrf.as_str()))]
    {
        let mut request = http.post(format!("{}/signup", app.base_url)).form_fields(&fields(token));
        if let Some(c) = cookie {
            request = request.header(COOKIE, format!("agentd_csrf={c}"));
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "cookie {cookie:?} token {token:?}");
    }

    let signed_up = http
        .post(format!("{}/signup", app.base_url))
        .header(COOKIE, format!("agentd_csrf={csrf_cookie}"))
        .form_fields(&fields(Some(&csrf)))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_up.headers()[LOCATION], "/agents");
    let line = set_cookie_line(&signed_up, "agentd_session").expect("a session cookie");
    let attributes: Vec<&str> = line.split(';').skip(1).map(str::trim).collect();
    for wanted in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(&wanted), "{line}");
    }
    // The server listens on loopback here: plain http in development, so not `Secure`.
    assert!(!attributes.contains(&"Secure"), "{line}");
    let session = cookie_value(&line);

    // The cookie holds a session of the domain's: the API takes it as a bearer token and
    // lists it among the user's sessions.
    let sessions: serde_json::Value = http
        .get(format!("{}/v1/sessions", app.base_url))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["data"].as_array().map(Vec::len), Some(1), "{sessions}");

    let visitor =
        Visitor { http: http.clone(), base: app.base_url.clone(), session: session.clone(), csrf: String::new() };
    let agents = visitor.get("/agents").await;
    assert_eq!(agents.status(), StatusCode::OK);
    let html = agents.text().await.unwrap();
    assert!(html.contains("Dash"), "the workspace is named: {html}");
    let csrf = csrf_field(&html);

    // Logging out needs the session's token too; with it, the session is revoked.
    assert_eq!(visitor.post("/logout", &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(visitor.post("/logout", &[("csrf", "nope")]).await.status(), StatusCode::FORBIDDEN);
    let out = visitor.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie_line(&out, "agentd_session").expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = visitor.get("/agents").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "a revoked session signs in no more");
    assert_eq!(after.headers()[LOCATION], "/login");
    let api = http.get(format!("{}/v1/me", app.base_url)).bearer_auth(&session).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

on_both_stores!(pages_escape_what_agents_write_and_hide_other_workspaces);
async fn pages_escape_what_agents_write_and_hide_other_workspaces(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_script(
        &alpha,
        "shouty",
        r#"echo '<script>alert("log")</script>'
printf '{"type":"output","data":{"html":"<b>bold</b>"}}\n' >&3"#,
    )
    .await;
    let patched = browser()
        .patch(format!("{}/v1/agents/shouty", app.base_url))
        .bearer_auth(&alpha.key)
        .json(&json!({"description": "<script>alert('description')</script>"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);

    let visitor = log_in(&app, "alpha@example.com").await;
    let list = visitor.get("/agents").await.text().await.unwrap();
    assert!(list.contains("&lt;script&gt;alert('description')&lt;/script&gt;"), "{list}");
    assert!(!list.contains("<script>alert"), "{list}");
    let page = visitor.get("/agents/shouty").await.text().await.unwrap();
    assert!(page.contains("&lt;script&gt;alert('description')") && !page.contains("<script>alert"), "{page}");

    // Invoke from the form: it needs the session's CSRF token, then goes to the invocation.
    let refused = visitor.post("/agents/shouty/invoke", &[("input", "{}")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let invoked = visitor.post("/agents/shouty/invoke", &[("csrf", &visitor.csrf), ("input", r#"{"n": 1}"#)]).await;
    assert_eq!(invoked.status(), StatusCode::SEE_OTHER);
    let location = invoked.headers()[LOCATION].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/invocations/").expect("to the invocation").to_owned();
    poll_invocation(&alpha, &id, std::time::Duration::from_secs(60), |i| i.status.is_terminal()).await;

    let page = visitor.get(&location).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("succeeded"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(\"log\")&lt;/script&gt;")
            || html.contains("&lt;script&gt;alert(&quot;log&quot;)&lt;/script&gt;"),
        "the log line, escaped: {html}"
    );
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "the output, escaped: {html}");
    assert!(!html.contains("<script>alert") && !html.contains("<b>bold"), "{html}");

    // The live events relay sends lines rendered and escaped too.
    let events = visitor.get(&format!("{location}/events")).await;
    assert_eq!(events.status(), StatusCode::OK);
    let stream = events.text().await.unwrap();
    assert!(stream.contains("&lt;script&gt;"), "{stream}");
    assert!(stream.contains("event: end"), "{stream}");
    // A reconnect with Last-Event-ID resumes after that event: nothing before it again.
    let seqs = |text: &str| -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.strip_prefix("id: ").or_else(|| l.strip_prefix("id:")))
            .map(|v| v.trim().parse().unwrap())
            .collect()
    };
    let all = seqs(&stream);
    assert!(all.len() >= 2 && all.windows(2).all(|w| w[0] < w[1]), "{stream}");
    let cookie = format!("agentd_session={}", visitor.session);
    let resumed = visitor
        .http
        .get(format!("{}{location}/events", app.base_url))
        .header(COOKIE, cookie)
        .header("last-event-id", all[0].to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(seqs(&resumed), all[1..].to_vec(), "{resumed}");

    // The list filters by agent and status.
    let listed = visitor.get("/invocations?agent=shouty&status=succeeded").await.text().await.unwrap();
    assert!(listed.contains(&id), "{listed}");
    let none = visitor.get("/invocations?agent=shouty&status=failed").await.text().await.unwrap();
    assert!(!none.contains(&id), "{none}");

    // Another workspace sees none of it.
    let stranger = log_in(&app, "beta@example.com").await;
    assert_eq!(stranger.get(&location).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(stranger.get(&format!("{location}/events")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(stranger.get("/agents/shouty").await.status(), StatusCode::NOT_FOUND);
    drop(beta);
}

/// Asks a question on its first run, after two log lines written a few seconds apart; on
/// the resume (its answers in `resume` on stdin) it says the answer and finishes.
pub(crate) const ASKER: &str = r#"input=$(cat)
case "$input" in
  *'"resume":null'*)
    echo "warming up"
    sleep 5
    echo "halfway there"
    sleep 1
    printf '{"type":"interrupt","value":{"question":"Ship it?"}}\n' >&3
    exit 0
    ;;
esac
echo "resumed with the answer"
printf '{"type":"output","data":{"shipped":true}}\n' >&3"#;

/// A person's path in a real browser: sign up, log out, log in, deploy a bundle, invoke from the form,
/// watch log lines arrive live, answer the agent's question and see the run finish, make
/// and revoke an API key, invite a member.
/// With `AGENTD_SCREENSHOTS=<dir>` it saves the main pages there.
#[tokio::test]
async fn a_person_signs_up_invokes_watches_logs_live_and_answers_in_a_browser() {
    let Some(driver) = crate::browser::chromedriver() else { return };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tenant = app.signup("studio").await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("asker");
    std::fs::create_dir(&source).unwrap();
    crate::harness::write_shell_agent(&source, "asker", ASKER);
    let bundle_file = dir.path().join("asker.tar.gz");
    std::fs::write(&bundle_file, agentd_bundle::pack_dir(&source).unwrap()).unwrap();
    let browser = crate::browser::Browser::start(&driver).await;
    let at = |path: &str| format!("return location.pathname === '{path}' || null");

    // Sign up a workspace of one's own, and log out of it.
    browser.go(&format!("{}/", app.base_url)).await;
    browser.wait_for("the login page", &at("/login")).await;
    browser.screenshot("login").await;
    browser.click("a[href='/signup']").await;
    browser.type_into("#email", "newcomer@example.com").await;
    browser.type_into("#password", PASSWORD).await;
    browser.type_into("#workspace_name", "Newcomer's workspace").await;
    browser.type_into("#workspace_slug", "newcomer").await;
    browser.click("form.card button[type=submit]").await;
    browser.wait_for("the agents page", &at("/agents")).await;
    let header = browser.script("return document.querySelector('.workspace').textContent").await;
    assert_eq!(header, json!("Newcomer's workspace"));
    browser.click("form[action='/logout'] button").await;
    browser.wait_for("the login page again", &at("/login")).await;

    // Log in to the workspace with the agent.
    browser.type_into("#email", "studio@example.com").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form.card button[type=submit]").await;
    browser.wait_for("the agents page", &at("/agents")).await;

    // Deploy by uploading the bundle (the page's script sends it with a progress bar).
    browser.click("a[href='/deploy']").await;
    browser.type_into("#slug", "asker").await;
    browser.type_into("#bundle", bundle_file.to_str().unwrap()).await;
    browser.screenshot("deploy").await;
    browser.click("form#deploy button[type=submit]").await;
    browser.wait_for("the new agent's page", &at("/agents/asker")).await;
    assert_eq!(tenant.client.agent_get("asker").await.unwrap().active_version, Some(1));

    browser.click("a[href='/agents']").await;
    browser.find("a[href='/agents/asker']").await;
    browser.screenshot("agents").await;
    browser.click("a[href='/agents/asker']").await;
    browser.wait_for("the agent's page", &at("/agents/asker")).await;
    browser.screenshot("agent").await;

    // Invoke from the form; the page of the invocation follows its logs live.
    browser.script("document.getElementById('input').value = ''; return null").await;
    browser.type_into("#input", r#"{"task": "release"}"#).await;
    browser.type_into("#priority", "3").await;
    browser.click("form[action='/agents/asker/invoke'] button").await;
    browser.wait_for("the invocation page", "return location.pathname.startsWith('/invocations/inv_') || null").await;
    let path = browser.script("return location.pathname").await;
    let id = path.as_str().unwrap().trim_start_matches("/invocations/").to_owned();
    // "halfway there" is written five seconds after "warming up", while the page is open:
    // the script appends it from the event stream (and marks it `data-live`).
    let live = browser
        .wait_for(
            "a log line appended live",
            "return Array.from(document.querySelectorAll('#logs li[data-live]')).some(li => li.textContent.includes('halfway there')) || null",
        )
        .await;
    assert_eq!(live, json!(true));
    let stdout = browser
        .script("const li = Array.from(document.querySelectorAll('#logs li.st-stdout')); return li.length")
        .await;
    assert!(stdout.as_u64().unwrap_or(0) >= 1, "lines are classed by stream");

    // The question: the page reloads into the answer box.
    browser.find("section.answer textarea#answer").await;
    let question = browser.script("return document.querySelector('section.answer pre').textContent").await;
    assert!(question.as_str().unwrap_or("").contains("Ship it?"), "{question}");
    browser.screenshot("invocation-waiting").await;
    browser.type_into("#answer", "yes").await;
    browser.click("section.answer button").await;

    // The run resumes and finishes; the page shows its output.
    browser
        .wait_for(
            "the run to finish",
            "const s = document.getElementById('status'); return (s && s.dataset.status === 'succeeded') || null",
        )
        .await;
    let output = browser.script("return document.body.textContent.includes('shipped')").await;
    assert_eq!(output, json!(true));
    browser.find("#logs li").await;
    browser
        .wait_for(
            "the resumed run's line",
            "return Array.from(document.querySelectorAll('#logs li')).some(li => li.textContent.includes('resumed with the answer')) || null",
        )
        .await;
    browser.screenshot("invocation").await;
    let answered = tenant.client.interrupts(&id).await.unwrap().data;
    assert_eq!(answered[0].answer, Some(json!("yes")));

    browser.go(&format!("{}/invocations", app.base_url)).await;
    browser.find(&format!("a[href='/invocations/{id}']")).await;
    browser.screenshot("invocations").await;

    // An API key: made with one scope, its secret shown once, then revoked.
    browser.click("a[href='/keys']").await;
    browser.type_into("#name", "from the browser").await;
    browser.click("input[name=scope_invoke]").await;
    browser.click("form[action='/keys'] button[type=submit]").await;
    let secret = browser
        .wait_for("the new key's secret", "const s = document.getElementById('secret'); return s && s.textContent")
        .await;
    let secret = secret.as_str().unwrap().to_owned();
    assert!(secret.starts_with("agd_"), "{secret}");
    browser.screenshot("key-created").await;
    browser.click("a[href='/keys']").await;
    browser.click("form[action$='/revoke'] button").await;
    browser.wait_for("the key revoked", "return document.body.textContent.includes('revoked') || null").await;
    let me = reqwest::Client::new().get(format!("{}/v1/me", app.base_url)).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // Invite a member: the link is shown once.
    browser.click("a[href='/members']").await;
    browser.type_into("#invite_email", "colleague@example.com").await;
    browser.click("form[action='/invites'] button").await;
    let link = browser
        .wait_for("the invite link", "const l = document.getElementById('invite-link'); return l && l.textContent")
        .await;
    assert!(link.as_str().unwrap_or("").starts_with("/join/"), "{link}");
    browser.click("a[href='/members']").await;
    browser
        .wait_for("the pending invite", "return document.body.textContent.includes('colleague@example.com') || null")
        .await;
    browser.screenshot("members").await;
    browser.quit().await;
}

/// A `multipart/form-data` body as a browser sends a form with a file input.
pub(crate) fn multipart(fields: &[(&str, &str)], file: (&str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "agentd-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    let (name, bytes) = file;
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"bundle.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

on_both_stores!(a_bundle_uploaded_on_the_deploy_page_creates_and_activates_the_agent);
async fn a_bundle_uploaded_on_the_deploy_page_creates_and_activates_the_agent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("uploader").await;
    let visitor = log_in(&app, "uploader@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::write_shell_agent(dir.path(), "fresh", r#"printf '{"type":"output","data":"fresh"}\n' >&3"#);
    let bundle = agentd_bundle::pack_dir(dir.path()).unwrap();
    let send = |fields: Vec<(&'static str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (content_type, body) = multipart(&fields, ("bundle", &bundle));
        visitor
            .http
            .post(format!("{}/deploy", app.base_url))
            .header(COOKIE, format!("agentd_session={}", visitor.session))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let refused = send(vec![("slug", "fresh".to_owned())]).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(owner.client.agent_get("fresh").await.is_err(), "nothing was created");
    let deployed = send(vec![("csrf", visitor.csrf.clone()), ("slug", "fresh".to_owned())]).await.unwrap();
    assert_eq!(deployed.status(), StatusCode::SEE_OTHER);
    assert_eq!(deployed.headers()[LOCATION], "/agents/fresh");
    let agent = owner.client.agent_get("fresh").await.unwrap();
    assert_eq!(agent.active_version, Some(1));
    // Again: a second version of the same agent.
    let again = send(vec![("csrf", visitor.csrf.clone()), ("slug", "fresh".to_owned())]).await.unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(owner.client.agent_get("fresh").await.unwrap().active_version, Some(2));
    let page = visitor.get("/agents/fresh").await.text().await.unwrap();
    assert!(page.contains("v2") && page.contains("entrypoint"), "versions and manifest: {page}");
}

on_both_stores!(a_key_made_on_the_keys_page_shows_its_secret_once_and_revokes);
async fn a_key_made_on_the_keys_page_shows_its_secret_once_and_revokes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _owner = app.signup("keyed").await;
    let visitor = log_in(&app, "keyed@example.com").await;

    let refused = visitor.post("/keys", &[("name", "ci"), ("scope_read", "on")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let made = visitor.post("/keys", &[("csrf", &visitor.csrf), ("name", "<i>ci</i>"), ("scope_read", "on")]).await;
    assert_eq!(made.status(), StatusCode::OK);
    let html = made.text().await.unwrap();
    assert!(html.contains("&lt;i&gt;ci&lt;/i&gt;") && !html.contains("<i>ci"), "{html}");
    let at = html.find(r#"<code id="secret">"#).expect("the secret") + r#"<code id="secret">"#.len();
    let secret = html[at..].split('<').next().unwrap().to_owned();

    // The secret works, with the scopes ticked only; the list never shows it again.
    let http = browser();
    let me: serde_json::Value =
        http.get(format!("{}/v1/me", app.base_url)).bearer_auth(&secret).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["scopes"], json!(["read"]), "{me}");
    let list = visitor.get("/keys").await.text().await.unwrap();
    assert!(!list.contains(&secret), "the list does not show the secret");
    let keys: serde_json::Value = http
        .get(format!("{}/v1/api-keys", app.base_url))
        .bearer_auth(&visitor.session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = keys["data"].as_array().unwrap().iter().find(|k| k["name"] == "<i>ci</i>").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(list.contains(&format!("/keys/{id}/revoke")), "{list}");

    assert_eq!(visitor.post(&format!("/keys/{id}/revoke"), &[]).await.status(), StatusCode::FORBIDDEN);
    let revoked = visitor.post(&format!("/keys/{id}/revoke"), &[("csrf", &visitor.csrf)]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let after = http.get(format!("{}/v1/me", app.base_url)).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // The workspace's pages: the audit log has both changes, the members and limits show.
    let audit = visitor.get("/audit").await.text().await.unwrap();
    assert!(audit.contains("api_key.create") && audit.contains("api_key.revoke"), "{audit}");
    assert!(!audit.contains("<i>ci"), "details are escaped: {audit}");
    let members = visitor.get("/members").await.text().await.unwrap();
    assert!(members.contains("keyed@example.com") && members.contains("owner"), "{members}");
    let limits = visitor.get("/limits").await.text().await.unwrap();
    assert!(limits.contains("max_agents") && limits.contains("invocations_per_minute"), "{limits}");
}

on_both_stores!(an_invite_made_on_the_members_page_is_accepted_through_its_link);
async fn an_invite_made_on_the_members_page_is_accepted_through_its_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _owner = app.signup("inviting").await;
    let visitor = log_in(&app, "inviting@example.com").await;
    let members = visitor.get("/members").await.text().await.unwrap();
    assert!(members.contains(r#"action="/invites""#), "an owner sees the invite form: {members}");

    let refused = visitor.post("/invites", &[("email", "new@example.com"), ("role", "developer")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let made =
        visitor.post("/invites", &[("csrf", &visitor.csrf), ("email", "new@example.com"), ("role", "developer")]).await;
    assert_eq!(made.status(), StatusCode::OK);
    let html = made.text().await.unwrap();
    let at = html.find(r#"<code id="invite-link">"#).expect("the link") + r#"<code id="invite-link">"#.len();
    let link = html[at..].split('<').next().unwrap().to_owned();
    assert!(link.starts_with("/join/"), "{link}");

    // The newcomer follows the link: a form with its own CSRF cookie, then a session.
    let http = browser();
    let form = http.get(format!("{}{link}", app.base_url)).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let csrf_cookie = cookie_value(&set_cookie_line(&form, "agentd_csrf").unwrap());
    let csrf = csrf_field(&form.text().await.unwrap());
    let without =
        http.post(format!("{}{link}", app.base_url)).form_fields(&[("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let joined = http
        .post(format!("{}{link}", app.base_url))
        .header(COOKIE, format!("agentd_csrf={csrf_cookie}"))
        .form_fields(&[("csrf", csrf.as_str()), ("email", ""), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), StatusCode::SEE_OTHER, "{:?}", joined.headers());
    let session = cookie_value(&set_cookie_line(&joined, "agentd_session").expect("a session"));
    let me: serde_json::Value =
        http.get(format!("{}/v1/me", app.base_url)).bearer_auth(&session).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["tenant"]["slug"].as_str(), me["role"].as_str()), (Some("inviting"), Some("developer")), "{me}");
    let members = visitor.get("/members").await.text().await.unwrap();
    assert!(members.contains("<td>new@example.com</td><td><span class=\"badge s-developer\">"), "{members}");
}
