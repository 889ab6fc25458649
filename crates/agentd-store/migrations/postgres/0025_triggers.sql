-- Inbound triggers: URLs of an agent's that other systems POST signed requests to, each
-- starting an invocation. The signing secret is sealed by the domain under the master
-- key (as agent secrets are, 0013; the associated data binds tenant, agent and trigger
-- id) and never shown again. Deleting the agent deletes its triggers.
CREATE TABLE triggers (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    agent_id          TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    mode              TEXT NOT NULL,
    envelope          BIGINT NOT NULL,
    description       TEXT,
    secret_ciphertext BYTEA NOT NULL,
    secret_nonce      BYTEA NOT NULL,
    secret_key_id     TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX triggers_agent ON triggers (tenant_id, agent_id, created_at);

-- Row-level security, as for every tenant table (0003). Tenants create, list and delete
-- their triggers; a signed request finds its trigger by id as the owner (there is no
-- tenant until it is found).
GRANT SELECT, INSERT, UPDATE, DELETE ON triggers TO agentd_tenant;
ALTER TABLE triggers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON triggers TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
