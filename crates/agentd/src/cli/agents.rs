//! `agentd agents list | show | deploy | activate | rollback | secrets …`: the agent registry from the
//! command line. `deploy` is the one with logic: read the manifest, create the agent on first
//! deploy, pack the folder and upload it as a new version.

use std::path::{Path, PathBuf};

use agentd_api_types::{Agent, AgentVersion, BuildStatus, CreateAgentRequest};
use agentd_bundle::Manifest;
use agentd_client::{Client, ListOptions};
use clap::{Args, Subcommand};

use super::output::{
    Failure, byte_progress, next_page_hint, one_line, or_dash, print_json, print_table, spinner, word,
};
use super::session::{Connection, Session};
use super::slug::slugify;

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: AgentsCommand,
}

#[derive(Debug, Subcommand)]
enum AgentsCommand {
    /// List the workspace's agents
    List(PageArgs),
    /// Show one agent and its versions
    Show { slug: String },
    /// Pack a folder with an agent.toml and upload it as the agent's next version
    Deploy(DeployArgs),
    /// Make an earlier version the active one again
    Rollback {
        slug: String,
        /// Version number to activate
        version: u32,
    },
    /// Make a version the active one (one uploaded with `deploy --no-activate`, or any)
    Activate {
        slug: String,
        /// Version number to activate
        version: u32,
    },
    /// Set, list and delete an agent's secrets
    Secrets(super::secrets::SecretsArgs),
    /// Delete an agent, its versions, secrets and triggers (its past invocations stay)
    Delete {
        slug: String,
        /// Delete without asking
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Most items to fetch
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after a previous page
    #[arg(long)]
    pub cursor: Option<String>,
}

impl PageArgs {
    pub fn options(&self) -> ListOptions {
        ListOptions { limit: self.limit, cursor: self.cursor.clone() }
    }
}

#[derive(Debug, Args)]
struct DeployArgs {
    /// Folder with agent.toml at its root
    dir: PathBuf,
    /// Agent slug [default: the manifest's name, slugified]
    #[arg(long)]
    slug: Option<String>,
    /// Upload the version without making it the active one
    #[arg(long)]
    no_activate: bool,
}

pub async fn run(args: AgentsArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        AgentsCommand::List(page) => list(&session, &page).await,
        AgentsCommand::Show { slug } => show(&session, &slug).await,
        AgentsCommand::Deploy(deploy_args) => deploy(&session, deploy_args).await,
        AgentsCommand::Rollback { slug, version } | AgentsCommand::Activate { slug, version } => {
            activate(&session, &slug, version).await
        }
        AgentsCommand::Secrets(secrets_args) => super::secrets::run(&session, secrets_args).await,
        AgentsCommand::Delete { slug, yes } => delete(&session, &slug, yes).await,
    }
}

async fn list(session: &Session, page: &PageArgs) -> Result<(), Failure> {
    let agents = session.client.agents_list(&page.options()).await?;
    if session.json {
        return print_json(&agents);
    }
    let rows: Vec<Vec<String>> = agents.data.iter().map(agent_row).collect();
    print_table(&["SLUG", "NAME", "VERSION", "STATUS", "UPDATED"], &rows);
    next_page_hint(agents.next_cursor.as_deref());
    Ok(())
}

fn agent_row(agent: &Agent) -> Vec<String> {
    vec![
        agent.slug.to_string(),
        agent.name.clone(),
        or_dash(agent.active_version),
        word(&agent.status),
        agent.updated_at.to_string(),
    ]
}

async fn show(session: &Session, slug: &str) -> Result<(), Failure> {
    let agent = session.client.agent_get(slug).await?;
    if session.json {
        return print_json(&agent);
    }
    let versions = session.client.versions_list(slug, &ListOptions::default()).await?;
    println!("slug:        {}", agent.slug);
    println!("id:          {}", agent.id);
    println!("name:        {}", agent.name);
    println!("description: {}", or_dash(agent.description.as_deref()));
    println!("tags:        {}", agent.tags.join(", "));
    println!("visibility:  {}", word(&agent.visibility));
    println!("status:      {}", word(&agent.status));
    println!("active:      {}", or_dash(agent.active_version));
    println!("created:     {}", agent.created_at);
    println!();
    let rows: Vec<Vec<String>> = versions
        .data
        .iter()
        .map(|v| {
            let active = if agent.active_version == Some(v.version) { "*" } else { "" };
            vec![format!("{}{active}", v.version), v.digest.clone(), v.size_bytes.to_string(), v.created_at.to_string()]
        })
        .collect();
    print_table(&["VERSION", "DIGEST", "BYTES", "CREATED"], &rows);
    next_page_hint(versions.next_cursor.as_deref());
    Ok(())
}

