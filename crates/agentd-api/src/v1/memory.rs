//! `/v1/store`: the tenant's long-term memory store. `PUT`, `GET` and `DELETE
//! /v1/store/items` write, read and delete one item; `POST /v1/store/items/search` and
//! `POST /v1/store/namespaces` find items and namespaces. Writes take `invoke`, reads
//! `read`.
//!
//! A run's own token is accepted on every route here (`authorize_run`): the store is the
//! tenant's, and agents are what it is for.

use agentd_api_types::{
    ListNamespacesRequest, MemoryItem, MemoryItemQuery, MemoryItems, MemoryNamespaces, PutMemoryItemRequest,
    SearchMemoryItemsRequest,
};
use agentd_control::{Invoke, MemoryPutSpec, MemorySearchSpec, NamespaceSpec, Read, input};
use agentd_core::{Namespace, OffsetPage, PageBounds};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};

use crate::extract::{ApiJson, ApiQuery, Caller};
use crate::{ApiError, AppState};

/// A `PUT` body may be up to `item_body_limit` bytes: a value as large as the default
/// `max_store_item_bytes`, with room for the rest of the body.
pub fn routes(item_body_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/store/items",
            put(put_item).layer(DefaultBodyLimit::max(item_body_limit)).get(get_item).delete(delete_item),
        )
        .route("/store/items/search", post(search))
        .route("/store/namespaces", post(namespaces))
}

/// `201` when the item was created (no live item had its key), `200` when replaced.
#[utoipa::path(
    put,
    operation_id = "memory_put_item",
    path = "/v1/store/items",
    tag = "store",
    summary = "Creates or replaces a store item",
    request_body = agentd_api_types::PutMemoryItemRequest,
    responses((status = 200, description = "Replaced", body = agentd_api_types::MemoryItem), (status = 201, description = "Created", body = agentd_api_types::MemoryItem))
)]
async fn put_item(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<PutMemoryItemRequest>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize_run::<Invoke>()?;
    let spec = MemoryPutSpec {
        namespace: input::namespace("namespace", req.namespace)?,
        key: input::memory_key(req.key)?,
        value: input::MemoryValue::parse(req.value)?,
        ttl: input::MemoryTtl::parse(req.ttl_s)?,
    };
    let put = state.control.memory_put(&ctx, spec).await?;
    let status = if put.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(put.item)).into_response())
}

#[utoipa::path(
    get,
    operation_id = "memory_get_item",
    path = "/v1/store/items",
    tag = "store",
    summary = "One store item",
    params(agentd_api_types::MemoryItemQuery),
    responses((status = 200, description = "The item", body = agentd_api_types::MemoryItem))
)]
async fn get_item(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<MemoryItemQuery>,
) -> Result<Json<MemoryItem>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    let namespace = input::namespace_dotted("namespace", &q.namespace)?;
    let key = input::memory_key(q.key)?;
    Ok(Json(state.control.memory_get(&ctx, &namespace, &key).await?))
}

#[utoipa::path(
    delete,
    operation_id = "memory_delete_item",
    path = "/v1/store/items",
    tag = "store",
    summary = "Deletes a store item",
    params(agentd_api_types::MemoryItemQuery),
    responses((status = 204, description = "Deleted"))
)]
async fn delete_item(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<MemoryItemQuery>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize_run::<Invoke>()?;
    let namespace = input::namespace_dotted("namespace", &q.namespace)?;
    let key = input::memory_key(q.key)?;
    state.control.memory_delete(&ctx, &namespace, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn offset_page(limit: Option<i64>, offset: Option<i64>, bounds: PageBounds) -> Result<OffsetPage, ApiError> {
    Ok(OffsetPage::parse(limit, offset, bounds).map_err(agentd_control::Invalid::from)?)
}

#[utoipa::path(
    post,
    operation_id = "memory_search",
    path = "/v1/store/items/search",
    tag = "store",
    summary = "Searches store items",
    request_body = agentd_api_types::SearchMemoryItemsRequest,
    responses((status = 200, description = "Items", body = agentd_api_types::MemoryItems))
)]
async fn search(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<SearchMemoryItemsRequest>,
) -> Result<Json<MemoryItems>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    let spec = MemorySearchSpec {
        prefix: input::namespace_match("namespace_prefix", req.namespace_prefix)?,
        filter: input::MemoryFilter::parse(req.filter)?,
        page: offset_page(req.limit, req.offset, PageBounds::MEMORY_ITEMS)?,
    };
    Ok(Json(MemoryItems { data: state.control.memory_search(&ctx, spec).await? }))
}

#[utoipa::path(
    post,
    operation_id = "memory_namespaces",
    path = "/v1/store/namespaces",
    tag = "store",
    summary = "Lists store namespaces",
    request_body = agentd_api_types::ListNamespacesRequest,
    responses((status = 200, description = "Namespaces", body = agentd_api_types::MemoryNamespaces))
)]
async fn namespaces(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<ListNamespacesRequest>,
) -> Result<Json<MemoryNamespaces>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    let spec = NamespaceSpec {
        prefix: input::namespace_match("prefix", req.prefix)?,
        suffix: input::namespace_match("suffix", req.suffix)?,
        max_depth: input::MaxDepth::parse(req.max_depth)?,
        page: offset_page(req.limit, req.offset, PageBounds::MEMORY_NAMESPACES)?,
    };
    let found = state.control.memory_namespaces(&ctx, spec).await?;
    Ok(Json(MemoryNamespaces { data: found.into_iter().map(Namespace::into_labels).collect() }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(put_item, get_item, delete_item, search, namespaces))]
pub(super) struct Doc;
