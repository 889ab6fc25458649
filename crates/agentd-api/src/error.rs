//! The one place errors become HTTP responses: RFC 9457 problem documents with a stable
//! machine `code` and the request id. Domain errors are mapped here, variant by variant,
//! to their status and code (docs/API.md lists them); errors of the request itself (a
//! body that is not JSON, an unknown route) are made here too. A 500 body says nothing
//! about the cause; the cause is logged once, here.

use agentd_control::{
    Conflict, ControlError, Forbidden, Invalid, QuotaExceeded, RateLimited, SchemaViolation, Unauthenticated,
};
use agentd_core::PageError;
use agentd_core::RateLimitKind;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::request_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What the domain refused or failed at.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The request itself is unusable (malformed JSON, an unknown route, a bad header).
    #[error("{detail}")]
    Request { status: StatusCode, code: &'static str, detail: String },
}

impl ApiError {
    pub fn request(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Request { status, code, detail: detail.into() }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::request(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Control(ControlError::internal(err))
    }

    /// The status and stable machine code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Control(err) => control_status_and_code(err),
            ApiError::Request { status, code, .. } => (*status, code),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(err: Invalid) -> ApiError {
        ApiError::Control(err.into())
    }
}

fn control_status_and_code(err: &ControlError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match err {
        ControlError::Unauthenticated(unauthenticated) => (
            S::UNAUTHORIZED,
            match unauthenticated {
                Unauthenticated::RunTokenNotAccepted => "run_token_not_accepted",
                Unauthenticated::RunEnded { .. } => "run_ended",
                Unauthenticated::OperatorTokenNotAccepted => "operator_token_not_accepted",
                Unauthenticated::TriggerSignature { .. } => "trigger_signature_invalid",
                Unauthenticated::Missing
                | Unauthenticated::Malformed
                | Unauthenticated::UnknownToken
                | Unauthenticated::BadLogin
                | Unauthenticated::MissingWorkerToken
                | Unauthenticated::UnknownWorkerToken => "unauthorized",
            },
        ),
        ControlError::Forbidden(forbidden) => (
            S::FORBIDDEN,
            match forbidden {
                Forbidden::InsufficientScope { .. } | Forbidden::CannotGrant { .. } => "insufficient_scope",
                Forbidden::TenantSuspended => "tenant_suspended",
                Forbidden::SignupDisabled => "signup_disabled",
                Forbidden::OwnerOnly => "owner_required",
                Forbidden::InviteEmailMismatch => "invite_email_mismatch",
                Forbidden::SessionRequired => "session_required",
                Forbidden::OperatorRequired => "operator_required",
            },
        ),
        ControlError::NotFound(_) => (S::NOT_FOUND, "not_found"),
        ControlError::Conflict(conflict) => (
            S::CONFLICT,
            match conflict {
                Conflict::AgentExists { .. } => "agent_exists",
                Conflict::WorkspaceSlugTaken { .. } => "workspace_slug_taken",
                Conflict::EmailTaken => "email_taken",
                Conflict::AgentDisabled { .. } => "agent_disabled",
                Conflict::AgentHasNoVersion { .. } => "agent_has_no_version",
                Conflict::InvocationFinished { .. } => "invocation_finished",
                Conflict::NotWaiting { .. } => "not_waiting",
                Conflict::VersionNotReady { .. } => "version_not_ready",
                Conflict::AgentBuilding { .. } => "agent_building",
                Conflict::ThreadBusy { .. } => "thread_busy",
                Conflict::ThreadOfAnotherAgent { .. } => "thread_agent_mismatch",
                Conflict::LastOwner => "last_owner",
                Conflict::AlreadyMember => "already_member",
                Conflict::InviteUsed => "invite_used",
                Conflict::OccurrenceTaken => "occurrence_taken",
                Conflict::InviteRevoked => "invite_revoked",
                Conflict::InviteExpired => "invite_expired",
            },
        ),
        ControlError::Invalid(invalid) => invalid_status_and_code(invalid),
        ControlError::BundleTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "max_bundle_bytes"),
        ControlError::StorageFull { .. } => (S::PAYLOAD_TOO_LARGE, "max_storage_bytes"),
        ControlError::MemoryItemTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "store_item_too_large"),
        // Not 429: waiting does not help; deleting items or writing less does.
        ControlError::MemoryFull { .. } => (S::PAYLOAD_TOO_LARGE, "store_bytes_limit"),
        // A limit of DESIGN §8 answers with its own name; a count that is full is a
        // conflict with the workspace's state (`409`), not a rate (`429`).
        ControlError::QuotaExceeded(quota) => match quota {
            QuotaExceeded::Agents { .. } => (S::CONFLICT, "max_agents"),
            QuotaExceeded::Webhooks { .. } => (S::CONFLICT, "max_webhooks"),
            QuotaExceeded::ApiKeys { .. } => (S::CONFLICT, "max_api_keys"),
            QuotaExceeded::QueuedInvocations { .. } => (S::CONFLICT, "max_queued_invocations"),
            QuotaExceeded::LoginThrottled { .. } => (S::TOO_MANY_REQUESTS, "login_throttled"),
            QuotaExceeded::Secrets { .. } => (S::TOO_MANY_REQUESTS, "secret_limit"),
            QuotaExceeded::Triggers { .. } => (S::CONFLICT, "trigger_limit"),
        },
        ControlError::RateLimited(RateLimited { decision }) => (
            S::TOO_MANY_REQUESTS,
            match decision.policy.kind {
                RateLimitKind::RequestsPerSecond => "requests_per_second",
                RateLimitKind::InvocationsPerMinute => "invocations_per_minute",
                RateLimitKind::SignupsPerHour => "signup_rate_limited",
                RateLimitKind::LoginsPerMinute => "login_rate_limited",
            },
        ),
        ControlError::Bundle(bundle) => {
            let status = if bundle.is_too_large() { S::PAYLOAD_TOO_LARGE } else { S::UNPROCESSABLE_ENTITY };
            (status, bundle.code())
        }
        ControlError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// `422` for a value that breaks a rule, `400` for a parameter that is not one at all.
fn invalid_status_and_code(invalid: &Invalid) -> (StatusCode, &'static str) {
    let code = match invalid {
        Invalid::Wait { .. } => return (StatusCode::BAD_REQUEST, "invalid_wait"),
        Invalid::IdempotencyKey { .. } => return (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
        Invalid::Page(PageError::Limit { .. }) => return (StatusCode::BAD_REQUEST, "invalid_limit"),
        Invalid::Page(PageError::Cursor { .. }) => return (StatusCode::BAD_REQUEST, "invalid_cursor"),
        Invalid::Page(PageError::Offset { .. }) => return (StatusCode::BAD_REQUEST, "invalid_offset"),
        Invalid::Limit(_) => "invalid_limit_override",
        Invalid::Email => "invalid_email",
        Invalid::WeakPassword { .. } => "weak_password",
        Invalid::PasswordTooLong { .. } => "invalid_password",
        Invalid::WorkspaceName { .. } => "invalid_workspace_name",
        Invalid::WorkspaceSlug(_) => "invalid_workspace_slug",
        Invalid::ReservedWorkspaceSlug { .. } => "workspace_slug_reserved",
        Invalid::AgentSlug(_) => "invalid_slug",
        Invalid::TooLong { .. } | Invalid::Empty { .. } | Invalid::ControlCharacters { .. } => "invalid_field",
        Invalid::Tags { .. } => "invalid_tags",
        Invalid::KeyName { .. } => "invalid_name",
        Invalid::NoScopes => "invalid_scopes",
        Invalid::Expiry { .. } => "invalid_expiry",
        Invalid::Priority { .. } => "invalid_priority",
        Invalid::MaxAttempts { .. } => "invalid_max_attempts",
        Invalid::Metadata { .. } => "invalid_metadata",
        Invalid::Timeout { .. } => "invalid_timeout",
        Invalid::TimeoutOverLimit { .. } => "invocation_timeout_s",
        Invalid::InputTimeout { .. } => "invalid_input_timeout",
        Invalid::AnswerTooLarge { .. } => "answer_too_large",
        Invalid::ThreadId(_) => "invalid_thread_id",
        Invalid::StrategyWithoutThread => "invalid_multitask_strategy",
        Invalid::Word { field: "multitask_strategy", .. } => "invalid_multitask_strategy",
        Invalid::Word { field: "overlap" | "catchup", .. } => "invalid_schedule_policy",
        Invalid::Word { .. } => return (StatusCode::BAD_REQUEST, "invalid_query"),
        Invalid::StateTooLarge { .. } => return (StatusCode::PAYLOAD_TOO_LARGE, "state_too_large"),
        Invalid::MetadataFilter { .. } => return (StatusCode::BAD_REQUEST, "invalid_query"),
        Invalid::UsagePeriod { .. } => return (StatusCode::BAD_REQUEST, "invalid_query"),
        Invalid::WebhookUrl { .. } => "invalid_webhook_url",
        Invalid::WebhookEvents { .. } => "invalid_webhook_events",
        Invalid::Cron { .. } | Invalid::CronNeverRuns { .. } => "invalid_cron",
        Invalid::Timezone { .. } => "invalid_timezone",
        Invalid::ScheduleInputTooLarge { .. } => "input_too_large",
        Invalid::EmptyBundle => "bundle_unreadable",
        Invalid::WorkerName { .. } => "invalid_worker",
        Invalid::Lease { .. } => "invalid_lease",
        Invalid::ArtifactName => "artifact_name_invalid",
        Invalid::RuntimeUnavailable { .. } => "runtime_unavailable",
        Invalid::Env(_) => "invalid_env",
        Invalid::EnvNotOverridable { .. } => "env_not_overridable",
        Invalid::Schema { .. } => "invalid_schema",
        Invalid::InputInvalid { .. } => "input_invalid",
        Invalid::Namespace { .. } => "invalid_namespace",
        Invalid::MemoryKey(_) => "invalid_key",
        Invalid::MemoryTtl { .. } => "invalid_ttl",
        Invalid::FilterField { .. } | Invalid::FilterTooLarge { .. } | Invalid::NulInFilter => "invalid_filter",
        Invalid::MaxDepth => "invalid_max_depth",
        Invalid::NulInValue => "invalid_value",
        Invalid::SecretName(_) => "invalid_secret_name",
        Invalid::SecretValue { .. } => "invalid_secret_value",
        Invalid::SecretTooLarge { .. } => "secret_too_large",
        Invalid::InvocationDepth { .. } => "invocation_depth_exceeded",
        Invalid::TriggerBody => "trigger_body_not_json",
        Invalid::DeliveryId { .. } => return (StatusCode::BAD_REQUEST, "invalid_delivery_id"),
    };
    (StatusCode::UNPROCESSABLE_ENTITY, code)
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    request_id: String,
    /// Where a document broke a schema (`input_invalid`): `[{path, message}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [SchemaViolation]>,
}

/// The itemized part of an error, for the errors that have one.
fn itemized(err: &ApiError) -> Option<&[SchemaViolation]> {
    match err {
        ApiError::Control(ControlError::Invalid(Invalid::InputInvalid { violations })) => Some(violations),
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id::current().map(|r| r.to_string()).unwrap_or_default();
        let (status, code) = self.status_and_code();
        if status == StatusCode::TOO_MANY_REQUESTS {
            agentd_control::metrics::rate_limited(code);
        }
        let detail = match &self {
            ApiError::Control(ControlError::Internal(source)) => {
                tracing::error!(error = ?source, request_id, "internal error");
                "internal error; quote the request id when reporting it".to_owned()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("urn:agentd:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: &detail,
            code,
            request_id,
            errors: itemized(&self),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Control(ControlError::QuotaExceeded(quota)) = &self
            && let Some(secs) = quota.retry_after_s()
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Control(ControlError::RateLimited(RateLimited { decision })) = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(decision.retry_after_s()));
            crate::rate_limit_headers::insert(headers, decision);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    /// Every code this file can answer with is in docs/API.md's table of errors, so that
    /// what clients are promised and what they get cannot drift apart unnoticed.
    #[test]
    fn every_code_is_documented() {
        let source = include_str!("error.rs");
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        let docs = include_str!("../../../docs/API.md");
        let table = docs.split("## Errors").nth(1).and_then(|s| s.split("\n## ").next()).unwrap_or_default();
        let mut missing = Vec::new();
        for line in source.lines() {
            let Some((_, result)) = line.rsplit_once("=>") else { continue };
            for code in result.split('"').skip(1).step_by(2) {
                let is_code = code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if is_code && !code.is_empty() && !table.contains(&format!("`{code}`")) {
                    missing.push(code.to_owned());
                }
            }
        }
        assert!(missing.is_empty(), "codes missing from docs/API.md#errors: {missing:?}");
    }
}