async fn deploy(session: &Session, args: DeployArgs) -> Result<(), Failure> {
    let manifest = read_manifest(&args.dir).await?;
    let slug = match args.slug {
        Some(slug) => slug,
        None => slugify(&manifest.name).ok_or_else(|| {
            Failure::Usage(format!("cannot derive a slug from the manifest name `{}`; pass --slug", manifest.name))
        })?,
    };
    ensure_agent(&session.client, &slug, &manifest).await?;

    let dir = args.dir.clone();
    let bundle = tokio::task::spawn_blocking(move || agentd_bundle::pack_dir(&dir))
        .await
        .map_err(|e| Failure::local(format!("packing {} stopped: {e}", args.dir.display())))?
        .map_err(|e| Failure::local(format!("cannot pack {}: {e}", args.dir.display())))?;

    let activate = !args.no_activate;
    let progress = byte_progress(bundle.len() as u64, format!("uploading {slug}"));
    let shown = progress.clone();
    let uploaded = session
        .client
        .version_upload_with_progress(&slug, bundle, activate, move |sent| shown.set_position(sent))
        .await;
    progress.finish_and_clear();
    let version = uploaded?;
    let version = match version.build.status.is_settled() {
        true => version,
        false => wait_for_build(session, &slug, version).await?,
    };
    if session.json {
        return print_json(&version);
    }
    if version.build.status == BuildStatus::Failed {
        print_build_log(&session.client.version_build(&slug, version.version).await?);
        return Err(Failure::BuildFailed {
            version: version.version,
            error: version.build.error.clone().unwrap_or_default(),
        });
    }
    print_deployed(&slug, &version, activate);
    Ok(())
}

/// Shows the dependency build's progress (its latest log line) until it settles.
async fn wait_for_build(session: &Session, slug: &str, version: AgentVersion) -> Result<AgentVersion, Failure> {
    let installer = version.build.installer.clone().unwrap_or_else(|| "dependencies".to_owned());
    let progress = spinner(format!("installing: {installer}"));
    loop {
        let build = session.client.version_build(slug, version.version).await?;
        if build.status.is_settled() {
            progress.finish_and_clear();
            let versions = session.client.versions_list(slug, &ListOptions::default()).await?;
            let settled = versions.data.into_iter().find(|v| v.version == version.version);
            return Ok(settled.unwrap_or(version));
        }
        if let Some(line) = build.log.last() {
            progress.set_message(format!("installing: {}", one_line(&line.message, 100)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The whole build log on stderr, for a build that failed.
fn print_build_log(build: &agentd_api_types::VersionBuildResponse) {
    eprintln!("dependency build log of version {}:", build.version);
    for line in &build.log {
        eprintln!("  {}", line.message);
    }
}

/// Reads and checks `DIR/agent.toml` with the same rules the server applies.
async fn read_manifest(dir: &Path) -> Result<Manifest, Failure> {
    let path = dir.join("agent.toml");
    let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::Usage(format!("{} has no agent.toml: an agent folder needs one at its root", dir.display()))
        } else {
            Failure::local(format!("cannot read {}: {e}", path.display()))
        }
    })?;
    Manifest::from_toml(&text).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

/// Makes sure the agent exists, creating it from the manifest on its first deploy.
async fn ensure_agent(client: &Client, slug: &str, manifest: &Manifest) -> Result<(), Failure> {
    match client.agent_get(slug).await {
        Ok(_) => Ok(()),
        Err(e) if e.status() == Some(404) => {
            let request = CreateAgentRequest {
                slug: slug.to_owned(),
                name: Some(manifest.name.clone()),
                description: manifest.description.clone(),
                tags: Some(manifest.tags.clone()),
                visibility: None,
            };
            let agent = client.agent_create(&request).await?;
            eprintln!("Created agent {} ({}).", agent.slug, agent.id);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn print_deployed(slug: &str, version: &AgentVersion, activate: bool) {
    println!("Deployed {slug} version {} ({} bytes, {}).", version.version, version.size_bytes, version.digest);
    if let Some(installer) = &version.build.installer {
        println!("Dependencies installed ({installer}).");
    }
    for warning in &version.build.warnings {
        println!("warning: {warning}");
    }
    if activate {
        println!("Version {} is now active.", version.version);
    } else {
        println!("Not activated; run `agentd agents activate {slug} {}` to activate it.", version.version);
    }
}

async fn activate(session: &Session, slug: &str, version: u32) -> Result<(), Failure> {
    let agent = session.client.version_activate(slug, version).await?;
    if session.json {
        return print_json(&agent);
    }
    println!("{} now runs version {}.", agent.slug, or_dash(agent.active_version));
    Ok(())
}

/// Deletes an agent; at a terminal it asks first unless `--yes`, elsewhere `--yes` is
/// required, so a script never deletes by accident.
async fn delete(session: &Session, slug: &str, yes: bool) -> Result<(), Failure> {
    use std::io::IsTerminal;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Usage(format!("deleting {slug} needs --yes when not at a terminal")));
        }
        eprint!("Delete agent {slug} with its versions, secrets and triggers? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| Failure::local(format!("cannot read the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Failure::Usage("not deleted".into()));
        }
    }
    session.client.agent_delete(slug).await?;
    if session.json {
        return print_json(&serde_json::json!({"deleted": slug}));
    }
    println!("Deleted agent {slug}.");
    Ok(())
}
