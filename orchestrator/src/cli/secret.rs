//! `weir secret …`: a tenant's named secrets, for `${secret:NAME}` in job
//! specs. Values go in (from stdin or a file) and never come back out.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::{self, Format};
use crate::secrets::SecretInfo;

#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Set a secret from stdin (one trailing newline dropped) or a file.
    Set {
        name: String,
        /// Read the value from this file, as is.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// The tenant's secrets by name (never their values).
    List,
    /// Delete a secret.
    Delete { name: String },
}

pub async fn run(g: &Globals, cmd: &SecretCmd) -> Result<(), CliError> {
    let api = Api::new(g);
    match cmd {
        SecretCmd::Set { name, from_file } => {
            let value = match from_file {
                Some(path) => std::fs::read(path)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?,
                None => {
                    let mut v = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut v)
                        .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
                    if v.ends_with(b"\n") {
                        v.pop();
                        if v.ends_with(b"\r") {
                            v.pop();
                        }
                    }
                    v
                }
            };
            let info: SecretInfo = api.put_bytes(&format!("secrets/{name}"), value).await?;
            if g.output == Format::Json {
                return output::json(&info);
            }
            println!("secret `{}` set in tenant `{}`", info.name, g.tenant);
            Ok(())
        }
        SecretCmd::List => {
            let all: Vec<SecretInfo> = api.get("secrets").await?;
            if g.output == Format::Json {
                return output::json(&all);
            }
            if all.is_empty() {
                println!("no secrets in tenant `{}`", g.tenant);
            }
            for s in &all {
                println!(
                    "{}  set {}",
                    s.name,
                    s.updated_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
            Ok(())
        }
        SecretCmd::Delete { name } => {
            let _: Vec<SecretInfo> = api.delete(&format!("secrets/{name}")).await?;
            if g.output == Format::Text {
                println!("secret `{name}` deleted from tenant `{}`", g.tenant);
            }
            Ok(())
        }
    }
}
