//! Routes of the tenant's memory store (`/v1/store`).

use agentd_api_types::{
    ListNamespacesRequest, MemoryItem, MemoryItemQuery, MemoryItems, MemoryNamespaces, PutMemoryItemRequest,
    SearchMemoryItemsRequest,
};
use reqwest::Method;

use crate::{Client, ClientError};

/// The query naming one item: the namespace's labels joined by `.`, as the server reads them.
fn item_query(namespace: &[&str], key: &str) -> MemoryItemQuery {
    MemoryItemQuery { namespace: namespace.join("."), key: key.to_owned() }
}

impl Client {
    /// `PUT /v1/store/items`: creates or replaces an item (the server answers `201` or `200`).
    pub async fn store_item_put(&self, request: &PutMemoryItemRequest) -> Result<MemoryItem, ClientError> {
        self.call(self.route(Method::PUT, &["v1", "store", "items"])?.json(request)).await
    }

    /// `GET /v1/store/items?namespace=…&key=…`: a live item.
    pub async fn store_item_get(&self, namespace: &[&str], key: &str) -> Result<MemoryItem, ClientError> {
        let query = item_query(namespace, key);
        self.call(self.route(Method::GET, &["v1", "store", "items"])?.query(&query)).await
    }

    /// `DELETE /v1/store/items?namespace=…&key=…` (204).
    pub async fn store_item_delete(&self, namespace: &[&str], key: &str) -> Result<(), ClientError> {
        let query = item_query(namespace, key);
        self.call_empty(self.route(Method::DELETE, &["v1", "store", "items"])?.query(&query)).await
    }

    /// `POST /v1/store/items/search`: items under a prefix whose values match a filter,
    /// newest-updated first.
    pub async fn store_items_search(&self, request: &SearchMemoryItemsRequest) -> Result<MemoryItems, ClientError> {
        self.call(self.route(Method::POST, &["v1", "store", "items", "search"])?.json(request)).await
    }

    /// `POST /v1/store/namespaces`: distinct namespaces, cut to `max_depth`, sorted.
    pub async fn store_namespaces(&self, request: &ListNamespacesRequest) -> Result<MemoryNamespaces, ClientError> {
        self.call(self.route(Method::POST, &["v1", "store", "namespaces"])?.json(request)).await
    }
}
