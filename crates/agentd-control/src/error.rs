//! The one error enum of the domain layer. It says what went wrong in the domain's
//! words and carries what a message needs; it knows nothing of HTTP. Each front end maps
//! it to its own shape in one place (the REST API: status, stable `code` and problem
//! document, in `agentd-api/src/error.rs`). `Display` is the message for people: it
//! says what was wrong and what to do.

use agentd_bundle::{EnvRefusal, SchemaRefusal, SchemaViolation};
use agentd_core::{
    InvocationId, InvocationStatus, MemoryKeyError, NamespaceError, PageError, RateDecision, RateLimitKind,
    ResourceKind, Scope, SlugError,
};
use agentd_store::StoreError;

use crate::input::SchemaField;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Unauthenticated(#[from] Unauthenticated),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// Missing, or another tenant's: the two are never told apart.
    #[error("{0} not found")]
    NotFound(ResourceKind),
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the bundle is {size} bytes; this workspace accepts at most {limit}")]
    BundleTooLarge { size: u64, limit: u64 },
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error(
        "this workspace stores {used} of its {limit} bytes of bundles and artifacts (max_storage_bytes) and this \
         would add {adding}; delete agents or ask the operator for more"
    )]
    StorageFull { used: u64, adding: u64, limit: u64 },
    #[error(
        "the value is {size} bytes of JSON; this workspace stores values of at most {limit} bytes \
         (max_store_item_bytes)"
    )]
    MemoryItemTooLarge { size: u64, limit: u64 },
    #[error(
        "this workspace's store holds {used} of its {limit} bytes (max_store_bytes) and this write would add \
         {adding}; delete items or write less"
    )]
    MemoryFull { used: u64, adding: u64, limit: u64 },
    /// The bundle's own checks (its error knows its stable code).
    #[error(transparent)]
    Bundle(#[from] agentd_bundle::BundleError),
    /// A fault of the platform (the store, the blob store, a task); the caller sees no
    /// detail, the operator's log does.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ControlError {
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ControlError {
        ControlError::Internal(Box::new(err))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("send `Authorization: Bearer <API key or session token>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
    #[error("the token is unknown, revoked or expired")]
    UnknownToken,
    #[error("email or password is wrong")]
    BadLogin,
    #[error("send `Authorization: Bearer <worker token>`")]
    MissingWorkerToken,
    #[error("the worker token is unknown or revoked")]
    UnknownWorkerToken,
    #[error(
        "a run's AGENTD_TOKEN is not accepted on this route; with it a run may invoke agents, read and cancel \
         its own sub-invocations and call GET /v1/me (see docs/API.md, \"Run tokens\")"
    )]
    RunTokenNotAccepted,
    #[error("an operator token is accepted on /v1/admin/* only; use an API key or a session token here")]
    OperatorTokenNotAccepted,
    #[error("the run this token was made for has ended (invocation {id}); a run's token works only while it runs")]
    RunEnded { id: InvocationId },
    /// A request to a trigger URL whose signature does not hold.
    #[error(
        "the request's signature was not accepted ({why}); sign it with the trigger's secret as its mode says \
         (see docs/API.md, \"Inbound triggers\")"
    )]
    TriggerSignature { why: crate::signatures::SignatureError },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    #[error("this credential lacks the `{}` scope", needed.as_str())]
    InsufficientScope { needed: Scope },
    #[error("you cannot grant `{}`, which you do not hold", scope.as_str())]
    CannotGrant { scope: Scope },
    #[error("this workspace is suspended; contact the operator")]
    TenantSuspended,
    #[error(
        "this route is the operators': send an operator token (`agentd admin operator create-token`), not a \
         workspace's credential"
    )]
    OperatorRequired,
    #[error("signup is turned off on this server; ask the operator for an account, or a workspace for an invite")]
    SignupDisabled,
    #[error("only an owner may grant, change or remove the `owner` role")]
    OwnerOnly,
    #[error("this invite is for another email address; sign in as the invited user, or ask for an invite to yours")]
    InviteEmailMismatch,
    #[error(
        "sessions are a signed-in user's: sign in with `agentd login` (an API key is revoked with DELETE /v1/api-keys/{{id}})"
    )]
    SessionRequired,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("an agent with slug `{slug}` already exists")]
    AgentExists { slug: String },
    #[error("the workspace slug `{slug}` is taken; choose another")]
    WorkspaceSlugTaken { slug: String },
    #[error("an account with this email exists; sign in with `agentd login` instead")]
    EmailTaken,
    #[error("agent `{slug}` is disabled; enable it with PATCH status=active")]
    AgentDisabled { slug: String },
    #[error("agent `{slug}` has no deployed version; upload a bundle first")]
    AgentHasNoVersion { slug: String },
    #[error("invocation {id} already finished with status {status}")]
    InvocationFinished { id: InvocationId, status: InvocationStatus },
    #[error("invocation {id} is {status}, not waiting for input: there is no question to answer")]
    NotWaiting { id: InvocationId, status: InvocationStatus },
    #[error(
        "version {version} cannot be activated: its dependency build is {status}; \
         see GET /v1/agents/{{slug}}/versions/{version}/build"
    )]
    VersionNotReady { version: u32, status: agentd_core::BuildStatus },
    #[error(
        "agent `{slug}` has no version ready to run yet: its dependencies are being installed; \
         deploy with ?wait=N or follow GET /v1/agents/{slug}/versions/{{n}}/build"
    )]
    AgentBuilding { slug: String },
    #[error(
        "the thread is {status}: a run of it is going or waiting for an answer; wait for it, cancel it, \
         or invoke with multitask_strategy enqueue, interrupt or rollback"
    )]
    ThreadBusy { status: agentd_core::ThreadStatus },
    #[error("the thread belongs to agent `{agent}`; a thread holds one agent's conversation")]
    ThreadOfAnotherAgent { agent: String },
    #[error("the workspace must keep an owner: make another member owner first")]
    LastOwner,
    #[error("this user is a member of the workspace already; change their role with PATCH /v1/members/{{id}}")]
    AlreadyMember,
    #[error("this invite was accepted already; sign in with `agentd login`")]
    InviteUsed,
    /// A schedule's occurrence has its invocation already (another replica made it).
    #[error("this occurrence of the schedule has its invocation already")]
    OccurrenceTaken,
    #[error("this invite was revoked; ask the workspace for a new one")]
    InviteRevoked,
    #[error("this invite has expired; ask the workspace for a new one")]
    InviteExpired,
}

