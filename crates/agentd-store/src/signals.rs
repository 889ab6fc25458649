//! In-process notifications from the store to the worker and to waiting requests.

use agentd_core::InvocationId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A new run is ready to be claimed.
    InvocationQueued,
    /// An invocation changed status (started, finished, cancelled, requeued).
    InvocationChanged(InvocationId),
    /// A cancel was requested for a running invocation.
    CancelRequested(InvocationId),
    /// New events were appended to an invocation.
    EventsAppended(InvocationId),
}
