-- Every run's own credential (AGENTD_TOKEN) and sub-agents.
--
-- run_token_hash: the SHA-256 of the token of the invocation's current attempt, written
-- by the claim statement that starts the attempt, so each attempt's token replaces the
-- last one's. The API accepts a token only while its invocation is running under a live
-- lease; the hash stays after the run ends so that a late caller is told the run ended.
-- parent_id: the run that made this invocation with its token; depth: 0 for invocations
-- a client made, the parent's depth + 1 for a sub-agent's.
-- New columns of invocations, so its row-level security (0003) covers them on PostgreSQL.
ALTER TABLE invocations ADD COLUMN run_token_hash TEXT;
ALTER TABLE invocations ADD COLUMN parent_id TEXT;
ALTER TABLE invocations ADD COLUMN depth BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX invocations_run_token ON invocations (run_token_hash) WHERE run_token_hash IS NOT NULL;
-- A run's sub-invocations, newest first (GET /v1/invocations?parent_id=).
CREATE INDEX invocations_parent ON invocations (tenant_id, parent_id, id) WHERE parent_id IS NOT NULL;
