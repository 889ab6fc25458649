//! The public REST API (`/v1`) of agentd. A handler parses its input, authorizes the
//! caller (getting a [`TenantCtx`](agentd_core::TenantCtx) only after the scope check),
//! calls the store or the domain operation in [`ops`], and maps the result to JSON.
//! Every error leaves through [`ApiError`] as an RFC 9457 problem document.

mod auth;
mod error;
mod extract;
mod ops;
mod request_id;
mod routes;

use std::sync::Arc;

use agentd_core::TenantLimits;
use agentd_store::{Blobs, Store};

pub use error::ApiError;

/// Operator settings the API needs.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Whether `POST /v1/signup` is open to anyone.
    pub signup_enabled: bool,
    /// Limits every new tenant starts with.
    pub default_limits: TenantLimits,
    /// Upper bound on any upload, whatever a tenant's own limit says.
    pub max_upload_bytes: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            signup_enabled: true,
            default_limits: TenantLimits::default(),
            max_upload_bytes: 200 * 1024 * 1024,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) blobs: Blobs,
    pub(crate) settings: Arc<ApiSettings>,
}

impl AppState {
    pub fn new(store: Store, blobs: Blobs, settings: ApiSettings) -> AppState {
        AppState { store, blobs, settings: Arc::new(settings) }
    }
}

pub use routes::router;
