//! Signup, login, the caller's own view, and minting API keys and session tokens.
//! Secrets are random, shown once, and only their SHA-256 is stored; passwords are
//! hashed with argon2.

use agentd_core::{
    Actor, ApiKey, ApiKeyId, AuditAction, AuditActor, AuditOrigin, Page, PageRequest, RequestOrigin, ResourceKind,
    Role, Scopes, Secret, SessionId, SessionInfo, Slug, Tenant, Timestamp, User,
};
use agentd_store::{NewApiKey, NewSession, NewSignup, StoreError, hash_secret};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::Control;
use crate::auth::{API_KEY_PREFIX, Admin, Ctx, Read, RunGrant, SESSION_PREFIX};
use crate::error::{ControlError, Forbidden, QuotaExceeded, Result, Unauthenticated};
use crate::input::{Email, KeyExpiry, KeyName, Password, WorkspaceName};

const SESSION_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// A new workspace, as asked for.
#[derive(Debug, Clone)]
pub struct Signup {
    pub email: Email,
    pub password: Password,
    pub workspace_name: WorkspaceName,
    pub workspace_slug: Slug,
}

/// What a signup made: the tenant, its owner, and the first API key with its secret.
#[derive(Debug, Clone)]
pub struct SignedUp {
    pub tenant: Tenant,
    pub user: User,
    pub api_key: CreatedKey,
}

/// An API key and the secret that is shown this once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub email: String,
    pub password: String,
    /// Which workspace to sign in to when the user belongs to several; default the first.
    pub workspace_slug: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token: Secret,
    pub expires_at: Timestamp,
    pub tenant: Tenant,
    pub user: User,
}

/// The caller as they see themselves.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub actor: Actor,
    pub user: Option<User>,
    pub role: Option<Role>,
    pub scopes: Scopes,
    /// When the caller is a run with its own token: which one.
    pub run: Option<RunGrant>,
}

/// A key to create: its name, scopes (absent: every scope, which the creator must hold)
/// and lifetime.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: KeyName,
    pub scopes: Option<Scopes>,
    pub expiry: KeyExpiry,
}

/// Random letters and digits, for secrets.
pub(crate) fn random_text(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A freshly minted key: what to store and the secret to show once.
fn mint_api_key(name: String, scopes: Scopes, expires_at: Option<Timestamp>) -> (NewApiKey, Secret) {
    let prefix = random_text(12).to_lowercase();
    let secret = format!("{API_KEY_PREFIX}{prefix}_{}", random_text(32));
    let new = NewApiKey { name, prefix, key_hash: hash_secret(&secret), scopes, expires_at };
    (new, Secret::new(secret))
}

/// A fresh session token: what to store, the secret to show once, and when it ends.
pub(crate) fn mint_session() -> (NewSession, Secret, Timestamp) {
    let token = format!("{SESSION_PREFIX}{}", random_text(40));
    let expires_at = Timestamp::now().plus_ms(SESSION_TTL_MS);
    (NewSession { token_hash: hash_secret(&token), expires_at }, Secret::new(token), expires_at)
}

pub(crate) async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()))
        .await
        .map_err(ControlError::internal)?
        .map_err(|e| ControlError::internal(std::io::Error::other(e.to_string())))
}

async fn verify_password(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(ControlError::internal)?
    .map_err(|e| ControlError::internal(std::io::Error::other(e.to_string())))
}

/// The hash of a password nobody has, so a login for an unknown email costs as much
/// time as one with a wrong password.
async fn decoy_hash() -> Result<String> {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY.get_or_try_init(|| hash_password(random_text(20))).await.cloned()
}

impl Control {
    /// A new workspace, its owner and a first key, for a request from `origin`: at most
    /// `signups_per_hour_per_ip` attempts per client address count (well-formed ones,
    /// whether they succeed or not). The request is the first event of the workspace's
    /// audit log.
    pub async fn signup(&self, signup: Signup, origin: RequestOrigin) -> Result<SignedUp> {
        if self.settings.signup != crate::SignupPolicy::Open {
            return Err(Forbidden::SignupDisabled.into());
        }
        self.rate_take_signup(&origin).await?;
        let (first_key, secret) = mint_api_key("default".into(), Scopes::all(), None);
        let password_hash = hash_password(signup.password.into_inner()).await?;
        let created = self
            .store
            .signup(NewSignup {
                tenant_name: signup.workspace_name.into_inner(),
                tenant_slug: signup.workspace_slug,
                email: signup.email.as_str().to_owned(),
                password_hash,
                limits: self.settings.default_limits.clone(),
                first_key,
                origin,
            })
            .await?;
        tracing::info!(tenant_id = %created.tenant.id, "signed up");
        Ok(SignedUp {
            tenant: created.tenant,
            user: created.user,
            api_key: CreatedKey { key: created.api_key, secret },
        })
    }

