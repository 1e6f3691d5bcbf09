//! The command envelope every client publishes, the parsing that turns raw
//! bytes into a typed [`Command`], and the [`Outcome`] that answers it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{JobName, ModuleName, StreamId, Tenant};
use super::job::JobCommand;
use super::module::ModuleCommand;
use super::rejection::{Rejection, RejectionCode};
use super::tenant::TenantCommand;
use super::workflow::WorkflowCommand;

/// Largest accepted command message, in bytes.
pub const MAX_COMMAND_BYTES: usize = 256 * 1024;

/// The envelope as it travels on `weir.cmd.<tenant>.<kind>`. Parsed in two
/// steps (envelope, then payload by kind) so errors can say which part is wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvelope {
    pub id: Uuid,
    pub tenant: String,
    pub kind: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub actor: String,
    pub issued_at: DateTime<Utc>,
    #[serde(default = "empty_object")]
    pub payload: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// The envelope's documented shape: the common fields plus one of the commands.
/// Only used to generate the JSON Schema; see `RawEnvelope` for parsing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "CommandEnvelope")]
pub struct CommandEnvelope {
    /// UUID v7, chosen by the client. Commands are deduplicated by it forever.
    pub id: Uuid,
    /// Must equal the `<tenant>` token of the subject it was published on.
    pub tenant: Tenant,
    /// The name of the aggregate the command is for, e.g. the job name.
    pub target: String,
    /// When set, the command is refused with `conflict` unless the target's stream is at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// Who issued it, for the audit trail.
    pub actor: String,
    pub issued_at: DateTime<Utc>,
    #[serde(flatten)]
    pub command: Command,
}

/// Every command Weir understands, tagged by `kind` with its `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Command {
    Job(JobCommand),
    Workflow(WorkflowCommand),
    Module(ModuleCommand),
    Tenant(TenantCommand),
}

impl Command {
    /// Every known kind.
    pub fn kinds() -> Vec<&'static str> {
        let mut kinds = JobCommand::KINDS.to_vec();
        kinds.extend(WorkflowCommand::KINDS);
        kinds.extend(ModuleCommand::KINDS);
        kinds.extend(TenantCommand::KINDS);
        kinds
    }

    /// Whether only Weir's own services send this command (see
    /// [`JobCommand::is_internal`]; the workflow engine's step reports).
    pub fn is_internal(&self) -> bool {
        match self {
            Command::Job(c) => c.is_internal(),
            Command::Workflow(c) => {
                !matches!(c, WorkflowCommand::Resume(_) | WorkflowCommand::Abort(_))
            }
            Command::Module(_) | Command::Tenant(_) => false,
        }
    }

    /// Whether only an admin may send this command (creating and changing tenants).
    pub fn is_admin(&self) -> bool {
        matches!(self, Command::Tenant(_))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Command::Job(c) => c.kind(),
            Command::Workflow(c) => c.kind(),
            Command::Module(c) => c.kind(),
            Command::Tenant(c) => c.kind(),
        }
    }

    /// Parses a payload for `kind`, naming the offending field on failure.
    pub fn parse(kind: &str, payload: serde_json::Value) -> Result<Command, Rejection> {
        if !Self::kinds().contains(&kind) {
            return Err(Rejection::new(
                RejectionCode::UnknownKind,
                format!(
                    "unknown command kind `{kind}`; known kinds: {}",
                    Self::kinds().join(", ")
                ),
            ));
        }
        let tagged = serde_json::json!({ "kind": kind, "payload": payload });
        let invalid = |e: serde_json::Error| {
            Rejection::new(
                RejectionCode::InvalidCommand,
                format!("payload for {kind}: {e}"),
            )
        };
        if kind.starts_with("job.") {
            return serde_json::from_value(tagged)
                .map(Command::Job)
                .map_err(invalid);
        }
        if kind.starts_with("module.") {
            return serde_json::from_value(tagged)
                .map(Command::Module)
                .map_err(invalid);
        }
        if kind.starts_with("tenant.") {
            return serde_json::from_value(tagged)
                .map(Command::Tenant)
                .map_err(invalid);
        }
        if kind.starts_with("workflow.") {
            return serde_json::from_value(tagged)
                .map(Command::Workflow)
                .map_err(invalid);
        }
        Err(Rejection::new(
            RejectionCode::UnknownKind,
            format!("unknown command kind `{kind}`"),
        ))
    }

    /// The stream a command targets, after validating the target name for that kind.
    pub fn stream(&self, target: &str) -> Result<StreamId, Rejection> {
        let invalid = |e: super::ids::NameError| {
            Rejection::new(RejectionCode::InvalidCommand, format!("target: {e}"))
        };
        match self {
            Command::Job(_) => {
                let name = JobName::new(target).map_err(invalid)?;
                Ok(StreamId::new("job", name.as_str()))
            }
            Command::Module(_) => {
                let name = ModuleName::new(target).map_err(invalid)?;
                Ok(StreamId::new("module", name.as_str()))
            }
            Command::Tenant(_) => {
                let name = Tenant::new(target).map_err(invalid)?;
                Ok(StreamId::new("tenant", name.as_str()))
            }
            // Runs are named by a UUID; the canonical hyphenated form keeps one stream per run.
            Command::Workflow(_) => match Uuid::parse_str(target) {
                Ok(id) if id.hyphenated().to_string() == target => Ok(StreamId::new("run", target)),
                _ => Err(Rejection::new(
                    RejectionCode::InvalidCommand,
                    format!("target: `{target}` is not a run id (a lowercase hyphenated UUID)"),
                )),
            },
        }
    }
}

