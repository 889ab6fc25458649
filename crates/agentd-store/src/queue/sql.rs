//! The queue's statements, per engine. PostgreSQL does a claim and a completion in one
//! statement each (one round trip, one commit, notifications included); SQLite, behind
//! its single writer connection, claims in one statement and completes in a short
//! transaction.
//!
//! Parameters of a claim: `$1` worker, `$2` lease expiry, `$3` now (unix ms), `$4` the
//! SHA-256 of the new attempt's run token, which replaces the last attempt's in the same
//! statement (so a token is good for one attempt only), `$5` the platform's default
//! `max_concurrent_invocations`, for tenants without an override of their own
//! (`max_concurrent_override`).
//!
//! A run on a thread is ready only when no earlier run of its thread is still going
//! (queued, running, retrying or waiting for an answer), so a thread's runs run one at a
//! time in the order they were accepted. The test is the same at the tenant's choice and
//! at the pick, so a tenant whose only ready runs wait on their threads is not chosen.
//! Two claims cannot take two runs of one thread: the later run stays blocked until the
//! earlier one has *committed* a terminal status, whatever either claim's snapshot shows.

/// SQLite's claim, one statement: the next run of the tenant to serve next (has a ready
/// run, is below its concurrency limit, was served longest ago), with what the worker
/// needs to start it. The trigger `invocations_claimed` (migration 0005) stamps the
/// tenant in the same statement. One writer connection: this statement is the only one
/// claiming, so the running count it reads is exact.
pub(super) const SQLITE_CLAIM: &str = "UPDATE invocations SET status = 'running', attempt = attempt + 1,
        lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), cancel_requested = 0,
        run_token_hash = $4, claimed_at = $3
    WHERE id = (
        SELECT i.id FROM invocations i INDEXED BY invocations_claim_order
        WHERE i.tenant_id = (
                SELECT t.id FROM tenants t
                WHERE t.status = 'active'
                  AND EXISTS (SELECT 1 FROM invocations r INDEXED BY invocations_claim_order
                              WHERE r.tenant_id = t.id AND r.status IN ('queued', 'retrying') AND r.run_after <= $3
                                AND (r.thread_id IS NULL OR NOT EXISTS (SELECT 1 FROM invocations p INDEXED BY invocations_thread
                  WHERE p.thread_id = r.thread_id AND p.id < r.id
                    AND p.status IN ('queued', 'running', 'retrying', 'waiting_for_input'))))
                  AND (SELECT COUNT(*) FROM invocations r WHERE r.tenant_id = t.id AND r.status = 'running')
                      < COALESCE(t.max_concurrent_override, $5)
                ORDER BY t.last_claimed_at, t.id LIMIT 1)
          AND i.status IN ('queued', 'retrying') AND i.run_after <= $3
          AND (i.thread_id IS NULL OR NOT EXISTS (SELECT 1 FROM invocations p INDEXED BY invocations_thread
                  WHERE p.thread_id = i.thread_id AND p.id < i.id
                    AND p.status IN ('queued', 'running', 'retrying', 'waiting_for_input')))
        ORDER BY i.priority DESC, i.id LIMIT 1)
    RETURNING id, tenant_id, agent_slug, attempt, max_attempts, input, env, thread_id, timeout_s, resumes,
        (SELECT v.digest FROM agent_versions v WHERE v.id = version_id) AS digest,
        (SELECT v.manifest FROM agent_versions v WHERE v.id = version_id) AS manifest,
        (SELECT v.dependencies_archive FROM agent_versions v WHERE v.id = version_id) AS dependencies,
        (SELECT t.limit_overrides FROM tenants t WHERE t.id = tenant_id) AS limit_overrides,
        (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM invocation_events e WHERE e.invocation_id = id) AS next_seq";

/// Tenants that have a ready run and, as far as the statement's snapshot shows, a free
/// concurrency slot; oldest-served first. Shared by both ways of locking one below.
macro_rules! eligible_tenants {
    () => {
        "SELECT t.id, COALESCE(t.max_concurrent_override, $5) AS max_concurrent, t.claims FROM tenants t
        WHERE t.status = 'active'
          AND EXISTS (SELECT 1 FROM invocations i
                      WHERE i.tenant_id = t.id AND i.status IN ('queued', 'retrying') AND i.run_after <= $3
                        AND (i.thread_id IS NULL OR NOT EXISTS (SELECT 1 FROM invocations p
                  WHERE p.thread_id = i.thread_id AND p.id < i.id
                    AND p.status IN ('queued', 'running', 'retrying', 'waiting_for_input')))
                      OFFSET 0)
          AND (SELECT COUNT(*) FROM invocations r WHERE r.tenant_id = t.id AND r.status = 'running')
              < COALESCE(t.max_concurrent_override, $5)"
    };
}

