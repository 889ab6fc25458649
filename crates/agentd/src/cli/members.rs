//! `agentd members list | role ID ROLE | remove ID` and `agentd invites list | create
//! EMAIL --role ROLE | revoke ID`: who belongs to the workspace. An invite's token is
//! printed once, at creation.

use agentd_api_types::{CreateInviteRequest, Invite, Member, Role};
use clap::{Args, Subcommand};

use super::agents::PageArgs;
use super::output::{Failure, next_page_hint, print_json, print_table};
use super::session::{Connection, Session};

#[derive(Debug, Args)]
pub struct MembersArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: MembersCommand,
}

#[derive(Debug, Subcommand)]
enum MembersCommand {
    /// List the workspace's members and their roles
    List(PageArgs),
    /// Give a member another role (owner, admin, developer, viewer)
    Role {
        /// The member's user id (`usr_…`)
        id: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Remove a member (or leave, with your own id); their sessions and keys end
    Remove {
        /// The member's user id (`usr_…`)
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct InvitesArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: InvitesCommand,
}

#[derive(Debug, Subcommand)]
enum InvitesCommand {
    /// List the pending invites
    List(PageArgs),
    /// Invite someone by email and print the invite's token, once
    Create {
        email: String,
        /// The role they join with
        #[arg(long, value_parser = parse_role, default_value = "developer")]
        role: Role,
    },
    /// Revoke a pending invite
    Revoke {
        /// Invite id (`ivt_…`)
        id: String,
    },
}

fn parse_role(value: &str) -> Result<Role, String> {
    Role::parse(value).map_err(|e| e.to_string())
}

pub async fn members(args: MembersArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        MembersCommand::List(page) => {
            let members = session.client.members_list(&page.options()).await?;
            if session.json {
                return print_json(&members);
            }
            let rows: Vec<Vec<String>> = members.data.iter().map(member_row).collect();
            print_table(&["ID", "EMAIL", "ROLE", "JOINED"], &rows);
            next_page_hint(members.next_cursor.as_deref());
            Ok(())
        }
        MembersCommand::Role { id, role } => {
            let member = session.client.member_set_role(&id, role).await?;
            if session.json {
                return print_json(&member);
            }
            println!("{} ({}) is now {}.", member.id, member.email, member.role.as_str());
            Ok(())
        }
        MembersCommand::Remove { id } => {
            session.client.member_remove(&id).await?;
            eprintln!("Removed {id}: their sessions in this workspace and the keys they created are revoked.");
            Ok(())
        }
    }
}

fn member_row(member: &Member) -> Vec<String> {
    vec![member.id.to_string(), member.email.clone(), member.role.as_str().to_owned(), member.created_at.to_string()]
}

pub async fn invites(args: InvitesArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        InvitesCommand::List(page) => {
            let invites = session.client.invites_list(&page.options()).await?;
            if session.json {
                return print_json(&invites);
            }
            let rows: Vec<Vec<String>> = invites.data.iter().map(invite_row).collect();
            print_table(&["ID", "EMAIL", "ROLE", "CREATED", "EXPIRES"], &rows);
            next_page_hint(invites.next_cursor.as_deref());
            Ok(())
        }
        InvitesCommand::Create { email, role } => create(&session, CreateInviteRequest { email, role }).await,
        InvitesCommand::Revoke { id } => {
            let invite = session.client.invite_revoke(&id).await?;
            if session.json {
                return print_json(&invite);
            }
            println!("Revoked invite {} for {}.", invite.id, invite.email);
            Ok(())
        }
    }
}

fn invite_row(invite: &Invite) -> Vec<String> {
    vec![
        invite.id.to_string(),
        invite.email.clone(),
        invite.role.as_str().to_owned(),
        invite.created_at.to_string(),
        invite.expires_at.to_string(),
    ]
}

async fn create(session: &Session, request: CreateInviteRequest) -> Result<(), Failure> {
    let created = session.client.invite_create(&request).await?;
    if session.json {
        return print_json(&created);
    }
    println!("{}", created.token);
    if let Some(url) = &created.accept_url {
        println!("{url}");
    }
    eprintln!(
        "Invited {} as {} until {}. The token above is shown once: send it to them \
         (they accept with POST /v1/invites/<token>/accept).",
        created.invite.email,
        created.invite.role.as_str(),
        created.invite.expires_at
    );
    Ok(())
}
