//! Deploying by uploading a bundle: a plain multipart form (it works without script), which
//! the page's script sends with a progress bar. The agent is created first when it does
//! not exist yet; the new version is activated.

use agentd_control::{Activation, AgentSpec, ControlError, Deploy, input};
use agentd_core::{ResourceKind, Visibility};
use axum::extract::{Multipart, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::State;
use crate::auth::{Failure, signed_in};
use crate::pages::{Result, signed_in_page};

pub(crate) async fn form(AxumState(state): AxumState<State>, headers: HeaderMap) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let body = html! {
        form.card #deploy method="post" action="/deploy" enctype="multipart/form-data" data-upload {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label for="slug" { "Agent slug (created if new)" }
            input #slug type="text" name="slug" pattern="[a-z0-9][a-z0-9-]*" required;
            label for="bundle" { "Bundle (.tar.gz or .zip with agent.toml at its root)" }
            input #bundle type="file" name="bundle" accept=".tar.gz,.tgz,.zip,application/gzip,application/zip" required;
            progress #progress max="100" value="0" hidden {}
            p #upload-status role="status" {}
            button type="submit" { "Deploy" }
        }
    };
    signed_in_page(&state, &viewer, "Deploy", body).await
}

fn multipart_failed(err: axum::extract::multipart::MultipartError) -> Failure {
    Failure::Api(agentd_api::ApiError::request(err.status(), "invalid_upload", err.body_text()))
}

pub(crate) async fn upload(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response> {
    let viewer = signed_in(&state, &headers).await?;
    let (mut csrf, mut slug, mut bundle) = (None, None, None);
    while let Some(field) = multipart.next_field().await.map_err(multipart_failed)? {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(multipart_failed)?),
            Some("slug") => slug = Some(field.text().await.map_err(multipart_failed)?),
            Some("bundle") => bundle = Some(field.bytes().await.map_err(multipart_failed)?),
            _ => {}
        }
    }
    viewer.check_csrf(csrf.as_deref())?;
    let ctx = viewer.principal.authorize::<Deploy>()?;
    let slug = input::agent_slug(slug.as_deref().unwrap_or("").trim())?;
    let bundle = bundle.filter(|b| !b.is_empty()).ok_or_else(|| Failure::bad_request("choose a bundle to upload"))?;
    let read = viewer.principal.authorize::<agentd_control::Read>()?;
    match state.control.agent_get(&read, &slug).await {
        Ok(_) => {}
        Err(ControlError::NotFound(ResourceKind::Agent)) => {
            let spec = AgentSpec {
                slug: slug.clone(),
                name: None,
                description: None,
                tags: input::Tags::parse(Vec::new())?,
                visibility: Visibility::default(),
            };
            state.control.agent_create(&ctx, spec).await?;
        }
        Err(other) => return Err(other.into()),
    }
    state.control.deploy(&ctx, &slug, bundle, Activation::Activate, None).await?;
    Ok(Redirect::to(&format!("/agents/{slug}")).into_response())
}
