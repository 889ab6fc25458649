//! The rate-limit headers of every authenticated response. The domain decides
//! (`Control::authenticate` counts the request against its credential's bucket); the
//! [`Caller`](crate::extract::Caller) extractor puts that decision in a task-local slot
//! this middleware opened, and the middleware writes it onto the response, whatever the
//! handler answered. A `429` carries the refusing decision itself (see `error.rs`).
//!
//! Headers, after `draft-ietf-httpapi-ratelimit-headers` (structured fields) and the
//! common `X-RateLimit-*` trio:
//! - `RateLimit-Policy: "requests_per_second";q=50;w=1`: the quota per window (seconds).
//! - `RateLimit: "requests_per_second";r=49;t=1`: what is left, and seconds until the
//!   bucket is full again.
//! - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (the same
//!   numbers; the reset is in seconds from now, not a point in time).

use std::sync::Mutex;

use agentd_core::RateDecision;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static DECISION: Mutex<Option<RateDecision>>;
}

/// Records the decision that let the current request in, for its response.
pub(crate) fn record(decision: RateDecision) {
    // Outside the middleware (no slot) there is no response to write it on.
    let _ = DECISION.try_with(|slot| {
        *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(decision);
    });
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let (mut response, decision) = DECISION
        .scope(Mutex::new(None), async {
            let response = next.run(request).await;
            let decision = DECISION.with(|slot| slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
            (response, decision)
        })
        .await;
    if let Some(decision) = decision
        && !response.headers().contains_key("ratelimit")
    {
        insert(response.headers_mut(), &decision);
    }
    response
}

/// Writes `decision`'s headers.
pub(crate) fn insert(headers: &mut HeaderMap, decision: &RateDecision) {
    let name = decision.policy.kind.as_str();
    let quota = decision.policy.quota;
    let window = decision.policy.kind.window().as_secs();
    let reset = decision.reset_s();
    let remaining = decision.remaining;
    let fields = [
        ("ratelimit-policy", format!("\"{name}\";q={quota};w={window}")),
        ("ratelimit", format!("\"{name}\";r={remaining};t={reset}")),
        ("x-ratelimit-limit", quota.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
    ];
    for (header, value) in fields {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use agentd_core::{RateLimitKind, RatePolicy};

    use super::*;

    #[test]
    fn headers_carry_the_policy_and_what_is_left() {
        let policy = RatePolicy::new(RateLimitKind::RequestsPerSecond, 50);
        let decision = policy.decision(policy.take(None, 0));
        let mut headers = HeaderMap::new();
        insert(&mut headers, &decision);
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(get("ratelimit-policy"), "\"requests_per_second\";q=50;w=1");
        assert_eq!(get("ratelimit"), "\"requests_per_second\";r=49;t=1");
        assert_eq!((get("x-ratelimit-limit"), get("x-ratelimit-remaining")), ("50".into(), "49".into()));
        assert_eq!(get("x-ratelimit-reset"), "1");
    }
}
