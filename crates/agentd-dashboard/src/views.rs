//! The page frame and the small pieces every page uses. maud escapes every value it
//! writes, so nothing a tenant or an agent wrote becomes markup.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Who the page is shown to, for the header: the workspace and the logout form.
pub(crate) struct Nav<'a> {
    pub(crate) workspace: &'a str,
    pub(crate) csrf: &'a str,
}

pub(crate) fn page(title: &str, nav: Option<Nav<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · agentd" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "agentd" }
                    @if let Some(nav) = &nav {
                        nav aria-label="Main" {
                            a href="/agents" { "Agents" }
                            a href="/deploy" { "Deploy" }
                            a href="/invocations" { "Invocations" }
                            a href="/keys" { "API keys" }
                            a href="/members" { "Members" }
                            a href="/limits" { "Limits" }
                            a href="/audit" { "Audit log" }
                        }
                        span.workspace { (nav.workspace) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(nav.csrf);
                            button type="submit" { "Log out" }
                        }
                    } @else {
                        nav aria-label="Account" {
                            a href="/login" { "Log in" }
                            a href="/signup" { "Sign up" }
                        }
                    }
                }
                main id="main" { h1 { (title) } (body) }
            }
        }
    }
}

pub(crate) fn error_page(status: StatusCode, code: &str, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        p.error role="alert" { (detail) }
        p.muted { "Code: " code { (code) } }
        p { a href="/" { "Back to the dashboard" } }
    };
    (status, Html(page(title, None, body).into_string())).into_response()
}

/// A status word as a badge whose class colours it.
pub(crate) fn badge(word: &str) -> Markup {
    html! { span class={ "badge s-" (word) } { (word) } }
}

/// A JSON value, pretty-printed in a `<pre>`.
pub(crate) fn json(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.json { (text) } }
}

pub(crate) fn render(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}
