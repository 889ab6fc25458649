//! `/v1`: the tenant REST API (DESIGN §4). One module per resource, each exporting its
//! routes; a handler is extract → authorize → call the domain → map to a wire type.

mod accounts;
mod agents;
mod artifacts;
mod builds;
mod events;
mod invocations;
mod keys;
mod runtimes;
mod secrets;

use axum::Router;

use crate::AppState;

/// The tenant routes; bundle uploads take bodies up to `upload_limit` bytes.
pub fn routes(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .merge(accounts::routes())
        .merge(keys::routes())
        .merge(agents::routes(upload_limit))
        .merge(invocations::routes())
        .merge(events::routes())
        .merge(artifacts::routes())
        .merge(builds::routes())
        .merge(runtimes::routes())
        .merge(secrets::routes())
}
