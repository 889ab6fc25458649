//! The audit log's vocabulary: one [`AuditEvent`] per change a caller made to a
//! tenant's data (who, what, which resource, from where, when). The store appends an
//! event in the transaction of the change it records, so the log holds a change exactly
//! when the change happened; nothing updates or deletes an event.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::{Actor, RequestOrigin};
use crate::ids::{AuditEventId, OperatorTokenId, RequestId};
use crate::status::UnknownWord;
use crate::timestamp::Timestamp;

macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident => $word:literal),+ $(,)?) => {
        /// What was done: dotted words, the resource first (`agent.create`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)+
        }

        impl AuditAction {
            /// Every action, in the order docs/API.md lists them.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $word,)+
                }
            }
        }
    };
}

audit_actions!(
    /// A workspace made by `POST /v1/signup`, with its owner and first key.
    TenantSignup => "tenant.signup",
    /// A workspace made by an operator, with an owner invite.
    TenantCreate => "tenant.create",
    TenantSuspend => "tenant.suspend",
    TenantResume => "tenant.resume",
    /// An operator set or unset the tenant's limit overrides.
    LimitsSet => "limits.set",
    AuthLogin => "auth.login",
    AuthLogout => "auth.logout",
    AuthSwitch => "auth.switch",
    SessionRevoke => "session.revoke",
    ApiKeyCreate => "api_key.create",
    ApiKeyRevoke => "api_key.revoke",
    InviteCreate => "invite.create",
    InviteRevoke => "invite.revoke",
    InviteAccept => "invite.accept",
    MemberRoleChange => "member.role_change",
    MemberRemove => "member.remove",
    AgentCreate => "agent.create",
    AgentUpdate => "agent.update",
    AgentDelete => "agent.delete",
    /// A new version uploaded (activated at once or once its build is ready, or not).
    AgentDeploy => "agent.deploy",
    /// An existing version made the active one.
    AgentRollback => "agent.rollback",
    SecretPut => "secret.put",
    SecretDelete => "secret.delete",
    TriggerCreate => "trigger.create",
    TriggerDelete => "trigger.delete",
    InvocationCreate => "invocation.create",
    InvocationCancel => "invocation.cancel",
    InvocationRespond => "invocation.respond",
    ThreadCreate => "thread.create",
    ThreadUpdate => "thread.update",
    ThreadDelete => "thread.delete",
    ThreadStateSet => "thread.state_set",
    MemoryPut => "memory.put",
    MemoryDelete => "memory.delete",
    WebhookCreate => "webhook.create",
    WebhookUpdate => "webhook.update",
    WebhookDelete => "webhook.delete",
    /// A new signing secret for an endpoint, or for the tenant's invocation webhooks.
    WebhookRotateSecret => "webhook.rotate_secret",
    /// The platform disabled an endpoint whose deliveries kept failing.
    WebhookDisable => "webhook.disable",
    WebhookRedeliver => "webhook.redeliver",
    ScheduleCreate => "schedule.create",
    /// A schedule changed, paused or resumed.
    ScheduleUpdate => "schedule.update",
    ScheduleDelete => "schedule.delete",
    /// A run now asked for with `POST /v1/schedules/{id}/trigger`.
    ScheduleTrigger => "schedule.trigger",
);

impl AuditAction {
    pub fn parse(value: &str) -> Result<AuditAction, UnknownWord> {
        AuditAction::ALL.iter().copied().find(|a| a.as_str() == value).ok_or_else(|| UnknownWord {
            set: "audit action",
            value: value.chars().take(40).collect(),
            expected: "an action of docs/API.md#audit-log, e.g. agent.create",
        })
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        AuditAction::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Who acted, as the log names them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditActorKind {
    User,
    ApiKey,
    /// A running invocation, with its own `AGENTD_TOKEN`.
    Run,
    /// A schedule starting an occurrence's run.
    Schedule,
    /// An inbound trigger URL called by another system.
    Trigger,
    /// Someone running the platform: an operator token, or the database's own
    /// credentials (`agentd admin`, id `database`).
    Operator,
}

impl AuditActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditActorKind::User => "user",
            AuditActorKind::ApiKey => "api_key",
            AuditActorKind::Run => "run",
            AuditActorKind::Schedule => "schedule",
            AuditActorKind::Trigger => "trigger",
            AuditActorKind::Operator => "operator",
        }
    }

    pub fn parse(value: &str) -> Result<AuditActorKind, UnknownWord> {
        [
            AuditActorKind::User,
            AuditActorKind::ApiKey,
            AuditActorKind::Run,
            AuditActorKind::Schedule,
            AuditActorKind::Trigger,
            AuditActorKind::Operator,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
        .ok_or_else(|| UnknownWord {
            set: "audit actor",
            value: value.chars().take(40).collect(),
            expected: "user api_key run schedule trigger operator",
        })
    }
}

