//! The client commands of the `agentd` binary (DESIGN §9): `signup`, `login`, `whoami`,
//! `agents …`, `invoke`, `respond`, `logs`, `cancel`, `invocations …`, `limits`, `usage`, `keys …`, `members …`,
//! `invites …`, `schedules …`, `triggers …`, `webhooks …`, `audit`. They talk to a server through
//! `agentd-client`; `init`, which writes a new agent folder, is the one that stays local.
//! `main.rs` flattens [`ClientCommand`] into its command enum next to
//! `serve` and hands the parsed command to [`run`].
//!
//! Output contract: results go to stdout (a human table, or the raw JSON with `--json`);
//! progress and errors go to stderr. Exit codes scripts can trust: see `output.rs` and
//! docs/CLI.md.

mod account;
mod agents;
mod audit;
mod credentials;
mod init;
mod invoke;
mod keys;
mod logs;
mod members;
mod output;
mod schedules;
mod secrets;
mod session;
mod slug;
mod threads;
mod triggers;
mod webhooks;
mod workspace;

use std::process::ExitCode;

use clap::Subcommand;

/// Commands that talk to an agentd server as a customer.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a workspace and its owner; stores the workspace's first API key.
    Signup(account::SignupArgs),
    /// Sign in with email and password; stores a session token.
    Login(account::LoginArgs),
    /// Show which workspace and identity the current credentials belong to.
    Whoami(account::WhoamiArgs),
    /// List, inspect, deploy, activate and delete agents; set their secrets.
    Agents(agents::AgentsArgs),
    /// Run an agent once.
    Invoke(invoke::InvokeArgs),
    /// Answer the question a waiting invocation asked; it resumes with the answer.
    Respond(invoke::RespondArgs),
    /// Print the events of an invocation.
    Logs(logs::LogsArgs),
    /// Cancel an invocation: a queued one never runs, a running one is killed.
    Cancel(logs::CancelArgs),
    /// List invocations (by agent, status, thread, parent) and show one.
    Invocations(workspace::InvocationsArgs),
    /// Show the workspace's limits, where each comes from, and what is in use.
    Limits(workspace::LimitsArgs),
    /// Show what finished runs consumed, per day and agent.
    Usage(workspace::UsageArgs),
    /// Manage the workspace's API keys.
    Keys(keys::KeysArgs),
    /// List the workspace's members, change their roles, remove them.
    Members(members::MembersArgs),
    /// Invite people to the workspace; list and revoke invites.
    Invites(members::InvitesArgs),
    /// List and inspect threads (conversations that keep state across runs).
    Threads(threads::ThreadsArgs),
    /// Create, list and delete agents' inbound trigger URLs.
    Triggers(triggers::TriggersArgs),
    /// Outbound webhook endpoints: create, list, show, delete, rotate their secret, deliveries.
    Webhooks(webhooks::WebhooksArgs),
    /// Cron schedules that invoke an agent: create, list, show, pause, resume, delete, trigger.
    Schedules(schedules::SchedulesArgs),
    /// Show the workspace's audit log: who changed what, when and from where.
    Audit(audit::AuditArgs),
    /// Write a new agent folder (manifest, entrypoint, README) that deploys as it is.
    Init(init::InitArgs),
}

/// Runs one client command to completion and says how the process should exit.
pub async fn run(command: ClientCommand) -> ExitCode {
    let outcome = match command {
        ClientCommand::Signup(args) => account::signup(args).await,
        ClientCommand::Login(args) => account::login(args).await,
        ClientCommand::Whoami(args) => account::whoami(args).await,
        ClientCommand::Agents(args) => agents::run(args).await,
        ClientCommand::Invoke(args) => invoke::run(args).await,
        ClientCommand::Respond(args) => invoke::respond(args).await,
        ClientCommand::Logs(args) => logs::logs(args).await,
        ClientCommand::Cancel(args) => logs::cancel(args).await,
        ClientCommand::Invocations(args) => workspace::invocations(args).await,
        ClientCommand::Limits(args) => workspace::limits(args).await,
        ClientCommand::Usage(args) => workspace::usage(args).await,
        ClientCommand::Keys(args) => keys::run(args).await,
        ClientCommand::Threads(args) => threads::run(args).await,
        ClientCommand::Schedules(args) => schedules::run(args).await,
        ClientCommand::Members(args) => members::members(args).await,
        ClientCommand::Invites(args) => members::invites(args).await,
        ClientCommand::Triggers(args) => triggers::run(args).await,
        ClientCommand::Webhooks(args) => webhooks::run(args).await,
        ClientCommand::Audit(args) => audit::run(args).await,
        ClientCommand::Init(args) => init::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Every client command takes `--json`; a failure before its arguments were
            // parsed into a session still answers in the form the script asked for.
            failure.report(std::env::args().any(|a| a == "--json"));
            failure.exit_code()
        }
    }
}
