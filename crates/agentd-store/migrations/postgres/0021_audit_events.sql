-- The audit log: one row per change a caller made to a tenant's data, appended in the
-- transaction of the change (so a change that rolled back left none). Rows are never
-- changed or removed: the tenant role may only read and append, and the triggers below
-- refuse UPDATE and DELETE to everyone, the owning user included.
CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    occurred_at   BIGINT NOT NULL,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    result        TEXT NOT NULL,
    client_ip     TEXT,
    request_id    TEXT,
    details       TEXT NOT NULL DEFAULT '{}'
);
-- Newest-first pages of one tenant (ids are time-ordered), and of one resource's history.
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
CREATE INDEX audit_events_resource ON audit_events (tenant_id, resource_id, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- Row-level security, as for every tenant table (0003), without UPDATE and DELETE.
GRANT SELECT, INSERT ON audit_events TO agentd_tenant;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
