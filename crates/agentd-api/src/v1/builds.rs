//! A version's dependency build: `GET /v1/agents/{slug}/versions/{n}/build` (status and
//! log) and `GET …/build/events`, the log live as Server-Sent Events (`id: <seq>`,
//! `event: log`, resumable with `Last-Event-ID` or `?after=SEQ`), closed by `event: end`
//! with the build's final status. Following is the domain's (`BuildFollower`).

use std::convert::Infallible;
use std::time::Duration;

use agentd_api_types::VersionBuildResponse;
use agentd_control::{BuildFollowed, BuildFollower, ControlError, Read, VersionBuildView};
use agentd_core::ResourceKind;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;

use crate::extract::{ApiQuery, Caller, last_event_id, path_slug};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents/{slug}/versions/{n}/build", get(show))
        .route("/agents/{slug}/versions/{n}/build/events", get(stream))
}

fn version_number(n: &str) -> Result<u32, ApiError> {
    Ok(n.parse().map_err(|_| ControlError::NotFound(ResourceKind::AgentVersion))?)
}

#[utoipa::path(
    get,
    operation_id = "builds_show",
    path = "/v1/agents/{slug}/versions/{n}/build",
    tag = "agents",
    summary = "A version's dependency build and its log",
    params(("slug" = String, Path, description = "The agent's slug"), ("n" = u32, Path, description = "The version number")),
    responses((status = 200, description = "The build", body = agentd_api_types::VersionBuildResponse))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, n)): Path<(String, String)>,
) -> Result<Json<VersionBuildResponse>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let view = state.control.version_build(&ctx, &slug, version_number(&n)?).await?;
    Ok(Json(response(view)))
}

fn response(view: VersionBuildView) -> VersionBuildResponse {
    let VersionBuildView { version, build, log } = view;
    let shown = version.build;
    VersionBuildResponse {
        version: version.version,
        status: shown.status,
        id: shown.id,
        runtime: build.as_ref().map(|b| b.runtime.clone()),
        installer: shown.installer,
        dependencies_digest: shown.dependencies_digest,
        error: shown.error,
        warnings: shown.warnings,
        attempt: build.as_ref().map_or(0, |b| b.attempt),
        installed_bytes: build.as_ref().and_then(|b| b.installed_bytes),
        created_at: build.as_ref().map(|b| b.created_at),
        started_at: build.as_ref().and_then(|b| b.started_at),
        finished_at: build.as_ref().and_then(|b| b.finished_at),
        log,
    }
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    after: Option<u64>,
}

#[utoipa::path(
    get,
    operation_id = "builds_stream",
    path = "/v1/agents/{slug}/versions/{n}/build/events",
    tag = "agents",
    summary = "A version's build log, live (Server-Sent Events)",
    params(("slug" = String, Path, description = "The agent's slug"), ("n" = u32, Path, description = "The version number"), StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "The last seq seen: resume after it")),
    responses((status = 200, description = "Server-Sent Events: `log` events with a build log line as JSON, then `status`", body = String, content_type = "text/event-stream"))
)]
async fn stream(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, n)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let after = last_event_id(&headers)?.or(q.after).unwrap_or(0);
    // Fails with 404 before any byte is streamed for a missing or foreign version.
    let follower = state.control.follow_build(&ctx, &slug, version_number(&n)?, after).await?;
    // The guard rides in the stream's state: the stream counts as open until it is dropped.
    let open = agentd_control::metrics::OpenStream::open();
    let stream = futures_util::stream::unfold((Some(follower), open), |(follower, open)| async move {
        let mut follower: BuildFollower = follower?;
        match follower.next().await {
            Ok(Some(BuildFollowed::Line(line))) => {
                let data = serde_json::to_string(&line).unwrap_or_else(|_| "{}".to_owned());
                Some((Ok(SseEvent::default().id(line.seq.to_string()).event("log").data(data)), (Some(follower), open)))
            }
            Ok(Some(BuildFollowed::End { status, error })) => {
                let end = serde_json::json!({"status": status, "error": error});
                Some((Ok(SseEvent::default().event("end").data(end.to_string())), (None, open)))
            }
            Ok(None) => None,
            Err(err) => Some((Ok(super::events::stream_failed(err.into(), "build log stream stopped")), (None, open))),
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, stream))]
pub(super) struct Doc;
