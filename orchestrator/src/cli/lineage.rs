//! `weir lineage`: what the tenant's jobs read and write, as a list, JSON
//! (`-o json`) or Graphviz DOT (`--dot`).

use clap::Args;

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::{self, Format};
use crate::api::types::LineageQuery;
use crate::domain::lineage::Graph;

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// Only what is connected to this node: `topic:NAME`, `table:NAME`,
    /// `subject:NAME` or `url:URL`.
    #[arg(long)]
    pub node: Option<String>,
    /// With `--node`: only what feeds it.
    #[arg(long, requires = "node", conflicts_with = "downstream")]
    pub upstream: bool,
    /// With `--node`: only what it feeds.
    #[arg(long, requires = "node")]
    pub downstream: bool,
    /// Print Graphviz DOT (`weir lineage --dot | dot -Tsvg > lineage.svg`).
    #[arg(long)]
    pub dot: bool,
}

pub async fn run(g: &Globals, args: &LineageArgs) -> Result<(), CliError> {
    let direction = match (args.upstream, args.downstream) {
        (true, _) => "upstream",
        (_, true) => "downstream",
        _ => "both",
    };
    let query = LineageQuery {
        node: args.node.clone(),
        direction: Some(direction.to_owned()),
    };
    let graph: Graph = Api::new(g).get_with("lineage", &query).await?;
    if args.dot {
        print!("{}", graph.to_dot());
        return Ok(());
    }
    if g.output == Format::Json {
        return output::json(&graph);
    }
    for e in &graph.edges {
        let phase = e.phase.name();
        let role = if e.role == "output" {
            String::new()
        } else {
            format!(" [{}]", e.role)
        };
        println!(
            "{} -> {}  by {} v{} ({phase}){role}",
            e.from, e.to, e.job, e.version
        );
    }
    Ok(())
}
