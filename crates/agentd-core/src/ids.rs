//! Prefixed, time-ordered, opaque identifiers (`inv_0192…`). One newtype per resource so
//! an agent id can never be passed where an invocation id is expected.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` followed by 32 hex digits)")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id; UUIDv7 underneath, so ids sort by creation time.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            pub fn parse(value: &str) -> Result<Self, IdError> {
                let valid = value
                    .strip_prefix($prefix)
                    .is_some_and(|rest| {
                        rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    });
                if valid {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(IdError { kind: $kind, prefix: $prefix, value: value.chars().take(80).collect() })
                }
            }

            /// Wraps a value read back from our own store, where it was written valid.
            pub fn from_trusted(value: String) -> Self {
                Self(value)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::pattern_string(
                    concat!("^", $prefix, "[0-9a-f]{32}$"),
                    concat!("A ", $kind, " id: `", $prefix, "` and 32 hex digits."),
                )
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(TenantId, "ten_", "tenant");
prefixed_id!(UserId, "usr_", "user");
prefixed_id!(ApiKeyId, "key_", "API key");
prefixed_id!(SessionId, "ses_", "session");
prefixed_id!(AgentId, "agt_", "agent");
prefixed_id!(VersionId, "ver_", "agent version");
prefixed_id!(InvocationId, "inv_", "invocation");
prefixed_id!(ThreadId, "thr_", "thread");
prefixed_id!(WorkerTokenId, "wkt_", "worker token");
prefixed_id!(BuildId, "bld_", "dependency build");
prefixed_id!(InviteId, "ivt_", "invite");
prefixed_id!(OperatorTokenId, "opt_", "operator token");
prefixed_id!(AuditEventId, "aud_", "audit event");
prefixed_id!(ScheduleId, "sch_", "schedule");
prefixed_id!(WebhookId, "whk_", "webhook endpoint");
prefixed_id!(WebhookDeliveryId, "dlv_", "webhook delivery");
prefixed_id!(TriggerId, "trg_", "trigger");
prefixed_id!(
    /// Correlates one HTTP request across logs and the error body.
    RequestId,
    "req_",
    "request"
);

impl TriggerId {
    /// A trigger's id is the path of its URL, which nobody without the URL should be able
    /// to guess: all 128 bits come from `random` (the caller's CSPRNG), none from the
    /// clock, so trigger ids are not time-ordered like the others.
    pub fn from_random(random: [u8; 16]) -> TriggerId {
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        TriggerId(format!("{}{hex}", TriggerId::PREFIX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_creation() {
        let a = InvocationId::generate();
        let b = InvocationId::generate();
        assert_eq!(InvocationId::parse(a.as_str()), Ok(a.clone()));
        assert!(a < b);
    }

    #[test]
    fn an_id_of_another_kind_is_rejected() {
        let agent = AgentId::generate();
        assert!(InvocationId::parse(agent.as_str()).is_err());
        assert!(InvocationId::parse("inv_nothex").is_err());
        assert!(InvocationId::parse("").is_err());
    }

    #[test]
    fn a_trigger_id_is_its_random_bytes_and_parses_back() {
        let id = TriggerId::from_random([0xab; 16]);
        assert_eq!(id.as_str(), format!("trg_{}", "ab".repeat(16)));
        assert_eq!(TriggerId::parse(id.as_str()), Ok(id));
    }
}