/// Which quota a change would pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    #[error("this workspace already has {count} agents (limit {limit}); delete one first")]
    Agents { count: u64, limit: u32 },
    #[error("this workspace already has {count} webhook endpoints (limit {limit}); delete one first")]
    Webhooks { count: u64, limit: u32 },
    #[error("this workspace already has {count} API keys (limit {limit}); revoke one first")]
    ApiKeys { count: u64, limit: u32 },
    #[error("{count} invocations are already queued (limit {limit}); retry later")]
    QueuedInvocations { count: u64, limit: u32 },
    #[error("this agent already has {count} secrets (limit {limit}); delete one first")]
    Secrets { count: u64, limit: u32 },
    #[error("this agent already has {count} triggers (limit {limit}); delete one first")]
    Triggers { count: u64, limit: u32 },
    #[error("too many wrong passwords in a row for this account; try again in {retry_after_s} s")]
    LoginThrottled { retry_after_s: u64 },
}

impl QuotaExceeded {
    /// Seconds after which trying again can succeed, when waiting is what helps.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            QuotaExceeded::LoginThrottled { retry_after_s } => Some(*retry_after_s),
            QuotaExceeded::QueuedInvocations { .. } => Some(1),
            _ => None,
        }
    }
}

/// A rate limit refused the request: waiting [`RateDecision::retry_after_s`] helps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", rate_limited_message(decision))]
pub struct RateLimited {
    pub decision: RateDecision,
}

fn rate_limited_message(decision: &RateDecision) -> String {
    let quota = decision.policy.quota;
    let retry = decision.retry_after_s();
    match decision.policy.kind {
        RateLimitKind::RequestsPerSecond => format!(
            "this credential sent more than its {quota} requests per second (requests_per_second); retry in {retry} s"
        ),
        RateLimitKind::InvocationsPerMinute => format!(
            "this workspace started its {quota} invocations per minute (invocations_per_minute); retry in {retry} s"
        ),
        RateLimitKind::SignupsPerHour => {
            format!("too many signups from your address ({quota} per hour); retry in {retry} s")
        }
        RateLimitKind::LoginsPerMinute => {
            format!("too many logins from your address ({quota} per minute); retry in {retry} s")
        }
    }
}

