-- The audit log: one row per change a caller made to a tenant's data, appended in the
-- transaction of the change (so a change that rolled back left none). Rows are never
-- changed or removed: the triggers below refuse UPDATE and DELETE.
CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    occurred_at   INTEGER NOT NULL,
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

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
