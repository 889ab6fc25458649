-- Inbound triggers: URLs of an agent's that other systems POST signed requests to, each
-- starting an invocation. The signing secret is sealed by the domain under the master
-- key (as agent secrets are, 0013; the associated data binds tenant, agent and trigger
-- id) and never shown again. Deleting the agent deletes its triggers.
CREATE TABLE triggers (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    agent_id          TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    mode              TEXT NOT NULL,
    envelope          INTEGER NOT NULL,
    description       TEXT,
    secret_ciphertext BLOB NOT NULL,
    secret_nonce      BLOB NOT NULL,
    secret_key_id     TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE INDEX triggers_agent ON triggers (tenant_id, agent_id, created_at);
