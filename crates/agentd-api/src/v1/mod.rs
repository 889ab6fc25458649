//! `/v1`: the tenant REST API (DESIGN §4). One module per resource, each exporting its
//! routes; a handler is extract → authorize → call the domain → map to a wire type.

mod accounts;
mod admin;
mod agents;
mod artifacts;
mod audit;
mod builds;
mod events;
mod invocations;
mod keys;
mod limits;
mod members;
mod memory;
mod runtimes;
mod schedules;
mod secrets;
mod threads;
mod triggers;
mod usage;
mod webhooks;

use axum::Router;

use crate::AppState;

/// How large a body the routes that take more than a small JSON document accept.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Bundle uploads.
    pub upload: usize,
    /// A memory store item written with `PUT /v1/store/items`.
    pub memory_item: usize,
}

/// The tenant routes.
pub fn routes(limits: BodyLimits) -> Router<AppState> {
    Router::new()
        .merge(accounts::routes())
        .merge(keys::routes())
        .merge(agents::routes(limits.upload))
        .merge(invocations::routes())
        .merge(events::routes())
        .merge(artifacts::routes())
        .merge(builds::routes())
        .merge(runtimes::routes())
        .merge(threads::routes())
        .merge(schedules::routes())
        .merge(usage::routes())
        .merge(limits::routes())
        .merge(memory::routes(limits.memory_item))
        .merge(secrets::routes())
        .merge(triggers::routes())
        .merge(members::routes())
        .merge(audit::routes())
        .merge(webhooks::routes())
        .merge(admin::routes())
}

/// The OpenAPI paths of the tenant routes: each module describes its own handlers.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = accounts::Doc::openapi();
    doc.merge(admin::Doc::openapi());
    doc.merge(agents::Doc::openapi());
    doc.merge(artifacts::Doc::openapi());
    doc.merge(audit::Doc::openapi());
    doc.merge(builds::Doc::openapi());
    doc.merge(events::Doc::openapi());
    doc.merge(invocations::Doc::openapi());
    doc.merge(keys::Doc::openapi());
    doc.merge(limits::Doc::openapi());
    doc.merge(members::Doc::openapi());
    doc.merge(memory::Doc::openapi());
    doc.merge(runtimes::Doc::openapi());
    doc.merge(schedules::Doc::openapi());
    doc.merge(secrets::Doc::openapi());
    doc.merge(threads::Doc::openapi());
    doc.merge(triggers::Doc::openapi());
    doc.merge(usage::Doc::openapi());
    doc.merge(webhooks::Doc::openapi());
    doc
}