/// Input that is well-formed but not acceptable; each variant is one rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// A limit override an operator asked for: an unknown name, a value out of range.
    #[error(transparent)]
    Limit(#[from] agentd_core::LimitError),
    #[error("email must look like name@example.com")]
    Email,
    #[error("password must be at least {min} characters long")]
    WeakPassword { min: usize },
    #[error("password must be at most {max} characters long")]
    PasswordTooLong { max: usize },
    #[error("workspace_name must be 1 to {max} characters")]
    WorkspaceName { max: usize },
    #[error("workspace_slug: {0}")]
    WorkspaceSlug(SlugError),
    #[error("workspace_slug: `{slug}` is reserved; choose another")]
    ReservedWorkspaceSlug { slug: String },
    #[error("slug: {0}")]
    AgentSlug(SlugError),
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must not contain control characters")]
    ControlCharacters { field: &'static str },
    #[error("at most {max_tags} tags of 1 to {max_chars} characters each")]
    Tags { max_tags: usize, max_chars: usize },
    #[error("name must be 1 to {max} characters")]
    KeyName { max: usize },
    #[error("give at least one scope: read, invoke, deploy, admin")]
    NoScopes,
    #[error("expires_in_days must be between 1 and {max}")]
    Expiry { max: u32 },
    #[error("priority must be between 0 and {max} (higher runs first)")]
    Priority { max: u8 },
    #[error("max_attempts must be between 1 and {max}")]
    MaxAttempts { max: u32 },
    #[error("metadata must be a JSON object of at most {max_bytes} bytes")]
    Metadata { max_bytes: usize },
    #[error("timeout_s must be between 1 and {cap}")]
    Timeout { cap: u32 },
    #[error("timeout_s is {asked}; this workspace's runs may take at most {cap} s (invocation_timeout_s)")]
    TimeoutOverLimit { asked: u32, cap: u32 },
    #[error("input_timeout_s must be between 1 and {cap} (the workspace's max_input_timeout_s)")]
    InputTimeout { cap: u32 },
    #[error("the answer is {size} bytes; at most {max} are accepted")]
    AnswerTooLarge { size: usize, max: usize },
    #[error("thread_id: {0}")]
    ThreadId(agentd_core::ids::IdError),
    #[error("multitask_strategy applies to runs on a thread; give thread_id too, or omit it")]
    StrategyWithoutThread,
    #[error("{field}: {detail}")]
    Word { field: &'static str, detail: agentd_core::status::UnknownWord },
    #[error("{field} must be a date (YYYY-MM-DD, UTC) and the period 1 to {max_days} days, from <= to")]
    UsagePeriod { field: &'static str, max_days: i64 },
    #[error("state is {size} bytes as JSON; at most {max} are accepted")]
    StateTooLarge { size: usize, max: usize },
    #[error("metadata filter: give a JSON object of at most {max} fields, each named with letters, digits, `_` or `-`")]
    MetadataFilter { max: usize },
    #[error("webhook url refused: {detail}")]
    WebhookUrl { detail: String },
    #[error("events: {detail}")]
    WebhookEvents { detail: String },
    #[error(
        "cron: {detail} (five fields `minute hour day-of-month month day-of-week`, or six with seconds first, \
         e.g. `0 9 * * 1-5` or `*/10 * * * * *`)"
    )]
    Cron { detail: String },
    #[error("timezone: `{value}` is not an IANA time zone (e.g. `UTC`, `Europe/Berlin`, `America/New_York`)")]
    Timezone { value: String },
    #[error("input is {size} bytes as JSON; a schedule's input may be at most {max}")]
    ScheduleInputTooLarge { size: usize, max: usize },
    #[error("cron `{cron}` has no occurrence after now; it would never run")]
    CronNeverRuns { cron: String },
    #[error(
        "this run is at depth {parent_depth}, and sub-agents may nest at most {max} deep \
         (the workspace's max_invocation_depth)"
    )]
    InvocationDepth { parent_depth: u32, max: u32 },
    #[error("wait must be at most {max_s} seconds; poll or stream the events for longer runs")]
    Wait { max_s: u64 },
    #[error("Idempotency-Key must be 1 to {max} visible ASCII characters")]
    IdempotencyKey { max: usize },
    #[error("the request body is empty; send the .tar.gz or .zip bundle as the body")]
    EmptyBundle,
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("worker must be 1 to {max} visible ASCII characters")]
    WorkerName { max: usize },
    #[error("lease_s must be between 1 and {max}")]
    Lease { max: u32 },
    #[error("the artifact name must be a clean relative path")]
    ArtifactName,
    #[error(
        "agent.toml asks for {runtime} {asked}, and this platform runs {runtime} {available}; see GET /v1/runtimes"
    )]
    RuntimeUnavailable { runtime: String, asked: String, available: String },
    #[error("env: {0}")]
    Env(EnvRefusal),
    #[error(
        "env: `{name}` cannot be set at invoke; an invoke may set only the names the agent's manifest lists \
         in `overridable_env` ({})",
        if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") }
    )]
    EnvNotOverridable { name: String, allowed: Vec<String> },
    #[error("{field} {refusal}")]
    Schema { field: SchemaField, refusal: SchemaRefusal },
    #[error("{field}: {refusal}")]
    Namespace { field: &'static str, refusal: NamespaceError },
    #[error("key {0}")]
    MemoryKey(MemoryKeyError),
    #[error("ttl_s must be between 1 and {max} seconds")]
    MemoryTtl { max: u32 },
    #[error("filter: `{field}` is not a field name; use 1 to {max_chars} of A-Z a-z 0-9 _ -")]
    FilterField { field: String, max_chars: usize },
    #[error("filter: at most {max} fields")]
    FilterTooLarge { max: usize },
    #[error("max_depth must be at least 1")]
    MaxDepth,
    #[error("value: strings may not contain NUL (\\u0000)")]
    NulInValue,
    #[error("filter: strings may not contain NUL (\\u0000)")]
    NulInFilter,
    #[error("secret name: {0}")]
    SecretName(EnvRefusal),
    #[error("the secret's value {problem}")]
    SecretValue { problem: &'static str },
    #[error("the secret's value is {size} bytes; at most {max} are accepted")]
    SecretTooLarge { size: usize, max: usize },
    /// The input breaks the agent's `input_schema`; each violation names its path.
    #[error(
        "input does not match the agent's input_schema: {}",
        crate::config::describe_violations("the input", violations)
    )]
    InputInvalid { violations: Vec<SchemaViolation> },
    #[error("the body must be a JSON document; a trigger's request body becomes the run's input")]
    TriggerBody,
    #[error("{header} must be 1 to {max} visible ASCII characters")]
    DeliveryId { header: &'static str, max: usize },
}

