//! Following an invocation's events live: every event from a point on, then its end.
//! It reads the store only, never a worker's memory, so any replica can serve it; new
//! events and status changes wake it through the invocation's subscription.

use std::collections::VecDeque;

use agentd_core::{Event, InvocationError, InvocationId, InvocationStatus, PageBounds, PageRequest, TenantScope};
use agentd_store::{Changes, Store, Subscription};

use crate::Control;
use crate::auth::{Ctx, Read};
use crate::error::Result;
use crate::wait::{self, Step};

/// What a follower yields next.
#[derive(Debug, Clone)]
pub enum Followed {
    Event(Event),
    /// The invocation is over and every event of it was yielded.
    End {
        status: InvocationStatus,
        error: Option<InvocationError>,
    },
}

/// A live reader of one invocation's events.
pub struct EventFollower {
    store: Store,
    scope: TenantScope,
    id: InvocationId,
    after: u64,
    changes: Subscription<Changes>,
    pending: VecDeque<Event>,
    ended: bool,
}

impl Control {
    /// Follows the events of invocation `id` after seq `after` (0: from the first).
    /// Fails with `NotFound` before anything is yielded for a missing or foreign one.
    pub async fn follow_events(&self, ctx: &Ctx<Read>, id: &InvocationId, after: u64) -> Result<EventFollower> {
        // Subscribe before the first read, so nothing appended in between is missed.
        let changes = self.store.subscribe_invocation(id);
        self.store.invocation_get(ctx.store_scope(), id).await?;
        Ok(EventFollower {
            store: self.store.clone(),
            scope: ctx.store_scope().clone(),
            id: id.clone(),
            after,
            changes,
            pending: VecDeque::new(),
            ended: false,
        })
    }
}

/// What one look at the store found.
enum Found {
    Events(Vec<Event>),
    End(Followed),
}

impl EventFollower {
    /// The next event, then the end; `None` after the end. An invocation that never ends
    /// (paused for a human) is followed for as long as the caller keeps asking.
    pub async fn next(&mut self) -> Result<Option<Followed>> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(Some(Followed::Event(event)));
        }
        if self.ended {
            return Ok(None);
        }
        let Self { store, scope, id, after, changes, .. } = self;
        let (store, scope, id, after) = (&*store, &*scope, &*id, *after);
        let found = wait::until(changes, None, wait::BACKSTOP, || async move {
            let events = events_after(store, scope, id, after).await?;
            if !events.is_empty() {
                return Ok(Step::Ready(Found::Events(events)));
            }
            let invocation = store.invocation_get(scope, id).await?;
            if !invocation.status.is_terminal() {
                return Ok(Step::PENDING);
            }
            // The closing status event commits with the status, but it may have landed
            // between the read above and this one.
            let events = events_after(store, scope, id, after).await?;
            if !events.is_empty() {
                return Ok(Step::Ready(Found::Events(events)));
            }
            Ok(Step::Ready(Found::End(Followed::End { status: invocation.status, error: invocation.error })))
        })
        .await?;
        match found {
            Some(Found::Events(events)) => {
                if let Some(last) = events.last() {
                    self.after = last.seq;
                }
                self.pending.extend(events);
                Ok(self.pending.pop_front().map(Followed::Event))
            }
            Some(Found::End(end)) => {
                self.ended = true;
                Ok(Some(end))
            }
            None => Ok(None),
        }
    }
}

/// One page of the events after seq `after`.
async fn events_after(store: &Store, scope: &TenantScope, id: &InvocationId, after: u64) -> Result<Vec<Event>> {
    let page = PageRequest::after_value(Some(after), PageBounds::EVENTS);
    Ok(store.events_list(scope, id, &page).await?.data)
}
