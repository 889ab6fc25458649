//! `agentd admin operator …`, `agentd admin tenants …` and `agentd admin workers list`:
//! the operators' views and changes, run on the database directly (holding it is the
//! credential), through the same domain operations as `/v1/admin/*`. Tables by default,
//! `--json` for scripts.

use std::process::ExitCode;

use agentd_control::{OperatorCtx, Operators};
use agentd_core::operators::TenantOverview;
use agentd_core::{OperatorTokenId, PageBounds, PageRequest, TenantId};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator token for `/v1/admin/*`; printed once.
    CreateToken {
        #[arg(long, default_value = "operator")]
        name: String,
    },
    /// List operator tokens.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an operator token by id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a workspace with no members and an owner invite for --owner-email; prints
    /// the invite token (shown once) and, with AGENTD_PUBLIC_URL, the URL to accept it.
    Create(crate::admin::TenantCreateArgs),
    /// List tenants, newest first, with their usage over the last 30 days.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant: its credentials are refused and its queued runs wait.
    Suspend {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Resume a suspended tenant.
    Resume {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn fail(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::FAILURE
}

fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

pub async fn operator(ops: &Operators, op: &OperatorCtx, command: OperatorCommand) -> ExitCode {
    match command {
        OperatorCommand::CreateToken { name } => match ops.token_create(op, &name).await {
            Ok(created) => {
                eprintln!("created operator token {} ({name}); it is shown only this once:", created.token.id);
                println!("{}", created.secret.expose());
                ExitCode::SUCCESS
            }
            Err(err) => fail(err),
        },
        OperatorCommand::List { json } => match ops.tokens_list(op).await {
            Ok(tokens) if json => print_json(&tokens),
            Ok(tokens) => {
                println!("{:<38} {:<20} {:<26} REVOKED", "ID", "NAME", "CREATED");
                for t in &tokens {
                    let revoked = t.revoked_at.map(|at| at.to_string()).unwrap_or_else(|| "-".into());
                    println!("{:<38} {:<20} {:<26} {revoked}", t.id, t.name, t.created_at.to_string());
                }
                ExitCode::SUCCESS
            }
            Err(err) => fail(err),
        },
        OperatorCommand::Revoke { id } => {
            let Ok(id) = OperatorTokenId::parse(&id) else {
                return fail(format!("`{id}` is not an operator token id"));
            };
            match ops.token_revoke(op, &id).await {
                Ok(Some(_)) => {
                    eprintln!("revoked operator token {id}");
                    ExitCode::SUCCESS
                }
                Ok(None) => fail(format!("no operator token {id}")),
                Err(err) => fail(err),
            }
        }
    }
}

pub async fn tenants(ops: &Operators, op: &OperatorCtx, command: TenantsCommand) -> ExitCode {
    let parse = |id: &str| TenantId::parse(id).map_err(|e| e.to_string());
    let (result, json) = match command {
        // Creating one takes the store itself: `admin.rs` runs it before it gets here.
        TenantsCommand::Create(_) => return ExitCode::FAILURE,
        TenantsCommand::List { limit, cursor, json } => {
            let page = match PageRequest::parse(Some(limit), cursor.as_deref(), PageBounds::RESOURCES) {
                Ok(page) => page,
                Err(err) => return fail(err),
            };
            return match ops.tenants_list(op, &page).await {
                Ok(page) if json => print_json(&page),
                Ok(page) => {
                    print_tenants(&page.data);
                    if let Some(next) = page.next_cursor {
                        eprintln!("more: --cursor {next}");
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => fail(err),
            };
        }
        TenantsCommand::Show { id, json } => match parse(&id) {
            Ok(id) => (ops.tenant_get(op, &id).await, json),
            Err(err) => return fail(err),
        },
        TenantsCommand::Suspend { id, json } => match parse(&id) {
            Ok(id) => (ops.tenant_suspend(op, &id).await, json),
            Err(err) => return fail(err),
        },
        TenantsCommand::Resume { id, json } => match parse(&id) {
            Ok(id) => (ops.tenant_resume(op, &id).await, json),
            Err(err) => return fail(err),
        },
    };
    match result {
        Ok(tenant) if json => print_json(&tenant),
        Ok(tenant) => {
            print_tenants(std::slice::from_ref(&tenant));
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}

fn print_tenants(tenants: &[TenantOverview]) {
    println!(
        "{:<38} {:<20} {:<10} {:>8} {:>10} {:>12} {:>7} {:>7}",
        "ID", "SLUG", "STATUS", "RUNS_30D", "CPU_MS", "STORAGE_B", "QUEUED", "RUNNING"
    );
    for t in tenants {
        let u = &t.usage;
        println!(
            "{:<38} {:<20} {:<10} {:>8} {:>10} {:>12} {:>7} {:>7}",
            t.tenant.id.as_str(),
            t.tenant.slug.as_str(),
            t.tenant.status.as_str(),
            u.figures.invocations,
            u.figures.cpu_ms,
            u.storage.total_bytes,
            u.queued,
            u.running
        );
    }
}

pub async fn workers_list(ops: &Operators, op: &OperatorCtx, json: bool) -> ExitCode {
    match ops.workers_list(op).await {
        Ok(workers) if json => print_json(&workers),
        Ok(workers) => {
            println!("{:<50} {:>5} {:>9} {:<5} LAST_SEEN", "LEASE_OWNER", "SLOTS", "IN_FLIGHT", "LIVE");
            for w in &workers {
                let slots = w.slots.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                let live = if w.live { "yes" } else { "no" };
                println!("{:<50} {slots:>5} {:>9} {live:<5} {}", w.lease_owner, w.runs_in_flight, w.last_seen_at);
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(err),
    }
}
