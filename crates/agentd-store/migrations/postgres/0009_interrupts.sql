-- Human in the loop: each question an agent asked (an `interrupt` it sent before exiting
-- 0) and the answer it got. A waiting invocation holds no lease, worker or concurrency
-- slot; answering queues it again, and the next attempt gets every answer so far.
CREATE TABLE invocation_interrupts (
    invocation_id TEXT NOT NULL REFERENCES invocations(id),
    round         BIGINT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    value         TEXT NOT NULL,
    answer        TEXT,
    answered_by   TEXT,
    answered_at   BIGINT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (invocation_id, round)
);

-- resumes: attempts started by an answer, which count against neither max_attempts nor
-- recoveries. input_timeout_s: how long a question may wait; input_deadline_at: when the
-- open one times out.
ALTER TABLE invocations ADD COLUMN resumes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN input_timeout_s BIGINT;
ALTER TABLE invocations ADD COLUMN input_deadline_at BIGINT;
CREATE INDEX invocations_input_deadline ON invocations (input_deadline_at) WHERE status = 'waiting_for_input';

-- Row-level security, as for every tenant table (0003): tenants read them and answer.
GRANT SELECT, UPDATE ON invocation_interrupts TO agentd_tenant;
ALTER TABLE invocation_interrupts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invocation_interrupts TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
