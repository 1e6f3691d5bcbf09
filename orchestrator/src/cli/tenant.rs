//! `weir tenant …`: the admin's verbs. Changes are `tenant.*` commands over
//! NATS, sent with the admin's token; reads are `GET /v1/admin/tenants…`.
//!
//! A tenant's token is made here, from the operating system's random source,
//! printed once and sent to Weir only as its SHA-256.

use clap::Subcommand;
use serde_json::json;

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::{self, Format};
use super::publish;
use crate::api::types::TenantView;
use crate::client;
use crate::domain::tenant::{token_hash, Quota};
use crate::domain::Tenant;

#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// Create a tenant and print its token, once.
    Create {
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// Every tenant, with its usage against its quota.
    List,
    /// One tenant: quota, usage, topic grants.
    Show { name: String },
    /// Replace a tenant's token and print the new one, once.
    RotateToken { name: String },
    /// Set a tenant's quota (unset fields take their defaults).
    Quota {
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// Let a tenant's jobs use a Kafka topic outside its `<name>.` namespace.
    GrantTopic { name: String, topic: String },
    /// Take a topic grant back (running jobs keep it until redeployed).
    RevokeTopic { name: String, topic: String },
    /// Delete a tenant with no jobs left: its token stops working.
    Delete { name: String },
}

#[derive(Debug, Clone, clap::Args)]
pub struct QuotaArgs {
    /// Jobs that may exist at once.
    #[arg(long)]
    max_jobs: Option<u32>,
    /// Bytes of all module versions together.
    #[arg(long)]
    max_module_bytes: Option<u64>,
    /// Tasks of all deployed jobs together.
    #[arg(long)]
    max_parallelism: Option<u32>,
    /// Bytes of operator state one deployment may hold at a checkpoint.
    #[arg(long)]
    max_state_bytes: Option<u64>,
    /// Commands a second.
    #[arg(long)]
    commands_per_second: Option<u32>,
}

impl QuotaArgs {
    fn quota(&self) -> Quota {
        let d = Quota::default();
        Quota {
            max_jobs: self.max_jobs.unwrap_or(d.max_jobs),
            max_module_bytes: self.max_module_bytes.unwrap_or(d.max_module_bytes),
            max_parallelism: self.max_parallelism.unwrap_or(d.max_parallelism),
            max_state_bytes: self.max_state_bytes.unwrap_or(d.max_state_bytes),
            commands_per_second: self.commands_per_second.unwrap_or(d.commands_per_second),
        }
    }
}

/// bcrypt of `token`, for the tenant's NATS user: nats-server checks
/// passwords against bcrypt hashes, and only the CLI ever sees the token.
/// The token's own 244 random bits make a low work factor safe.
fn nats_password(token: &str) -> Result<String, CliError> {
    bcrypt::hash(token, 6).map_err(|e| CliError::Usage(format!("cannot hash the token: {e}")))
}

/// A new token: `weir_` and 64 hex digits. Two v4 UUIDs carry 244 bits from
/// the operating system's random source (uuid uses getrandom).
fn new_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("weir_{}{}", a.simple(), b.simple())
}

