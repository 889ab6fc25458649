-- Human in the loop: each question an agent asked (an `interrupt` it sent before exiting
-- 0) and the answer it got. A waiting invocation holds no lease, worker or concurrency
-- slot; answering queues it again, and the next attempt gets every answer so far.
CREATE TABLE invocation_interrupts (
    invocation_id TEXT NOT NULL REFERENCES invocations(id),
    round         INTEGER NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    value         TEXT NOT NULL,
    answer        TEXT,
    answered_by   TEXT,
    answered_at   INTEGER,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (invocation_id, round)
);

-- resumes: attempts started by an answer, which count against neither max_attempts nor
-- recoveries. input_timeout_s: how long a question may wait; input_deadline_at: when the
-- open one times out.
ALTER TABLE invocations ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN input_timeout_s INTEGER;
ALTER TABLE invocations ADD COLUMN input_deadline_at INTEGER;
CREATE INDEX invocations_input_deadline ON invocations (input_deadline_at) WHERE status = 'waiting_for_input';