/// `{"type": "user", "id": "usr_…"}`: the kind of actor and its id.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditActor {
    #[serde(rename = "type")]
    pub kind: AuditActorKind,
    pub id: String,
}

impl AuditActor {
    /// The id an operator acting through the database itself is logged with.
    pub const DATABASE_OPERATOR: &'static str = "database";
    /// The id, with kind `operator`, of what the platform does by the operator's settings
    /// with no one calling (a reconciler disabling a webhook endpoint that keeps failing).
    pub const PLATFORM: &'static str = "platform";

    /// The platform acting on the operator's settings.
    pub fn platform() -> AuditActor {
        AuditActor { kind: AuditActorKind::Operator, id: AuditActor::PLATFORM.to_owned() }
    }

    /// An operator: the token's id, or [`AuditActor::DATABASE_OPERATOR`] without one.
    pub fn operator(token: Option<&OperatorTokenId>) -> AuditActor {
        let id = token.map_or(AuditActor::DATABASE_OPERATOR, OperatorTokenId::as_str);
        AuditActor { kind: AuditActorKind::Operator, id: id.to_owned() }
    }
}

impl From<&Actor> for AuditActor {
    fn from(actor: &Actor) -> AuditActor {
        let kind = match actor {
            Actor::User { .. } => AuditActorKind::User,
            Actor::ApiKey { .. } => AuditActorKind::ApiKey,
            Actor::Run { .. } => AuditActorKind::Run,
            Actor::Schedule { .. } => AuditActorKind::Schedule,
            Actor::Trigger { .. } => AuditActorKind::Trigger,
        };
        AuditActor { kind, id: actor.id_str().to_owned() }
    }
}

/// Who acted for which request, for a change made outside a tenant's own context (an
/// operator's, a signup, a login): what a [`crate::TenantScope`] carries otherwise.
#[derive(Debug, Clone)]
pub struct AuditOrigin {
    pub actor: AuditActor,
    pub origin: RequestOrigin,
}

impl AuditOrigin {
    pub fn new(actor: AuditActor, origin: RequestOrigin) -> AuditOrigin {
        AuditOrigin { actor, origin }
    }

    pub fn request_id(&self) -> &RequestId {
        &self.origin.request_id
    }

    pub fn client_ip(&self) -> Option<IpAddr> {
        self.origin.client_ip
    }
}

/// One entry of a tenant's audit log. `result` is always `success`: a refused request
/// changed nothing, and the log records changes (docs/API.md#audit-log says why).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub occurred_at: Timestamp,
    pub actor: AuditActor,
    pub action: AuditAction,
    pub resource_type: String,
    pub resource_id: String,
    pub result: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    /// A few facts about the change (a name, a role, a version), never a secret.
    pub details: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_back_from_its_word() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Ok(*action));
            let (resource, verb) = action.as_str().split_once('.').unwrap_or_default();
            assert!(!resource.is_empty() && !verb.is_empty(), "{action:?} is not dotted");
        }
        assert!(AuditAction::parse("agent.explode").is_err());
    }

    #[test]
    fn an_actor_names_its_kind_and_id() {
        let json = serde_json::to_value(AuditActor::operator(None)).unwrap_or_default();
        assert_eq!(json, serde_json::json!({"type": "operator", "id": "database"}));
        assert_eq!(AuditActorKind::parse("api_key"), Ok(AuditActorKind::ApiKey));
    }
}
