//! Routes about who is calling: signup, login, `me`, and API keys.

use agentd_api_types::{
    ApiKey, CreateApiKeyRequest, CreatedApiKey, LoginRequest, LoginResponse, Me, Page, SignupRequest, SignupResponse,
};
use reqwest::Method;

use crate::{Client, ClientError, ListOptions};

impl Client {
    /// `POST /v1/signup`: a new tenant, its owner and a first API key (secret shown once).
    pub async fn signup(&self, request: &SignupRequest) -> Result<SignupResponse, ClientError> {
        self.call(self.route(Method::POST, &["v1", "signup"])?.json(request)).await
    }

    /// `POST /v1/auth/login`: a session token for an existing user.
    pub async fn login(&self, request: &LoginRequest) -> Result<LoginResponse, ClientError> {
        self.call(self.route(Method::POST, &["v1", "auth", "login"])?.json(request)).await
    }

    /// `POST /v1/auth/logout`: ends the session this client's token is.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::POST, &["v1", "auth", "logout"])?).await
    }

    /// `GET /v1/sessions`: the signed-in user's live sessions in this workspace.
    pub async fn sessions_list(&self) -> Result<Page<agentd_api_types::SessionInfo>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "sessions"])?).await
    }

    /// `DELETE /v1/sessions/{id}`: ends one of the user's sessions.
    pub async fn session_revoke(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "sessions", id])?).await
    }

    /// `GET /v1/me`: the caller's tenant, identity and scopes.
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.call(self.route(Method::GET, &["v1", "me"])?).await
    }

    /// `GET /v1/api-keys`: one page of the tenant's keys (secrets are never listed).
    pub async fn api_keys_list(&self, page: &ListOptions) -> Result<Page<ApiKey>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "api-keys"])?.query(page)).await
    }

    /// `POST /v1/api-keys`: a new key; the returned `secret` is shown this once only.
    pub async fn api_key_create(&self, request: &CreateApiKeyRequest) -> Result<CreatedApiKey, ClientError> {
        self.call(self.route(Method::POST, &["v1", "api-keys"])?.json(request)).await
    }

    /// `DELETE /v1/api-keys/{id}`: revokes a key and returns it, `revoked_at` set.
    pub async fn api_key_revoke(&self, id: &str) -> Result<ApiKey, ClientError> {
        self.call(self.route(Method::DELETE, &["v1", "api-keys", id])?).await
    }
}
