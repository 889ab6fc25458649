-- The tenant's long-term memory store (/v1/store): JSON items keyed by namespace (its
-- labels joined by '.') and key. Both are compared byte by byte (COLLATE "C"), as on
-- SQLite, so a namespace prefix is a range of the primary key and both engines sort
-- alike. size_bytes is what the item counts against max_store_bytes (value text,
-- namespace and key). An item whose expires_at has passed is invisible at once; the
-- expiry reconciler deletes it and gives its bytes back.
CREATE TABLE memory_items (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    namespace  TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (tenant_id, namespace, key)
);
CREATE INDEX memory_items_expiry ON memory_items (expires_at) WHERE expires_at IS NOT NULL;

-- The sum of size_bytes of a tenant's items, kept in the transaction of every write
-- (+new -old), so the quota is checked without summing the table. Every write locks
-- this row first: one tenant's writes to the store are serialized, which keeps the sum
-- exact and the lock order the same for every writer.
CREATE TABLE memory_usage (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    bytes     BIGINT NOT NULL
);

-- Row-level security, as for every tenant table (0003): tenants read and write their own.
GRANT SELECT, INSERT, UPDATE, DELETE ON memory_items, memory_usage TO agentd_tenant;
ALTER TABLE memory_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memory_items TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
ALTER TABLE memory_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memory_usage TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