    /// A session (logged as `auth.login` in the workspace) for a request from `origin`:
    /// at most `logins_per_minute_per_ip` attempts per client address, and per account a
    /// pause after wrong passwords in a row.
    pub async fn login(&self, login: Login, origin: RequestOrigin) -> Result<Session> {
        self.rate_take_login(&origin).await?;
        let user = self.verify_login(&login.email, login.password).await?;
        let memberships = self.store.memberships_of_unscoped(&user.id).await?;
        let chosen = match &login.workspace_slug {
            Some(slug) => memberships.into_iter().find(|m| m.tenant.slug.as_str() == slug),
            None => memberships.into_iter().next(),
        };
        let tenant = chosen.ok_or(ControlError::NotFound(ResourceKind::Workspace))?.tenant;
        self.session_open(tenant, user, AuditAction::AuthLogin, origin).await
    }

    /// A new session of `user` in `tenant`; its token is shown this once. `action` says
    /// why, for the workspace's audit log.
    pub(crate) async fn session_open(
        &self,
        tenant: Tenant,
        user: User,
        action: AuditAction,
        origin: RequestOrigin,
    ) -> Result<Session> {
        let (session, token, expires_at) = mint_session();
        let by = AuditOrigin::new(AuditActor::from(&Actor::User { id: user.id.clone() }), origin);
        self.store.session_create_unscoped(&tenant.id, &user.id, session, action, &by).await?;
        Ok(Session { token, expires_at, tenant, user })
    }

    /// The user whose email and password these are, counting wrong passwords (and
    /// refusing for a while after too many in a row).
    pub(crate) async fn verify_login(&self, email: &str, password: String) -> Result<User> {
        let bad = || ControlError::from(Unauthenticated::BadLogin);
        let email = Email::parse(email).map_err(|_| bad())?;
        let Some(found) = self.store.user_by_email_unscoped(email.as_str()).await? else {
            // Only the time spent matters here; the answer is "wrong" either way.
            let _ = verify_password(password, decoy_hash().await?).await;
            return Err(bad());
        };
        let now = Timestamp::now();
        if let Some(until) = found.login_locked_until.filter(|until| *until > now) {
            let retry_after_s = (until.unix_ms() - now.unix_ms()).unsigned_abs().div_ceil(1000);
            return Err(QuotaExceeded::LoginThrottled { retry_after_s }.into());
        }
        if !verify_password(password, found.password_hash).await? {
            let failed = self.store.login_failed_unscoped(&found.user.id).await?;
            if let Some(wait) = login_lock(failed) {
                self.store.login_lock_unscoped(&found.user.id, now.plus_ms(wait.as_millis() as i64)).await?;
                tracing::warn!(user_id = %found.user.id, failed, "logins refused for a while after wrong passwords");
            }
            return Err(bad());
        }
        self.store.login_succeeded_unscoped(&found.user.id).await?;
        Ok(found.user)
    }

    /// The caller: their tenant as it is now, who they are and what they may do (a run:
    /// which run it is).
    pub async fn me(&self, ctx: &Ctx<Read>) -> Result<Caller> {
        let tenant = self.store.tenant_get(ctx.store_scope()).await?;
        Ok(Caller {
            tenant,
            actor: ctx.actor().clone(),
            user: ctx.user().cloned(),
            role: ctx.role(),
            scopes: ctx.scopes().clone(),
            run: ctx.run().cloned(),
        })
    }

    pub async fn api_keys_list(&self, ctx: &Ctx<Admin>, page: &PageRequest<ApiKeyId>) -> Result<Page<ApiKey>> {
        Ok(self.store.api_keys_list(ctx.store_scope(), page).await?)
    }

