//! Signup, login, and minting API keys and session tokens. Secrets are random, shown
//! once, and only their SHA-256 is stored; passwords are hashed with argon2.

use agentd_core::{CreatedApiKey, LoginRequest, LoginResponse, Scopes, SignupRequest, SignupResponse, Slug, Timestamp};
use agentd_store::{NewApiKey, NewSession, NewSignup, hash_secret};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::StatusCode;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::auth::{API_KEY_PREFIX, SESSION_PREFIX};
use crate::{ApiError, AppState};

const SESSION_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// A freshly minted key: what to store and the secret to show once.
pub struct MintedKey {
    pub new: NewApiKey,
    pub secret: String,
}

fn random_text(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

pub fn mint_api_key(name: String, scopes: Scopes, expires_at: Option<Timestamp>) -> MintedKey {
    let prefix = random_text(12).to_lowercase();
    let secret = format!("{API_KEY_PREFIX}{prefix}_{}", random_text(32));
    let new = NewApiKey { name, prefix, key_hash: hash_secret(&secret), scopes, expires_at };
    MintedKey { new, secret }
}

fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(email) } else { Err(ApiError::invalid("invalid_email", "email must look like name@example.com")) }
}

fn check_password(password: &str) -> Result<(), ApiError> {
    match password.chars().count() {
        0..=7 => Err(ApiError::invalid("weak_password", "password must be at least 8 characters long")),
        1025.. => Err(ApiError::invalid("invalid_password", "password must be at most 1024 characters long")),
        _ => Ok(()),
    }
}

async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))
}

async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))
}

pub async fn signup(state: &AppState, req: SignupRequest) -> Result<SignupResponse, ApiError> {
    if !state.settings.signup_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "signup_disabled",
            "signup is turned off on this server; ask the operator for an account",
        ));
    }
    let email = normalize_email(&req.email)?;
    check_password(&req.password)?;
    let name = req.workspace_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("invalid_workspace_name", "workspace_name must be 1 to 100 characters"));
    }
    let slug = Slug::parse(&req.workspace_slug)
        .map_err(|e| ApiError::invalid("invalid_workspace_slug", format!("workspace_slug: {e}")))?;
    let key = mint_api_key("default".into(), Scopes::all(), None);
    let password_hash = hash_password(req.password).await?;
    let signup = NewSignup {
        tenant_name: name,
        tenant_slug: slug,
        email,
        password_hash,
        limits: state.settings.default_limits.clone(),
        first_key: key.new,
    };
    let (tenant, user, api_key) = state.store.signup(signup).await?;
    Ok(SignupResponse { tenant, user, api_key: CreatedApiKey { key: api_key, secret: key.secret } })
}

/// The hash of a password nobody has, so a login for an unknown email costs as much
/// time as one with a wrong password.
async fn decoy_hash() -> Result<String, ApiError> {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY.get_or_try_init(|| hash_password(random_text(20))).await.cloned()
}

pub async fn login(state: &AppState, req: LoginRequest) -> Result<LoginResponse, ApiError> {
    let bad = || ApiError::unauthorized("email or password is wrong");
    let email = normalize_email(&req.email).map_err(|_| bad())?;
    let found = state.store.user_by_email_unscoped(&email).await?;
    let (user, hash) = match found {
        Some(found) => found,
        None => {
            // Only the time spent matters here; the answer is "wrong" either way.
            let _ = verify_password(req.password, decoy_hash().await?).await;
            return Err(bad());
        }
    };
    if !verify_password(req.password, hash).await? {
        return Err(bad());
    }
    let memberships = state.store.memberships_of_unscoped(&user.id).await?;
    let chosen = match &req.workspace_slug {
        Some(slug) => memberships.into_iter().find(|(t, _)| t.slug.as_str() == slug),
        None => memberships.into_iter().next(),
    };
    let (tenant, _role) = chosen.ok_or_else(|| ApiError::not_found("workspace"))?;
    let token = format!("{SESSION_PREFIX}{}", random_text(40));
    let expires_at = Timestamp::now().plus_ms(SESSION_TTL_MS);
    state
        .store
        .session_create_unscoped(&tenant.id, &user.id, NewSession { token_hash: hash_secret(&token), expires_at })
        .await?;
    Ok(LoginResponse { token, expires_at, tenant, user })
}
