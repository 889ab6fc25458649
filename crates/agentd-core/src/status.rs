//! Closed sets of words the API and the store share: invocation statuses, event kinds.
//! Each maps to and from the exact lowercase string stored in the database.

use serde::{Deserialize, Serialize};

/// Why a stored or submitted word is not a member of the set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {set}; expected one of: {expected}")]
pub struct UnknownWord {
    pub set: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $set:literal { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            pub fn parse(value: &str) -> Result<Self, UnknownWord> {
                match value {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownWord {
                        set: $set,
                        value: value.chars().take(40).collect(),
                        expected: concat!($($word, " "),+),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// How an inbound trigger checks who sent a request: the Standard Webhooks headers
    /// (`webhook-id`, `webhook-timestamp`, `webhook-signature`) or GitHub's
    /// `X-Hub-Signature-256`.
    TriggerMode, "trigger mode" {
        StandardWebhooks => "standard_webhooks",
        Github => "github",
    }
);

word_enum!(
    /// Lifecycle of one invocation: `queued → running → succeeded | failed | cancelled |
    /// timed_out`, plus `retrying` (waiting for the next attempt) and `waiting_for_input`.
    InvocationStatus, "invocation status" {
        Queued => "queued",
        Running => "running",
        Retrying => "retrying",
        WaitingForInput => "waiting_for_input",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        TimedOut => "timed_out",
    }
);

impl InvocationStatus {
    /// A terminal invocation never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled | Self::TimedOut)
    }
}

word_enum!(
    /// Where a thread's conversation stands, from its runs: `busy` while one is queued or
    /// running, `interrupted` while one waits for an answer, `idle` otherwise.
    ThreadStatus, "thread status" {
        Idle => "idle",
        Busy => "busy",
        Interrupted => "interrupted",
    }
);

word_enum!(
    /// What an invoke on a thread that already has a run going does (LangGraph's
    /// `multitask_strategy`; `enqueue` is its default and ours).
    MultitaskStrategy, "multitask strategy" {
        Reject => "reject",
        Enqueue => "enqueue",
        Interrupt => "interrupt",
        Rollback => "rollback",
    }
);

// `word_enum!` writes the enum, so `#[derive(Default)]` cannot be put on it.
#[allow(clippy::derivable_impls)]
impl Default for MultitaskStrategy {
    fn default() -> Self {
        MultitaskStrategy::Enqueue
    }
}

word_enum!(
    /// What a schedule does with an occurrence while its previous run is still going:
    /// `skip` it (the default) or `allow` the runs to overlap.
    ScheduleOverlap, "schedule overlap policy" {
        Skip => "skip",
        Allow => "allow",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for ScheduleOverlap {
    fn default() -> Self {
        ScheduleOverlap::Skip
    }
}

word_enum!(
    /// What a schedule does with the occurrences it missed (the platform was down, or
    /// behind): run only the `latest` (the default), `skip` them, or run `all` (capped).
    ScheduleCatchup, "schedule catchup policy" {
        Latest => "latest",
        Skip => "skip",
        All => "all",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for ScheduleCatchup {
    fn default() -> Self {
        ScheduleCatchup::Latest
    }
}

word_enum!(TenantStatus, "tenant status" { Active => "active", Suspended => "suspended" });

word_enum!(
    /// Where an invite stands: `pending` until it is accepted, revoked or expires.
    InviteStatus, "invite status" {
        Pending => "pending",
        Accepted => "accepted",
        Revoked => "revoked",
        Expired => "expired",
    }
);

word_enum!(EventKind, "event kind" {
    Log => "log",
    Status => "status",
    Output => "output",
    Interrupt => "interrupt",
    State => "state",
    Artifact => "artifact",
});

word_enum!(EventStream, "event stream" {
    Stdout => "stdout",
    Stderr => "stderr",
    Agent => "agent",
    System => "system",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_word() {
        for s in InvocationStatus::ALL {
            assert_eq!(InvocationStatus::parse(s.as_str()), Ok(*s));
            let json = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert!(InvocationStatus::parse("done").is_err());
    }
}