/// Store errors in the domain's words. Quotas are mapped by the operation that passed
/// the limit, since only it knows which quota it was.
impl From<StoreError> for ControlError {
    fn from(err: StoreError) -> ControlError {
        use agentd_store::Conflict as Stored;
        match err {
            StoreError::NotFound(kind) => ControlError::NotFound(kind),
            StoreError::Conflict(Stored::AgentSlugTaken { slug }) => Conflict::AgentExists { slug }.into(),
            StoreError::Conflict(Stored::WorkspaceSlugTaken { slug }) => Conflict::WorkspaceSlugTaken { slug }.into(),
            StoreError::Conflict(Stored::EmailTaken) => Conflict::EmailTaken.into(),
            StoreError::Conflict(Stored::VersionNotReady { version, status }) => {
                Conflict::VersionNotReady { version, status }.into()
            }
            StoreError::Conflict(Stored::ThreadBusy { status }) => Conflict::ThreadBusy { status }.into(),
            StoreError::Conflict(Stored::LastOwner) => Conflict::LastOwner.into(),
            StoreError::Conflict(Stored::AlreadyMember) => Conflict::AlreadyMember.into(),
            StoreError::Conflict(Stored::InviteUsed) => Conflict::InviteUsed.into(),
            StoreError::Conflict(Stored::OccurrenceTaken) => Conflict::OccurrenceTaken.into(),
            StoreError::Conflict(Stored::ThreadOfAnotherAgent { agent }) => {
                Conflict::ThreadOfAnotherAgent { agent }.into()
            }
            other => ControlError::internal(other),
        }
    }
}

pub type Result<T, E = ControlError> = std::result::Result<T, E>;
