-- The tenant's long-term memory store (/v1/store): JSON items keyed by namespace (its
-- labels joined by '.') and key, compared byte by byte (SQLite's BINARY collation, as
-- COLLATE "C" on PostgreSQL). size_bytes is what the item counts against
-- max_store_bytes (value text, namespace and key). An item whose expires_at has passed
-- is invisible at once; the expiry reconciler deletes it and gives its bytes back.
CREATE TABLE memory_items (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant_id, namespace, key)
);
CREATE INDEX memory_items_expiry ON memory_items (expires_at) WHERE expires_at IS NOT NULL;

-- The sum of size_bytes of a tenant's items, kept in the transaction of every write
-- (+new -old), so the quota is checked without summing the table.
CREATE TABLE memory_usage (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    bytes     INTEGER NOT NULL
);
