-- Files an invocation left in /outputs. The bytes live in the blob store under `digest`;
-- a later attempt that writes the same name replaces the row.
CREATE TABLE invocation_artifacts (
    invocation_id TEXT NOT NULL REFERENCES invocations(id),
    name          TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    size          BIGINT NOT NULL,
    digest        TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (invocation_id, name)
);
