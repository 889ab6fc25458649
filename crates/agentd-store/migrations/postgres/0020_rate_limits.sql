-- GCRA state of every rate-limited key (a credential, a tenant, a client address): its
-- theoretical arrival time in microseconds of the database's clock. UNLOGGED: not
-- written to the WAL, so cheap to update on every request; a crash empties it, which
-- only hands every key a full bucket once. A row whose tat has passed is the same as
-- no row, so a reconciler deletes those.
CREATE UNLOGGED TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL,
    touched_us BIGINT NOT NULL,
    refused BOOLEAN NOT NULL DEFAULT false
);
