//! `/v1/store`: the tenant's long-term memory store, in the shapes of LangGraph's store
//! API (`namespace` as a list of labels, `namespace_prefix`, `filter`, `limit`/`offset`,
//! `max_depth`), except that a TTL is `ttl_s` in seconds.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::MemoryItem;

/// `PUT /v1/store/items`: creates or replaces the item at `namespace` and `key`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutMemoryItemRequest {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Value,
    /// Seconds the item lives (1 to 31,536,000); absent: until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
}

/// `?namespace=a.b&key=k` of `GET` and `DELETE /v1/store/items`: the namespace's labels
/// joined by `.`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryItemQuery {
    pub namespace: String,
    pub key: String,
}

/// `POST /v1/store/items/search`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchMemoryItemsRequest {
    /// Labels every returned namespace starts with; absent or empty: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_prefix: Option<Vec<String>>,
    /// Top-level fields the value must hold, each equal to the value given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Map<String, Value>>,
    /// 1 to 100; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// `POST /v1/store/namespaces`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListNamespacesRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<Vec<String>>,
    /// Namespaces are cut to this many labels (at least 1); absent: not cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// 1 to 100; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// The items a search found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryItems {
    pub data: Vec<MemoryItem>,
}

/// The namespaces a listing found, each as its labels.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryNamespaces {
    pub data: Vec<Vec<String>>,
}
