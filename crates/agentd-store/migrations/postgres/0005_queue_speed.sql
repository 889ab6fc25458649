-- The queue's hot paths.
-- Ready runs in the order a claim takes them within a tenant (highest priority, then
-- oldest), so a claim reads one index entry instead of sorting the tenant's backlog.
CREATE INDEX invocations_claim_order ON invocations (tenant_id, priority DESC, id)
    WHERE status IN ('queued', 'retrying');
-- The queue's other indexes cover only the rows they serve (waiting runs, running runs),
-- so a run reaching its final status adds no entry to them: an update of a PostgreSQL
-- row writes every index whose predicate the new version meets.
DROP INDEX invocations_ready;
DROP INDEX invocations_due;
DROP INDEX invocations_lease;
-- Running runs per tenant: the concurrency count of every claim.
CREATE INDEX invocations_running ON invocations (tenant_id) WHERE status = 'running';
-- The next retry coming due (the worker's wake-up).
CREATE INDEX invocations_due ON invocations (run_after) WHERE status IN ('queued', 'retrying');
-- Expired leases (the reaper).
CREATE INDEX invocations_lease ON invocations (lease_expires_at) WHERE status = 'running';
-- How many runs of this tenant have ever been claimed. Only a claim changes it, in the
-- claim's own statement. A PostgreSQL claim that waited for another claim of the same
-- tenant learns from it how many runs were claimed since its snapshot (see queue.rs).
ALTER TABLE tenants ADD COLUMN claims BIGINT NOT NULL DEFAULT 0;
