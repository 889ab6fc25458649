//! Members, invites and switching workspaces.

use agentd_api_types::{
    AcceptInviteRequest, AcceptInviteResponse, CreateInviteRequest, CreatedInvite, Invite, LoginResponse, Member, Page,
    PatchMemberRequest, Role, SwitchWorkspaceRequest,
};
use reqwest::Method;

use crate::{Client, ClientError, ListOptions};

impl Client {
    /// `GET /v1/members`: one page of the workspace's members, newest first.
    pub async fn members_list(&self, page: &ListOptions) -> Result<Page<Member>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "members"])?.query(page)).await
    }

    /// `GET /v1/members/{id}` (a user id).
    pub async fn member_get(&self, id: &str) -> Result<Member, ClientError> {
        self.call(self.route(Method::GET, &["v1", "members", id])?).await
    }

    /// `PATCH /v1/members/{id}`: gives the member another role.
    pub async fn member_set_role(&self, id: &str, role: Role) -> Result<Member, ClientError> {
        self.call(self.route(Method::PATCH, &["v1", "members", id])?.json(&PatchMemberRequest { role })).await
    }

    /// `DELETE /v1/members/{id}`: removes a member, or the caller leaves.
    pub async fn member_remove(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "members", id])?).await
    }

    /// `POST /v1/invites`: the returned `token` is shown this once.
    pub async fn invite_create(&self, request: &CreateInviteRequest) -> Result<CreatedInvite, ClientError> {
        self.call(self.route(Method::POST, &["v1", "invites"])?.json(request)).await
    }

    /// `GET /v1/invites`: one page of the pending invites.
    pub async fn invites_list(&self, page: &ListOptions) -> Result<Page<Invite>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "invites"])?.query(page)).await
    }

    /// `DELETE /v1/invites/{id}`: revokes an invite and returns it.
    pub async fn invite_revoke(&self, id: &str) -> Result<Invite, ClientError> {
        self.call(self.route(Method::DELETE, &["v1", "invites", id])?).await
    }

    /// `POST /v1/invites/{token}/accept`: joins the workspace; a session token for it.
    pub async fn invite_accept(
        &self,
        token: &str,
        request: &AcceptInviteRequest,
    ) -> Result<AcceptInviteResponse, ClientError> {
        self.call(self.route(Method::POST, &["v1", "invites", token, "accept"])?.json(request)).await
    }

    /// `POST /v1/auth/switch`: a session in another of the signed-in user's workspaces.
    pub async fn workspace_switch(&self, workspace_slug: &str) -> Result<LoginResponse, ClientError> {
        let request = SwitchWorkspaceRequest { workspace_slug: workspace_slug.to_owned() };
        self.call(self.route(Method::POST, &["v1", "auth", "switch"])?.json(&request)).await
    }
}
