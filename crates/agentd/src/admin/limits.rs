//! `agentd admin limits show|set|unset TENANT …`: a tenant's limits and its own values
//! (overrides) for them. Effective values are the overrides laid over the defaults this
//! command reads from `AGENTD_LIMITS_*`, as `serve` does: run it with the server's
//! environment to see what the server applies.

use std::process::ExitCode;

use agentd_control::{LimitChange, LimitsView};
use agentd_store::Store;
use clap::Subcommand;

use crate::settings::default_limits;

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Every limit of a tenant (slug or id): value, and whether it is the default or its own.
    Show {
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a tenant its own values: `agentd admin limits set acme max_agents=500 memory_mb=1024`.
    Set {
        tenant: String,
        #[arg(required = true, value_name = "NAME=VALUE")]
        values: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Drop a tenant's own values, so the defaults apply again: `… unset acme max_agents`.
    Unset {
        tenant: String,
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: &Store, command: LimitsCommand) -> ExitCode {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let defaults = match default_limits(&vars) {
        Ok(defaults) => defaults,
        Err(err) => return fail(&err),
    };
    let store = store.clone().with_default_limits(defaults);
    let (tenant, json, outcome) = match &command {
        LimitsCommand::Show { tenant, json } => {
            (tenant, *json, agentd_control::tenant_limits_show(&store, tenant).await)
        }
        LimitsCommand::Set { tenant, values, json } => match LimitChange::set(values.iter().map(String::as_str)) {
            Ok(change) => (tenant, *json, agentd_control::tenant_limits_change(&store, tenant, &change).await),
            Err(err) => return fail(&err),
        },
        LimitsCommand::Unset { tenant, names, json } => match LimitChange::unset(names.iter().map(String::as_str)) {
            Ok(change) => (tenant, *json, agentd_control::tenant_limits_change(&store, tenant, &change).await),
            Err(err) => return fail(&err),
        },
    };
    match outcome {
        Ok((record, view)) => {
            print_view(&record.tenant.slug.to_string(), &record.tenant.id.to_string(), &view, json);
            ExitCode::SUCCESS
        }
        Err(agentd_control::ControlError::NotFound(_)) => {
            eprintln!("error: no tenant has the slug or id `{tenant}`");
            ExitCode::FAILURE
        }
        Err(err) => {
            let cause = std::error::Error::source(&err).map(|s| format!(": {s}")).unwrap_or_default();
            eprintln!("error: {err}{cause}");
            ExitCode::FAILURE
        }
    }
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(2)
}

fn print_view(slug: &str, id: &str, view: &LimitsView, json: bool) {
    if json {
        let limits: serde_json::Map<String, serde_json::Value> = view
            .limits
            .iter()
            .map(|l| (l.name.to_owned(), serde_json::json!({"value": l.value, "source": l.source.as_str()})))
            .collect();
        println!("{}", serde_json::json!({"tenant": {"id": id, "slug": slug}, "limits": limits}));
        return;
    }
    println!("tenant {slug} ({id})");
    println!("{:<28} {:>22}  SOURCE", "LIMIT", "VALUE");
    for limit in &view.limits {
        println!("{:<28} {:>22}  {}", limit.name, limit.value, limit.source.as_str());
    }
}