/// The claim in one statement.
///
/// Claims of one tenant serialize on its row: `free` locks the first eligible tenant no
/// other claim holds; when every eligible tenant is held (fewer tenants with work than
/// claimers), `held` waits for the first of them instead of coming back empty. The lock
/// is `NO KEY UPDATE`, which the key-share lock of an enqueue's foreign-key check does
/// not block: a tenant is not skipped while one of its runs is being enqueued.
///
/// The concurrency limit is exact although the running count comes from the statement's
/// snapshot: a claim of the same tenant that committed after that snapshot (the one
/// `held` waited for, typically) is not in the count, but it moved `claims` on the row
/// we locked, which we read at its latest version; the difference from `claims` at the
/// snapshot is added as running. Completions we do not see only make the count high.
pub(super) const POSTGRES_CLAIM: &str = concat!(
    "WITH free AS (",
    eligible_tenants!(),
    "
        ORDER BY t.last_claimed_at, t.id LIMIT 1
        FOR NO KEY UPDATE OF t SKIP LOCKED
    ), held AS (",
    eligible_tenants!(),
    "
          AND NOT EXISTS (SELECT 1 FROM free)
        ORDER BY t.last_claimed_at, t.id LIMIT 1
        FOR NO KEY UPDATE OF t
    ), tenant AS (
        SELECT id, max_concurrent, claims FROM free UNION ALL SELECT id, max_concurrent, claims FROM held
    ), below_limit AS (
        SELECT tenant.id FROM tenant
        WHERE (SELECT COUNT(*) FROM invocations r WHERE r.tenant_id = tenant.id AND r.status = 'running')
              + tenant.claims - (SELECT s.claims FROM tenants s WHERE s.id = tenant.id) < tenant.max_concurrent
    ), pick AS (
        SELECT i.id, i.tenant_id FROM invocations i
        WHERE i.tenant_id = (SELECT id FROM below_limit)
          AND i.status IN ('queued', 'retrying') AND i.run_after <= $3
          AND (i.thread_id IS NULL OR NOT EXISTS (SELECT 1 FROM invocations p
                  WHERE p.thread_id = i.thread_id AND p.id < i.id
                    AND p.status IN ('queued', 'running', 'retrying', 'waiting_for_input')))
        ORDER BY i.priority DESC, i.id LIMIT 1
        FOR UPDATE OF i SKIP LOCKED
    ), served AS (
        UPDATE tenants SET last_claimed_at = $3, claims = tenants.claims + 1
        FROM pick WHERE tenants.id = pick.tenant_id RETURNING tenants.id
    )
    UPDATE invocations SET status = 'running', attempt = attempt + 1,
        lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), cancel_requested = 0,
        run_token_hash = $4, claimed_at = $3
    FROM pick, served WHERE invocations.id = pick.id
    RETURNING invocations.id, invocations.tenant_id, invocations.agent_slug,
        invocations.attempt, invocations.max_attempts, invocations.input, invocations.env, invocations.thread_id,
        invocations.timeout_s, invocations.resumes,
        (SELECT v.digest FROM agent_versions v WHERE v.id = invocations.version_id) AS digest,
        (SELECT v.manifest FROM agent_versions v WHERE v.id = invocations.version_id) AS manifest,
        (SELECT v.dependencies_archive FROM agent_versions v WHERE v.id = invocations.version_id) AS dependencies,
        (SELECT t.limit_overrides FROM tenants t WHERE t.id = invocations.tenant_id) AS limit_overrides,
        (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM invocation_events e WHERE e.invocation_id = invocations.id)
            AS next_seq"
);

// Parameters of a completion: `$1` status reported, `$2` whether it is an agent failure
// that may be retried, `$3` output, `$4` error code, `$5` error message, `$6` now, `$7`
// retry at, `$8`..`$11` usage, `$12` id, `$13` lease owner, `$14` attempt, `$15` whether
// it is a platform failure (recovered while recoveries are left), `$16` max recoveries.
// Attempts and recoveries left are read from the row, never taken from the (possibly
// remote) worker. A recovery runs again at once, as a new attempt, without consuming
// `max_attempts`, and so does a resume after an answer: `attempt - recoveries - resumes`
// counts the attempts the agent is answerable for.

/// Only a run still held under this lease is completed.
macro_rules! fenced {
    () => {
        "id = $12 AND lease_owner = $13 AND attempt = $14 AND status = 'running'"
    };
}

/// The platform failed the run and it may be recovered.
macro_rules! recovering {
    () => {
        "($15 AND recoveries < $16)"
    };
}

