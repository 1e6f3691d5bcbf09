//! The command verbs' path: publish a command envelope over NATS, wait for
//! its outcome, print it.

use super::error::CliError;
use super::globals::Globals;
use super::output::{self, Format};
use crate::client::{self, Request};
use crate::domain::Outcome;
use crate::intake::Subjects;

/// Publishes `kind` for `target` over `nats` as the acting user and waits for the outcome.
pub async fn send(
    nats: &async_nats::Client,
    g: &Globals,
    kind: &str,
    target: &str,
    payload: serde_json::Value,
    expected_version: Option<u64>,
) -> Result<Outcome, CliError> {
    let subjects = Subjects::new(g.conn.subject_prefix.clone());
    let outcome = client::send_as(
        nats,
        &subjects,
        g.token.as_deref(),
        Request {
            tenant: g.tenant.clone(),
            kind: kind.to_owned(),
            target: target.to_owned(),
            payload,
            expected_version,
            actor: g.actor.clone(),
        },
        g.timeout.get(),
        g.output == Format::Text,
    )
    .await?;
    Ok(outcome)
}

/// Connects, [`send`]s, then prints the outcome; a rejection becomes exit code 1.
pub async fn send_and_print(
    g: &Globals,
    kind: &str,
    target: &str,
    payload: serde_json::Value,
    expected_version: Option<u64>,
) -> Result<(), CliError> {
    let nats = client::connect(&g.conn.nats_url, g.token.as_deref()).await?;
    let outcome = send(&nats, g, kind, target, payload, expected_version).await?;
    output::outcome(g.output, kind, &outcome)
}
