//! The workspace's pages: members, limits and the audit log (read only for now).

use agentd_control::{Admin, AuditFilter, Read};
use agentd_core::PageBounds;
use axum::extract::{Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

use crate::State;
use crate::auth::signed_in;
use crate::pages::{CursorQuery, Result, page_of, signed_in_page};
use crate::views::badge;

pub(crate) async fn members(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    Query(q): Query<CursorQuery>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let invites = crate::invites::section(&state, &viewer).await?;
    let members = state.control.members_list(&ctx, &page_of(q.cursor.as_deref(), PageBounds::RESOURCES)?).await?;
    let body = html! {
        div.scroll { table {
            thead { tr { th { "Email" } th { "Role" } th { "Joined" } } }
            tbody { @for m in &members.data {
                tr { td { (m.email) } td { (badge(m.role.as_str())) } td { (m.created_at) } }
            } }
        } }
        @if let Some(next) = &members.next_cursor { p { a href={ "/members?cursor=" (next) } { "Next page" } } }
        (invites)
    };
    signed_in_page(&state, &viewer, "Members", body).await
}

pub(crate) async fn limits(AxumState(state): AxumState<State>, headers: HeaderMap) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Read>()?;
    let limits = state.control.limits(&ctx).await?;
    let body = html! {
        div.scroll { table {
            thead { tr { th { "Limit" } th { "Value" } th { "In use" } th { "From" } } }
            tbody { @for l in &limits.limits {
                tr {
                    td { code { (l.name) } }
                    td { (l.value) }
                    td { @if let Some(u) = l.used { (u) } }
                    td { (l.source.as_str()) }
                }
            } }
        } }
    };
    signed_in_page(&state, &viewer, "Limits", body).await
}

pub(crate) async fn audit(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    Query(q): Query<CursorQuery>,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let ctx = viewer.principal.authorize::<Admin>()?;
    let page = page_of(q.cursor.as_deref(), PageBounds::RESOURCES)?;
    let events = state.control.audit_list(&ctx, &AuditFilter::default(), &page).await?;
    let word = |v: serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let body = html! {
        div.scroll { table {
            thead { tr { th { "When" } th { "Action" } th { "Actor" } th { "Resource" } th { "Result" } th { "Details" } } }
            tbody { @for e in &events.data {
                tr {
                    td { (e.occurred_at) }
                    td { code { (e.action.as_str()) } }
                    td { (word(serde_json::to_value(e.actor.kind).unwrap_or_default())) " " code { (e.actor.id) } }
                    td { (e.resource_type) " " code { (e.resource_id) } }
                    td { (e.result) }
                    td { code { (e.details.to_string()) } }
                }
            } }
        } }
        @if let Some(next) = &events.next_cursor { p { a href={ "/audit?cursor=" (next) } { "Next page" } } }
    };
    signed_in_page(&state, &viewer, "Audit log", body).await
}