/// The agent failed the run and it may be retried (`$2` and `$15` never hold together).
macro_rules! retrying {
    () => {
        "($2 AND attempt - recoveries - resumes < max_attempts)"
    };
}

/// The status the run ends in.
macro_rules! new_status {
    () => {
        concat!("CASE WHEN ", recovering!(), " THEN 'queued' WHEN ", retrying!(), " THEN 'retrying' ELSE $1 END")
    };
}

macro_rules! complete_update {
    () => {
        concat!(
            "UPDATE invocations SET status = ",
            new_status!(),
            ", recoveries = CASE WHEN ",
            recovering!(),
            " THEN recoveries + 1 ELSE recoveries END,
                output = $3,
                error_code = CASE WHEN $1 = 'cancelled' AND cancel_requested = 2 THEN 'interrupted'
                                  WHEN $1 = 'cancelled' AND cancel_requested = 3 THEN 'rolled_back' ELSE $4 END,
                error_message = CASE
                    WHEN $1 = 'cancelled' AND cancel_requested = 2
                        THEN 'interrupted by a newer run on its thread (multitask_strategy interrupt); its state so far is kept'
                    WHEN $1 = 'cancelled' AND cancel_requested = 3
                        THEN 'rolled back by a newer run on its thread (multitask_strategy rollback); its checkpoints are discarded'
                    ELSE $5 END,
                finished_at = CASE WHEN ",
            recovering!(),
            " OR ",
            retrying!(),
            " THEN NULL ELSE $6 END,
                run_after = CASE WHEN ",
            retrying!(),
            " THEN $7 ELSE $6 END,
                lease_owner = NULL, lease_expires_at = NULL,
                wall_ms = wall_ms + $8, cpu_ms = cpu_ms + $9,
                peak_memory_bytes = CASE WHEN peak_memory_bytes > $10 THEN peak_memory_bytes ELSE $10 END,
                log_bytes = log_bytes + $11
            WHERE ",
            fenced!()
        )
    };
}

/// The closing status event of the run `done` (a table with `id`, `tenant_id`, the new
/// `status`, and `recovery`: the recovery's number, or 0 when it is none); it commits
/// with the status itself, so a worker dying between the two can never leave a
/// "succeeded" event on a run that will run again.
macro_rules! closing_event {
    ($done:literal) => {
        concat!(
            "INSERT INTO invocation_events (invocation_id, seq, tenant_id, ts, kind, stream, level, message, data)
            SELECT id, (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM invocation_events e WHERE e.invocation_id = id),
                tenant_id, $6, 'status', 'system', CASE WHEN recovery > 0 THEN 'warn' ELSE 'info' END,
                CASE WHEN recovery > 0 THEN 'queued: ' || COALESCE($5, 'the platform failed the run')
                        || '; running it again as a new attempt (recovery ' || recovery || ' of ' || $16 || ')'
                     WHEN $5 IS NULL THEN status ELSE status || ': ' || $5 END,
                CASE WHEN recovery > 0
                     THEN '{\"status\":\"queued\",\"reason\":\"' || COALESCE($4, 'platform') || '\",\"recovery\":' || recovery || '}'
                     ELSE '{\"status\":\"' || status || '\"}' END
            FROM ",
            $done
        )
    };
}

/// On SQLite, in the completion's transaction: the event (computed from the row before
/// it changes), then the update. Both statements go in one call; the update comes last
/// so that its `RETURNING` row is read after both ran.
pub(super) const SQLITE_COMPLETE: &str = concat!(
    closing_event!("(SELECT id, tenant_id, "),
    new_status!(),
    " AS status, CASE WHEN ",
    recovering!(),
    " THEN recoveries + 1 ELSE 0 END AS recovery FROM invocations WHERE ",
    fenced!(),
    ");\n",
    complete_update!(),
    " RETURNING status"
);

/// On PostgreSQL, one statement: the fenced update, its closing event and the
/// notifications (`$17` channel, `$18` this run changed, `$19` a run is queued), which
/// PostgreSQL delivers at commit; nothing is written or sent when the lease was lost.
/// Only a recovery turns a running invocation back into `queued`, so that status tells
/// the event which it was.
pub(super) const POSTGRES_COMPLETE: &str = concat!(
    "WITH done AS (",
    complete_update!(),
    " RETURNING id, tenant_id, status, CASE WHEN status = 'queued' THEN recoveries ELSE 0 END AS recovery
    ), event AS (",
    closing_event!("done"),
    "
    ), notified AS (
        SELECT pg_notify($17, $18) FROM done
        UNION ALL SELECT pg_notify($17, $19) FROM done WHERE status IN ('retrying', 'queued')
    )
    SELECT status, (SELECT COUNT(*) FROM notified) AS notified FROM done"
);