/// A command that passed every syntactic check.
#[derive(Debug, Clone)]
pub struct ParsedCommand {
    pub id: Uuid,
    pub tenant: Tenant,
    pub target: String,
    pub stream: StreamId,
    pub expected_version: Option<u64>,
    pub actor: String,
    pub issued_at: DateTime<Utc>,
    pub command: Command,
}

/// A message that could not become a command. Carries whatever could be
/// recovered so the rejection can still be addressed and deduplicated.
#[derive(Debug, Clone)]
pub struct Unparsed {
    pub id: Option<Uuid>,
    pub rejection: Rejection,
}

/// Turns raw bytes from subject tenant `subject_tenant` into a command.
pub fn parse_message(subject_tenant: &str, bytes: &[u8]) -> Result<ParsedCommand, Unparsed> {
    let fail = |id, code, msg: String| Unparsed {
        id,
        rejection: Rejection::new(code, msg),
    };
    if bytes.len() > MAX_COMMAND_BYTES {
        // Answer on the id's subject when the id can be read, so a client
        // waiting for its own outcome hears back. The message is bounded by
        // the NATS server's max payload, so reading it once is cheap.
        return Err(fail(
            recover_id(bytes),
            RejectionCode::TooLarge,
            format!(
                "command is {} bytes; the limit is {MAX_COMMAND_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        fail(
            None,
            RejectionCode::InvalidUtf8,
            format!("command is not valid UTF-8: {e}"),
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        fail(
            None,
            RejectionCode::InvalidJson,
            format!("command is not valid JSON: {e}"),
        )
    })?;
    // Recover the id early so even schema violations are answered on the right subject.
    let id = value
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok());
    let raw: RawEnvelope = serde_json::from_value(value)
        .map_err(|e| fail(id, RejectionCode::InvalidCommand, format!("envelope: {e}")))?;
    let tenant = Tenant::new(&raw.tenant)
        .map_err(|e| fail(id, RejectionCode::InvalidCommand, format!("tenant: {e}")))?;
    if tenant.as_str() != subject_tenant {
        return Err(fail(
            id,
            RejectionCode::TenantMismatch,
            format!(
                "envelope tenant `{}` does not match subject tenant `{subject_tenant}`",
                raw.tenant
            ),
        ));
    }
    let command =
        Command::parse(&raw.kind, raw.payload).map_err(|r| Unparsed { id, rejection: r })?;
    let stream = command
        .stream(&raw.target)
        .map_err(|r| Unparsed { id, rejection: r })?;
    if command.is_admin() && raw.target != tenant.as_str() {
        return Err(fail(
            id,
            RejectionCode::InvalidCommand,
            format!(
                "{} targets tenant `{}` but is published for tenant `{tenant}`: a tenant command's target is its own tenant",
                raw.kind, raw.target
            ),
        ));
    }
    Ok(ParsedCommand {
        id: raw.id,
        tenant,
        target: raw.target,
        stream,
        expected_version: raw.expected_version,
        actor: raw.actor,
        issued_at: raw.issued_at,
        command,
    })
}

/// As [`parse_message`], for a message published on the command subject of
/// `subject_kind` (`<prefix>.cmd.<tenant>.<kind>`): a body of another kind is
/// refused, so that a permission to publish one kind's subject can never be
/// used to send another (a `job.create` body on `…job.delete`, say).
pub fn parse_on_subject(
    subject_tenant: &str,
    subject_kind: &str,
    bytes: &[u8],
) -> Result<ParsedCommand, Unparsed> {
    let c = parse_message(subject_tenant, bytes)?;
    let kind = c.command.kind();
    if kind != subject_kind {
        return Err(Unparsed {
            id: Some(c.id),
            rejection: Rejection::new(
                RejectionCode::KindMismatch,
                format!("envelope kind `{kind}` does not match subject kind `{subject_kind}`"),
            ),
        });
    }
    Ok(c)
}

/// Refuses a command only Weir's own services send, arriving from a client.
pub fn refuse_internal(c: ParsedCommand) -> Result<ParsedCommand, Unparsed> {
    if !c.command.is_internal() {
        return Ok(c);
    }
    Err(Unparsed {
        id: Some(c.id),
        rejection: Rejection::new(
            RejectionCode::Forbidden,
            format!(
                "`{}` is sent only by Weir's own services, not accepted from clients",
                c.command.kind()
            ),
        ),
    })
}

/// The `id` of a message that is otherwise refused, if it is JSON with one.
fn recover_id(bytes: &[u8]) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    let only: IdOnly = serde_json::from_slice(bytes).ok()?;
    Uuid::parse_str(&only.id?).ok()
}

/// Accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Accepted,
    Rejected,
}

/// A reference to a committed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventRef {
    /// Global, gap-free position.
    pub position: i64,
    pub stream_version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
}

/// The answer to a command, published on `weir.out.<tenant>.<command id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// Absent only when the message was too broken to carry an id.
    pub command_id: Option<Uuid>,
    pub tenant: String,
    pub status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The stream's version after the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_version: Option<u64>,
    #[serde(default)]
    pub events: Vec<EventRef>,
}

impl Outcome {
    pub fn rejected(command_id: Option<Uuid>, tenant: &str, rejection: Rejection) -> Self {
        Self {
            command_id,
            tenant: tenant.to_owned(),
            status: OutcomeStatus::Rejected,
            rejection: Some(rejection),
            stream: None,
            stream_version: None,
            events: Vec::new(),
        }
    }

    pub fn is_accepted(&self) -> bool {
        self.status == OutcomeStatus::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kind: &str, payload: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": Uuid::now_v7(), "tenant": "acme", "kind": kind, "target": "orders",
            "actor": "alice", "issued_at": Utc::now(), "payload": payload
        }))
        .unwrap()
    }

    #[test]
    fn parses_a_valid_command() {
        let c = parse_message(
            "acme",
            &env("job.rescale", serde_json::json!({"parallelism": 2})),
        )
        .unwrap();
        assert_eq!(c.stream.as_str(), "job.orders");
        assert_eq!(c.command.kind(), "job.rescale");
    }

    #[test]
    fn a_too_large_command_is_answered_under_its_own_id() {
        let id = Uuid::now_v7();
        let big = "x".repeat(MAX_COMMAND_BYTES);
        let bytes = serde_json::to_vec(&serde_json::json!({
            "id": id, "tenant": "acme", "kind": "job.create", "target": "orders",
            "actor": "alice", "issued_at": Utc::now(), "payload": {"spec": big}
        }))
        .unwrap();
        let err = parse_message("acme", &bytes).unwrap_err();
        assert_eq!(err.rejection.code, RejectionCode::TooLarge);
        assert_eq!(err.id, Some(id));
        // Not JSON, or no readable id: the `unknown` subject, as before.
        let err = parse_message("acme", &vec![b' '; MAX_COMMAND_BYTES + 1]).unwrap_err();
        assert_eq!(err.id, None);
    }

    #[test]
    fn each_malformation_has_its_own_code() {
        let code = |r: Result<ParsedCommand, Unparsed>| r.unwrap_err().rejection.code;
        assert_eq!(
            code(parse_message("acme", &[0xff, 0xfe])),
            RejectionCode::InvalidUtf8
        );
        assert_eq!(
            code(parse_message("acme", b"{nope")),
            RejectionCode::InvalidJson
        );
        assert_eq!(
            code(parse_message("acme", &vec![b' '; MAX_COMMAND_BYTES + 1])),
            RejectionCode::TooLarge
        );
        assert_eq!(
            code(parse_message(
                "acme",
                &env("job.fly", serde_json::json!({}))
            )),
            RejectionCode::UnknownKind
        );
        assert_eq!(
            code(parse_message(
                "other",
                &env("job.stop", serde_json::json!({}))
            )),
            RejectionCode::TenantMismatch
        );
        assert_eq!(
            code(parse_on_subject(
                "acme",
                "job.delete",
                &env("job.stop", serde_json::json!({}))
            )),
            RejectionCode::KindMismatch
        );
        assert!(
            parse_on_subject("acme", "job.stop", &env("job.stop", serde_json::json!({}))).is_ok()
        );
        let r = parse_message(
            "acme",
            &env("job.rescale", serde_json::json!({"paralelism": 2})),
        )
        .unwrap_err();
        assert_eq!(r.rejection.code, RejectionCode::InvalidCommand);
        assert!(
            r.rejection.message.contains("paralelism"),
            "{}",
            r.rejection.message
        );
        assert!(r.id.is_some());
    }
}
