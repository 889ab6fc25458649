//! The machine-readable contract: an OpenAPI 3.1 document derived from the handlers'
//! `#[utoipa::path]` annotations and the wire types' `ToSchema` derives, served at
//! `GET /openapi.json`, and Swagger UI (vendored into the binary) at `GET /docs`.
//!
//! Handlers describe their success responses; the problem documents every route can
//! answer are added here, in one place, as [`ApiError`](crate::ApiError) makes them.

use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder, ServerBuilder};
use utoipa::{Modify, ToSchema};

/// An RFC 9457 problem document, as every error of the API is answered
/// (`application/problem+json`).
#[derive(ToSchema)]
#[schema(as = Problem)]
#[expect(dead_code, reason = "a schema only: `ApiError` writes the document")]
pub(crate) struct ProblemSchema {
    /// `urn:agentd:problem:<code>`.
    #[schema(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: String,
    status: u16,
    /// What was wrong and what to do, for people.
    detail: String,
    /// The stable machine code (see docs/API.md).
    code: String,
    /// The request's `x-request-id`, to quote when reporting a problem.
    request_id: String,
    /// For `input_invalid`: where the input broke the agent's schema.
    #[schema(nullable = false)]
    errors: Option<Vec<SchemaViolationSchema>>,
}

/// One place where a document broke a JSON Schema.
#[derive(ToSchema)]
#[schema(as = SchemaViolation)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct SchemaViolationSchema {
    /// JSON Pointer into the document.
    path: String,
    message: String,
}

/// The errors a route may answer, with the machine codes each status carries. The codes
/// are those of `error.rs`; a status a route cannot answer is harmless to list.
const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "Malformed request: `malformed_json`, `malformed_request`, `invalid_query`, `invalid_limit`, `invalid_cursor`, `invalid_wait`, …",
    ),
    (
        "401",
        "No or bad credentials: `unauthorized`, `run_token_not_accepted`, `run_ended`, `operator_token_not_accepted`, `trigger_signature_invalid`",
    ),
    (
        "403",
        "Scope or role: `insufficient_scope`, `tenant_suspended`, `session_required`, `owner_required`, `operator_required`, `signup_disabled`, …",
    ),
    ("404", "Missing, or another workspace's: `not_found`, `route_not_found`"),
    (
        "409",
        "Conflict with the current state: `agent_exists`, `workspace_slug_taken`, `email_taken`, `invocation_finished`, `not_waiting`, `thread_busy`, `max_agents`, `max_api_keys`, `max_queued_invocations`, …",
    ),
    ("413", "Too large: `max_request_body_bytes`, `max_bundle_bytes`, `max_storage_bytes`, `state_too_large`, …"),
    ("415", "Wrong content type: `unsupported_media_type`"),
    (
        "422",
        "Well-formed but invalid: `invalid_body`, `invalid_field`, `invalid_slug`, `invalid_email`, `weak_password`, `input_invalid`, `bundle_*`, …",
    ),
    ("429", "Rate or quota; see `Retry-After`: `login_throttled`, `secret_limit`"),
    ("500", "Internal error: `internal` (the body says nothing more; quote the request id)"),
    ("503", "Draining or unavailable"),
];

/// Adds the problem responses and the bearer scheme to every operation.
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`agd_…`), a session token from `POST /v1/auth/login`, a run's `AGENTD_TOKEN`, \
                         or for `/v1/admin` an operator token",
                    ))
                    .build(),
            ),
        );
        let problem = ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))));
        let problem = problem.build();
        for item in doc.paths.paths.values_mut() {
            for operation in operations(item) {
                for (status, description) in ERRORS {
                    operation.responses.responses.entry((*status).to_owned()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(*description)
                            .content("application/problem+json", problem.clone())
                            .build()
                            .into()
                    });
                }
            }
        }
        doc.servers = Some(vec![ServerBuilder::new().url("/").description(Some("This server")).build()]);
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
    ]
    .into_iter()
    .flatten()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "agentd",
        description = "Host AI agents: deploy them, invoke them, follow their runs. Errors are RFC 9457 problem \
                       documents with a stable `code`; lists are cursor-paginated (`?limit=&cursor=` → \
                       `{data, next_cursor}`). docs/API.md is the prose reference.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ProblemSchema, SchemaViolationSchema)),
    security(("bearer" = [])),
    modifiers(&Contract)
)]
struct Root;

/// The whole document: the `/v1` tenant routes and their shared parts.
pub fn document() -> OpenApi {
    use utoipa::OpenApi as _;
    let mut doc = Root::openapi();
    doc.merge(crate::v1::openapi());
    Contract.modify(&mut doc);
    doc
}

/// `GET /openapi.json` (the document) and `GET /docs` (Swagger UI, from the binary; its
/// "try it" calls this same server, the document's server being `/`).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let config = utoipa_swagger_ui::Config::new(["/openapi.json"]).persist_authorization(true).try_it_out_enabled(true);
    Router::from(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", document()).config(config))
}
