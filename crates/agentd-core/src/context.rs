//! Who is calling and on behalf of which tenant: scopes, roles, the acting principal,
//! and the [`TenantScope`] every tenant-scoped store method takes and filters on.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{ApiKeyId, InvocationId, RequestId, ScheduleId, TenantId, TriggerId, UserId};
use crate::status::UnknownWord;

/// What an API key or a session may do. `admin` implies the others.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Invoke,
    Deploy,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Invoke, Scope::Deploy, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Invoke => "invoke",
            Scope::Deploy => "deploy",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Result<Scope, UnknownWord> {
        Scope::ALL.into_iter().find(|s| s.as_str() == value).ok_or_else(|| UnknownWord {
            set: "scope",
            value: value.chars().take(40).collect(),
            expected: "read invoke deploy admin",
        })
    }
}

/// A set of scopes, kept sorted and without repeats.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(mut scopes: Vec<Scope>) -> Scopes {
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        Scopes(scopes)
    }

    pub fn all() -> Scopes {
        Scopes::new(Scope::ALL.to_vec())
    }

    pub fn allows(&self, wanted: Scope) -> bool {
        self.0.iter().any(|s| *s == wanted || *s == Scope::Admin)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A member's role in a tenant; it decides the scopes of that member's sessions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(value: &str) -> Result<Role, UnknownWord> {
        [Role::Owner, Role::Admin, Role::Developer, Role::Viewer].into_iter().find(|r| r.as_str() == value).ok_or_else(
            || UnknownWord {
                set: "role",
                value: value.chars().take(40).collect(),
                expected: "owner admin developer viewer",
            },
        )
    }

    pub fn scopes(self) -> Scopes {
        match self {
            Role::Owner | Role::Admin => Scopes::all(),
            Role::Developer => Scopes::new(vec![Scope::Read, Scope::Invoke, Scope::Deploy]),
            Role::Viewer => Scopes::new(vec![Scope::Read]),
        }
    }
}

/// The principal behind a request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    User {
        id: UserId,
    },
    ApiKey {
        id: ApiKeyId,
    },
    /// A running invocation, calling back with its own `AGENTD_TOKEN`.
    Run {
        id: InvocationId,
    },
    /// A schedule of the tenant's, starting the run of one of its occurrences.
    Schedule {
        id: ScheduleId,
    },
    /// An inbound trigger URL, called by another system with a signed request.
    Trigger {
        id: TriggerId,
    },
}

impl Actor {
    /// Stored in `created_by` columns: the id of whoever acted.
    pub fn id_str(&self) -> &str {
        match self {
            Actor::User { id } => id.as_str(),
            Actor::ApiKey { id } => id.as_str(),
            Actor::Run { id } => id.as_str(),
            Actor::Schedule { id } => id.as_str(),
            Actor::Trigger { id } => id.as_str(),
        }
    }
}

/// Where a request came from, as its front end saw it: its id (for logs and audit
/// entries) and the client's address when known (a run's own calls, an internal
/// operation and a test harness may have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    pub request_id: RequestId,
    pub client_ip: Option<IpAddr>,
}

impl RequestOrigin {
    pub fn new(request_id: RequestId, client_ip: Option<IpAddr>) -> RequestOrigin {
        RequestOrigin { request_id, client_ip }
    }
}

/// What the store needs to confine one operation to one tenant: the tenant every query
/// filters on, who acts (for `created_by` columns) and the request it serves (for logs
/// and audit entries, with the client's address).
///
/// It grants nothing by itself: only the domain layer (`agentd-control`) holds the store,
/// and it builds a scope only from a context that passed an authorization check.
#[derive(Debug, Clone)]
pub struct TenantScope {
    tenant_id: TenantId,
    actor: Actor,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
}

impl TenantScope {
    pub fn new(tenant_id: TenantId, actor: Actor, request_id: RequestId) -> TenantScope {
        TenantScope { tenant_id, actor, request_id, client_ip: None }
    }

    /// The scope of a request from `origin`.
    pub fn from_origin(tenant_id: TenantId, actor: Actor, origin: &RequestOrigin) -> TenantScope {
        TenantScope { tenant_id, actor, request_id: origin.request_id.clone(), client_ip: origin.client_ip }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_scope_implies_every_other_scope() {
        let admin = Scopes::new(vec![Scope::Admin]);
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        let read = Scopes::new(vec![Scope::Read, Scope::Read]);
        assert!(read.allows(Scope::Read) && !read.allows(Scope::Deploy));
    }
}
