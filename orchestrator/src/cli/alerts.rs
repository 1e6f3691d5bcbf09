//! `weir alerts`: what fires across the tenant's jobs.

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::{self, Format};
use super::render;
use crate::api::types::FiringAlert;

pub async fn run(g: &Globals) -> Result<(), CliError> {
    let firing: Vec<FiringAlert> = Api::new(g).get("alerts").await?;
    if g.output == Format::Json {
        return output::json(&firing);
    }
    if firing.is_empty() {
        println!("nothing fires in tenant `{}`", g.tenant);
    }
    for a in &firing {
        println!("{}", render::firing_alert(a));
    }
    Ok(())
}