pub async fn run(g: &Globals, cmd: &TenantCmd) -> Result<(), CliError> {
    match cmd {
        TenantCmd::Create { name, quota } => {
            let token = new_token();
            let payload = json!({
                "token_sha256": token_hash(&token),
                "nats_password_bcrypt": nats_password(&token)?,
                "quota": quota.quota(),
            });
            send(g, name, "tenant.create", payload).await?;
            print_token(g, name, &token)
        }
        TenantCmd::RotateToken { name } => {
            let token = new_token();
            send(
                g,
                name,
                "tenant.rotate_token",
                json!({
                    "token_sha256": token_hash(&token),
                    "nats_password_bcrypt": nats_password(&token)?,
                }),
            )
            .await?;
            print_token(g, name, &token)
        }
        TenantCmd::Quota { name, quota } => {
            let payload =
                serde_json::to_value(quota.quota()).map_err(|e| CliError::Usage(e.to_string()))?;
            send_and_print(g, name, "tenant.set_quota", payload).await
        }
        TenantCmd::GrantTopic { name, topic } => {
            send_and_print(g, name, "tenant.grant_topic", json!({ "topic": topic })).await
        }
        TenantCmd::RevokeTopic { name, topic } => {
            send_and_print(g, name, "tenant.revoke_topic", json!({ "topic": topic })).await
        }
        TenantCmd::Delete { name } => send_and_print(g, name, "tenant.delete", json!({})).await,
        TenantCmd::List => {
            let all: Vec<TenantView> = Api::new(g).get_admin("tenants").await?;
            if g.output == Format::Json {
                return output::json(&all);
            }
            if all.is_empty() {
                println!("no tenants");
            }
            for t in &all {
                println!("{}", line(t));
            }
            Ok(())
        }
        TenantCmd::Show { name } => {
            let name = checked(name)?;
            let t: TenantView = Api::new(g).get_admin(&format!("tenants/{name}")).await?;
            if g.output == Format::Json {
                return output::json(&t);
            }
            println!("{}", line(&t));
            println!(
                "  quota: max_jobs {}, max_module_bytes {}, max_parallelism {}, max_state_bytes {}, commands_per_second {}",
                t.quota.max_jobs,
                t.quota.max_module_bytes,
                t.quota.max_parallelism,
                t.quota.max_state_bytes,
                t.quota.commands_per_second
            );
            if t.granted_topics.is_empty() {
                println!("  granted topics: none (only `{}.…`)", t.name);
            } else {
                println!("  granted topics: {}", t.granted_topics.join(", "));
            }
            Ok(())
        }
    }
}

fn checked(name: &str) -> Result<Tenant, CliError> {
    Tenant::new(name).map_err(|e| CliError::Usage(e.to_string()))
}

fn line(t: &TenantView) -> String {
    format!(
        "{}{}  jobs {}/{}  tasks {}/{}  modules {}/{} bytes",
        t.name,
        if t.active { "" } else { " (deleted)" },
        t.usage.jobs,
        t.quota.max_jobs,
        t.usage.tasks,
        t.quota.max_parallelism,
        t.usage.module_bytes,
        t.quota.max_module_bytes
    )
}

/// Sends a tenant command: published for the tenant it names, with the admin's token.
async fn send(
    g: &Globals,
    name: &str,
    kind: &str,
    payload: serde_json::Value,
) -> Result<crate::domain::Outcome, CliError> {
    let name = checked(name)?;
    let mut as_tenant = g.clone();
    as_tenant.tenant = name.to_string();
    let nats = client::connect(&g.conn.nats_url, g.token.as_deref()).await?;
    let outcome = publish::send(&nats, &as_tenant, kind, name.as_str(), payload, None).await?;
    if let Some(r) = &outcome.rejection {
        // The outcome printer exits 1; the token must not be printed then.
        return output::outcome(g.output, kind, &outcome)
            .and(Err(CliError::Usage(r.message.clone())));
    }
    Ok(outcome)
}

async fn send_and_print(
    g: &Globals,
    name: &str,
    kind: &str,
    payload: serde_json::Value,
) -> Result<(), CliError> {
    let outcome = send(g, name, kind, payload).await?;
    output::outcome(g.output, kind, &outcome)
}

fn print_token(g: &Globals, name: &str, token: &str) -> Result<(), CliError> {
    let user = crate::nats_auth::user_of_token(token);
    let inbox = crate::nats_auth::inbox_prefix(&user);
    if g.output == Format::Json {
        return output::json(&json!({
            "tenant": name,
            "token": token,
            "nats_user": user,
            "nats_inbox_prefix": inbox,
        }));
    }
    println!("tenant `{name}`'s token (shown once; keep it secret):");
    println!("{token}");
    eprintln!("the tenant acts with WEIR_TENANT={name} WEIR_TOKEN=<token>");
    eprintln!("other NATS clients log in as user `{user}` with the token as password, inbox prefix `{inbox}`");
    Ok(())
}
