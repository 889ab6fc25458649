//! The platform's metrics: every name, its help text and the one function that records
//! it, so a name is spelled once. Recording goes through the `metrics` facade; the
//! process that serves them installs the Prometheus recorder (`agentd-api`), and without
//! one every call here is a no-op (unit tests, tools).
//!
//! Labels are bounded by construction: statuses, limit codes, route templates, worker
//! names the operator chose. No tenant, agent or invocation id is ever a label: an id per
//! series would grow the exporter's memory without bound.

use std::time::Duration;

use agentd_core::InvocationStatus;

pub const INVOCATIONS_CREATED: &str = "agentd_invocations_created_total";
pub const RUN_ATTEMPTS_FINISHED: &str = "agentd_run_attempts_finished_total";
pub const INVOCATIONS_CANCELLED: &str = "agentd_invocations_cancelled_total";
pub const INVOCATIONS: &str = "agentd_invocations";
pub const QUEUE_OLDEST_AGE: &str = "agentd_queue_oldest_ready_age_seconds";
pub const CLAIM_DURATION: &str = "agentd_claim_duration_seconds";
pub const LEASE_REAPS: &str = "agentd_lease_reaps_total";
pub const RATE_LIMITED: &str = "agentd_rate_limited_total";
pub const SSE_STREAMS_OPEN: &str = "agentd_sse_streams_open";
pub const SANDBOX_SPAWN: &str = "agentd_sandbox_spawn_seconds";
pub const RUNS_IN_FLIGHT: &str = "agentd_worker_runs_in_flight";
pub const HTTP_REQUESTS: &str = "agentd_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "agentd_http_request_duration_seconds";
pub const WEBHOOK_ATTEMPTS: &str = "agentd_webhook_attempts_total";

/// The statuses of invocations that are not finished: the queue's depth is counted by these.
pub const UNFINISHED: [InvocationStatus; 4] = [
    InvocationStatus::Queued,
    InvocationStatus::Retrying,
    InvocationStatus::Running,
    InvocationStatus::WaitingForInput,
];

/// Gives every metric its help text; call once, after the recorder is installed.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(INVOCATIONS_CREATED, "Invocations accepted (an idempotent replay is not counted again).");
    describe_counter!(
        RUN_ATTEMPTS_FINISHED,
        "Attempts whose worker reported an end, by the outcome it reported (a failure may still be retried)."
    );
    describe_counter!(INVOCATIONS_CANCELLED, "Cancels accepted, of queued and of running invocations.");
    describe_gauge!(INVOCATIONS, "Unfinished invocations over every tenant, by status, read from the store at scrape.");
    describe_gauge!(
        QUEUE_OLDEST_AGE,
        "Seconds the oldest run ready to be claimed has waited since it was accepted (0 when none waits)."
    );
    describe_histogram!(CLAIM_DURATION, "Seconds one claim statement took, successful or empty.");
    describe_counter!(LEASE_REAPS, "Runs put back or failed because their lease expired (their worker was lost).");
    describe_counter!(WEBHOOK_ATTEMPTS, "Webhook delivery attempts, by outcome (succeeded or failed).");
    describe_counter!(RATE_LIMITED, "Requests refused with 429, by the limit that refused them.");
    describe_gauge!(SSE_STREAMS_OPEN, "Server-sent event streams open now (invocation events and build logs).");
    describe_histogram!(SANDBOX_SPAWN, "Seconds from asking the sandbox for a run until its program was started.");
    describe_gauge!(RUNS_IN_FLIGHT, "Runs this process's worker executes now, by worker name.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests served, by method, route template and status.");
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        "Seconds to serve an HTTP request, by method, route template and status."
    );
}

pub fn invocation_created() {
    ::metrics::counter!(INVOCATIONS_CREATED).increment(1);
}

/// An attempt ended as its worker reported (`succeeded`, `failed`, `timed_out`,
/// `cancelled`, `waiting_for_input`).
pub fn run_attempt_finished(status: InvocationStatus) {
    ::metrics::counter!(RUN_ATTEMPTS_FINISHED, "status" => status.as_str()).increment(1);
}

pub fn invocation_cancelled() {
    ::metrics::counter!(INVOCATIONS_CANCELLED).increment(1);
}

pub fn claim_took(duration: Duration) {
    ::metrics::histogram!(CLAIM_DURATION).record(duration.as_secs_f64());
}

pub fn webhook_attempt(succeeded: bool) {
    let outcome = if succeeded { "succeeded" } else { "failed" };
    ::metrics::counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
}

pub fn leases_reaped(count: u64) {
    ::metrics::counter!(LEASE_REAPS).increment(count);
}

/// A request refused with `429` by the limit `limit` (its stable code, e.g.
/// `requests_per_second`, `login_throttled`): the one place rate limiters report to.
pub fn rate_limited(limit: &'static str) {
    ::metrics::counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// The queue as read at a scrape: unfinished invocations per status, and the age of the
/// oldest ready run.
pub fn queue_observed(depth: impl Fn(InvocationStatus) -> u64, oldest_ready_age: Option<Duration>) {
    for status in UNFINISHED {
        ::metrics::gauge!(INVOCATIONS, "status" => status.as_str()).set(depth(status) as f64);
    }
    ::metrics::gauge!(QUEUE_OLDEST_AGE).set(oldest_ready_age.map_or(0.0, |age| age.as_secs_f64()));
}

pub fn sandbox_spawned(took: Duration) {
    ::metrics::histogram!(SANDBOX_SPAWN).record(took.as_secs_f64());
}

/// Counts one open SSE stream while it lives.
#[must_use = "the stream counts as open only while the guard lives"]
pub struct OpenStream(());

impl OpenStream {
    pub fn open() -> OpenStream {
        ::metrics::gauge!(SSE_STREAMS_OPEN).increment(1.0);
        OpenStream(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        ::metrics::gauge!(SSE_STREAMS_OPEN).decrement(1.0);
    }
}

/// Counts one run in flight on worker `worker` while it lives.
#[must_use = "the run counts as in flight only while the guard lives"]
pub struct RunInFlight(String);

impl RunInFlight {
    pub fn start(worker: &str) -> RunInFlight {
        ::metrics::gauge!(RUNS_IN_FLIGHT, "worker" => worker.to_owned()).increment(1.0);
        RunInFlight(worker.to_owned())
    }
}

impl Drop for RunInFlight {
    fn drop(&mut self) {
        ::metrics::gauge!(RUNS_IN_FLIGHT, "worker" => self.0.clone()).decrement(1.0);
    }
}

/// One HTTP request served; `route` is the route template (`/v1/agents/{slug}`), never
/// the path, and `method` one of the standard ones or `other`.
pub fn http_request_served(method: &'static str, route: String, status: u16, took: Duration) {
    let labels = [("method", method.to_owned()), ("route", route), ("status", status.to_string())];
    ::metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    ::metrics::histogram!(HTTP_REQUEST_DURATION, &labels).record(took.as_secs_f64());
}