    /// Creates a key holding at most the scopes of the credential that creates it.
    pub async fn api_key_create(&self, ctx: &Ctx<Admin>, new: NewKey) -> Result<CreatedKey> {
        let scopes = new.scopes.unwrap_or_else(Scopes::all);
        if let Some(extra) = scopes.iter().find(|s| !ctx.scopes().allows(*s)) {
            return Err(Forbidden::CannotGrant { scope: extra }.into());
        }
        let expires_at = new.expiry.days().map(|d| Timestamp::now().plus_ms(i64::from(d) * 86_400_000));
        let (key, secret) = mint_api_key(new.name.into_inner(), scopes, expires_at);
        let limit = ctx.limits().max_api_keys;
        let key = self.store.api_key_create(ctx.store_scope(), key, limit).await.map_err(|e| match e {
            StoreError::QuotaReached { count } => QuotaExceeded::ApiKeys { count, limit }.into(),
            other => ControlError::from(other),
        })?;
        Ok(CreatedKey { key, secret })
    }

    /// Revokes a key of the caller's tenant; revoking twice keeps the first time.
    pub async fn api_key_revoke(&self, ctx: &Ctx<Admin>, id: &ApiKeyId) -> Result<ApiKey> {
        Ok(self.store.api_key_revoke(ctx.store_scope(), id).await?)
    }
}

impl Control {
    /// The caller's live sessions in this workspace, newest first (a user's session only).
    pub async fn sessions_list(&self, ctx: &Ctx<Read>) -> Result<Vec<SessionInfo>> {
        let user = session_user(ctx)?;
        let found = self.store.sessions_list(ctx.store_scope(), &user.id).await?;
        Ok(found
            .into_iter()
            .map(|(id, created_at, expires_at)| {
                let current = ctx.session_id() == Some(&id);
                SessionInfo { id, created_at, expires_at, current }
            })
            .collect())
    }

    /// Ends one of the caller's sessions; another user's, or none, is `NotFound`.
    pub async fn session_revoke(&self, ctx: &Ctx<Read>, id: &SessionId) -> Result<()> {
        self.session_end(ctx, id, AuditAction::SessionRevoke).await
    }

    /// Ends the session this request was made with.
    pub async fn logout(&self, ctx: &Ctx<Read>) -> Result<()> {
        let Some(id) = ctx.session_id().cloned() else { return Err(Forbidden::SessionRequired.into()) };
        self.session_end(ctx, &id, AuditAction::AuthLogout).await
    }

    async fn session_end(&self, ctx: &Ctx<Read>, id: &SessionId, action: AuditAction) -> Result<()> {
        let user = session_user(ctx)?;
        self.store.session_revoke(ctx.store_scope(), &user.id, id, action).await?;
        ctx.span().in_scope(|| tracing::info!(session_id = %id, "session revoked"));
        Ok(())
    }
}

/// Sessions belong to users: a key or a run has none.
fn session_user<C>(ctx: &Ctx<C>) -> Result<&agentd_core::User> {
    match (ctx.user(), ctx.session_id()) {
        (Some(user), Some(_)) => Ok(user),
        _ => Err(Forbidden::SessionRequired.into()),
    }
}

/// Wrong passwords in a row that are let through before logins are refused for a while.
const FREE_LOGIN_FAILURES: u32 = 5;
/// The longest a login is refused after wrong passwords.
const MAX_LOGIN_LOCK: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long logins are refused after `failed` wrong passwords in a row: from the 5th on,
/// 1 s, then twice as long each time, at most 15 minutes.
fn login_lock(failed: u32) -> Option<std::time::Duration> {
    let past = failed.checked_sub(FREE_LOGIN_FAILURES)?;
    let secs = 1u64.checked_shl(past.min(20)).unwrap_or(u64::MAX);
    Some(std::time::Duration::from_secs(secs).min(MAX_LOGIN_LOCK))
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn logins_are_refused_longer_after_each_wrong_password_past_five() {
        assert_eq!(login_lock(4), None);
        assert_eq!(login_lock(5), Some(std::time::Duration::from_secs(1)));
        assert_eq!(login_lock(8), Some(std::time::Duration::from_secs(8)));
        assert_eq!(login_lock(40), Some(MAX_LOGIN_LOCK));
        assert_eq!(login_lock(u32::MAX), Some(MAX_LOGIN_LOCK));
    }
}
