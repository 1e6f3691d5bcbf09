//! The tenant aggregate: who may act in a tenant (the hash of its token),
//! what it may use (its quota) and which Kafka topics outside its namespace
//! an admin granted it. Pure: `decide` and `apply`, no I/O.
//!
//! The stream of tenant `t` is `tenant.t`, stored under tenant `t`. Tenant
//! commands are admin commands: intake accepts them only from the admin
//! identity (see `intake::auth`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::aggregate::{Aggregate, DecideContext};
use super::job::spec::{OperatorSpec, SinkSpec};
use super::job::JobSpec;
use super::rejection::{Rejection, RejectionCode};

/// What a tenant may use. Every field has a default, so a quota is written
/// only for what differs from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    /// Jobs that exist at once (deleted ones do not count).
    pub max_jobs: u32,
    /// Bytes of every module version uploaded, together.
    pub max_module_bytes: u64,
    /// Tasks of the tenant's deploying, running and stopping jobs together
    /// (the sum of their parallelism), checked at deploy, rescale, restore
    /// and rollback.
    pub max_parallelism: u32,
    /// Bytes of operator state (keyed state, CEP partial matches) one
    /// deployment may hold at a checkpoint; over it, the deployment fails.
    pub max_state_bytes: u64,
    /// Commands per second the tenant may publish, averaged over a second
    /// (bursts up to this many); the rest are refused with `quota_exceeded`.
    pub commands_per_second: u32,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            max_jobs: 100,
            max_module_bytes: 512 * 1024 * 1024,
            max_parallelism: 256,
            max_state_bytes: 1024 * 1024 * 1024,
            commands_per_second: 200,
        }
    }
}

/// A tenant command, tagged by `kind` with its `payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "payload", deny_unknown_fields)]
pub enum TenantCommand {
    /// Create the tenant with the hash of its first token. Sent by
    /// `weir tenant create`, which makes the token and prints it once.
    #[serde(rename = "tenant.create")]
    Create(CreateTenant),
    /// Replace the token (the old one stops working at once).
    #[serde(rename = "tenant.rotate_token")]
    RotateToken(RotateToken),
    /// Replace the quota.
    #[serde(rename = "tenant.set_quota")]
    SetQuota(Quota),
    /// Let the tenant's jobs read and write a topic outside its namespace.
    #[serde(rename = "tenant.grant_topic")]
    GrantTopic(TopicGrant),
    /// Take a grant back.
    #[serde(rename = "tenant.revoke_topic")]
    RevokeTopic(TopicGrant),
    /// Delete the tenant: its token stops working. Intake refuses it while
    /// the tenant has jobs.
    #[serde(rename = "tenant.delete")]
    Delete(DeleteTenant),
}

impl TenantCommand {
    pub const KINDS: [&'static str; 6] = [
        "tenant.create",
        "tenant.rotate_token",
        "tenant.set_quota",
        "tenant.grant_topic",
        "tenant.revoke_topic",
        "tenant.delete",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            TenantCommand::Create(_) => "tenant.create",
            TenantCommand::RotateToken(_) => "tenant.rotate_token",
            TenantCommand::SetQuota(_) => "tenant.set_quota",
            TenantCommand::GrantTopic(_) => "tenant.grant_topic",
            TenantCommand::RevokeTopic(_) => "tenant.revoke_topic",
            TenantCommand::Delete(_) => "tenant.delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// `sha256:<64 hex>` of the tenant's token. The token itself is never sent.
    pub token_sha256: String,
    /// bcrypt of the token, for the tenant's NATS user (nats-server checks
    /// passwords against bcrypt hashes). Without it the tenant has no NATS
    /// user where Weir writes the NATS server's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_password_bcrypt: Option<String>,
    #[serde(default)]
    pub quota: Quota,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateToken {
    /// `sha256:<64 hex>` of the new token.
    pub token_sha256: String,
    /// bcrypt of the new token, for the tenant's NATS user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_password_bcrypt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicGrant {
    pub topic: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteTenant {}

/// A tenant event, tagged by `type`. Token hashes are in events (a hash of
/// a 256-bit random token reveals nothing usable); tokens never are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TenantEvent {
    TenantCreated {
        token_sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nats_password_bcrypt: Option<String>,
        quota: Quota,
        by: String,
        at: DateTime<Utc>,
    },
    TokenRotated {
        token_sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nats_password_bcrypt: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    QuotaSet {
        quota: Quota,
        by: String,
        at: DateTime<Utc>,
    },
    TopicGranted {
        topic: String,
        by: String,
        at: DateTime<Utc>,
    },
    TopicRevoked {
        topic: String,
        by: String,
        at: DateTime<Utc>,
    },
    TenantDeleted {
        by: String,
        at: DateTime<Utc>,
    },
}

impl TenantEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            TenantEvent::TenantCreated { .. } => "tenant_created",
            TenantEvent::TokenRotated { .. } => "token_rotated",
            TenantEvent::QuotaSet { .. } => "quota_set",
            TenantEvent::TopicGranted { .. } => "topic_granted",
            TenantEvent::TopicRevoked { .. } => "topic_revoked",
            TenantEvent::TenantDeleted { .. } => "tenant_deleted",
        }
    }
}

/// The folded state of a tenant stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantState {
    /// Created and not deleted.
    pub active: bool,
    /// `sha256:<hex>` of the current token.
    pub token_sha256: String,
    /// bcrypt of the current token, when the admin's CLI sent one.
    #[serde(default)]
    pub nats_password_bcrypt: Option<String>,
    pub quota: Quota,
    /// Topics outside `<tenant>.` the tenant's jobs may use.
    pub granted_topics: BTreeSet<String>,
    pub created_at: Option<DateTime<Utc>>,
}

impl TenantState {
    /// Whether `token` is this tenant's current token.
    pub fn accepts(&self, token: &str) -> bool {
        self.active && !self.token_sha256.is_empty() && token_hash(token) == self.token_sha256
    }

    /// Why `tenant` (this state's name) may not use Kafka topic `topic`, if
    /// it may not: a tenant's topics are `<tenant>.…`, or granted.
    pub fn topic_problem(&self, tenant: &str, topic: &str) -> Option<String> {
        topic_problem(tenant, &self.granted_topics, topic)
    }
}

/// Why a job of `tenant` may not use Kafka topic `topic`, if it may not.
pub fn topic_problem(tenant: &str, granted: &BTreeSet<String>, topic: &str) -> Option<String> {
    let own = topic
        .strip_prefix(tenant)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|rest| !rest.is_empty());
    if own || granted.contains(topic) {
        None
    } else {
        Some(format!(
            "topic `{topic}` is outside tenant `{tenant}`'s namespace: use a topic named `{tenant}.<name>`, or ask an admin to grant it (`weir tenant grant-topic {tenant} {topic}`)"
        ))
    }
}

/// The NATS subjects a tenant's jobs publish on: `data.<tenant>.…`. Its
/// NATS user may subscribe there and nowhere in another tenant's space.
pub const DATA_SUBJECT_ROOT: &str = "data";

/// Why a NATS sink of `tenant` may not publish on `subject`, if it may not.
pub fn subject_problem(tenant: &str, subject: &str) -> Option<String> {
    let own = subject
        .strip_prefix(DATA_SUBJECT_ROOT)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_prefix(tenant))
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|rest| !rest.is_empty());
    (!own).then(|| {
        format!(
            "subject `{subject}` is outside tenant `{tenant}`'s data subjects: use `{DATA_SUBJECT_ROOT}.{tenant}.<name>`"
        )
    })
}

/// Every Kafka topic a job spec names, with the field that names it.
pub fn spec_topics(spec: &JobSpec) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (i, s) in spec.sources.iter().enumerate() {
        out.push((format!("sources[{i}].topic"), s.topic.as_str()));
    }
    for (i, s) in spec.sinks.iter().enumerate() {
        if let SinkSpec::Kafka { topic } = s {
            out.push((format!("sinks[{i}].topic"), topic.as_str()));
        }
    }
    for (i, op) in spec.operators.iter().enumerate() {
        if let OperatorSpec::Cep {
            timed_out_topic,
            late_topic,
            ..
        } = op
        {
            for (field, topic) in [
                ("timed_out_topic", timed_out_topic),
                ("late_topic", late_topic),
            ] {
                if let Some(t) = topic {
                    out.push((format!("operators[{i}].{field}"), t.as_str()));
                }
            }
        }
    }
    if let Some(t) = &spec.dead_letter_topic {
        out.push(("dead_letter_topic".to_owned(), t.as_str()));
    }
    out
}

/// Why a job of `tenant` may not run `spec`, field by field: each Kafka
/// topic it names outside the tenant's namespace and grants, and each NATS
/// sink subject outside its data subjects.
pub fn spec_topic_problems(tenant: &str, state: &TenantState, spec: &JobSpec) -> Vec<String> {
    let topics = spec_topics(spec).into_iter().filter_map(|(field, topic)| {
        topic_problem(tenant, &state.granted_topics, topic).map(|p| format!("{field}: {p}"))
    });
    let subjects = spec.sinks.iter().enumerate().filter_map(|(i, s)| match s {
        SinkSpec::Nats { subject } => {
            subject_problem(tenant, subject).map(|p| format!("sinks[{i}].subject: {p}"))
        }
        _ => None,
    });
    topics.chain(subjects).collect()
}

/// A tenant may not be named so: its namespace would hold Weir's own topics
/// (`weir.<tenant>.<job>.….repartition`).
pub const RESERVED_TENANTS: &[&str] = &["weir"];

/// `sha256:<64 lowercase hex>` of a token, as stored.
pub fn token_hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

fn check_hash(h: &str) -> Result<(), Rejection> {
    match h.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) => Ok(()),
        _ => Err(Rejection::new(
            RejectionCode::InvalidCommand,
            "token_sha256 must be sha256:<64 lowercase hex digits> (the token itself is never sent)",
        )),
    }
}

/// A bcrypt hash as nats-server reads one: `$2a$`, `$2b$` or `$2y$`, a cost,
/// and 53 characters of salt and hash from bcrypt's alphabet. Checked
/// strictly because it is written into the server's configuration.
fn check_bcrypt(h: &Option<String>) -> Result<(), Rejection> {
    let Some(h) = h else { return Ok(()) };
    let ok = h.len() == 60
        && ["$2a$", "$2b$", "$2y$"].iter().any(|p| h.starts_with(p))
        && h[4..6].bytes().all(|b| b.is_ascii_digit())
        && &h[6..7] == "$"
        && h[7..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::InvalidCommand,
            "nats_password_bcrypt must be a bcrypt hash ($2b$<cost>$<53 characters>) of the token",
        ))
    }
}

fn check_topic(t: &str) -> Result<(), Rejection> {
    // Kafka's own rule for topic names.
    let ok = !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::InvalidCommand,
            format!(
                "topic `{}` is not a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)",
                t.chars().take(80).collect::<String>()
            ),
        ))
    }
}

fn check_quota(q: &Quota) -> Result<(), Rejection> {
    if q.commands_per_second == 0 {
        return Err(Rejection::new(
            RejectionCode::InvalidCommand,
            "quota.commands_per_second must be at least 1 (a tenant that may send no command cannot even delete its jobs)",
        ));
    }
    Ok(())
}

/// Decides a tenant command.
pub fn decide(
    state: &TenantState,
    cmd: &TenantCommand,
    ctx: &DecideContext<'_>,
) -> Result<Vec<TenantEvent>, Rejection> {
    let by = ctx.actor.to_owned();
    let at = ctx.now;
    if !matches!(cmd, TenantCommand::Create(_)) && !state.active {
        return Err(Rejection::new(
            RejectionCode::NotFound,
            format!("tenant `{}` does not exist", ctx.target),
        ));
    }
    Ok(match cmd {
        TenantCommand::Create(c) => {
            if RESERVED_TENANTS.contains(&ctx.target) {
                return Err(Rejection::new(
                    RejectionCode::InvalidCommand,
                    format!("tenant name `{}` is reserved: its topic namespace holds Weir's internal topics", ctx.target),
                ));
            }
            check_hash(&c.token_sha256)?;
            check_bcrypt(&c.nats_password_bcrypt)?;
            check_quota(&c.quota)?;
            if state.active {
                return Err(Rejection::new(
                    RejectionCode::AlreadyExists,
                    format!(
                        "tenant `{}` already exists; use tenant.rotate_token for a new token",
                        ctx.target
                    ),
                ));
            }
            vec![TenantEvent::TenantCreated {
                token_sha256: c.token_sha256.clone(),
                nats_password_bcrypt: c.nats_password_bcrypt.clone(),
                quota: c.quota,
                by,
                at,
            }]
        }
        TenantCommand::RotateToken(r) => {
            check_hash(&r.token_sha256)?;
            check_bcrypt(&r.nats_password_bcrypt)?;
            vec![TenantEvent::TokenRotated {
                token_sha256: r.token_sha256.clone(),
                nats_password_bcrypt: r.nats_password_bcrypt.clone(),
                by,
                at,
            }]
        }
        TenantCommand::SetQuota(q) => {
            check_quota(q)?;
            if *q == state.quota {
                return Ok(Vec::new());
            }
            vec![TenantEvent::QuotaSet { quota: *q, by, at }]
        }
        TenantCommand::GrantTopic(g) => {
            check_topic(&g.topic)?;
            if state.granted_topics.contains(&g.topic) {
                return Ok(Vec::new());
            }
            vec![TenantEvent::TopicGranted {
                topic: g.topic.clone(),
                by,
                at,
            }]
        }
        TenantCommand::RevokeTopic(g) => {
            if !state.granted_topics.contains(&g.topic) {
                return Err(Rejection::new(
                    RejectionCode::NotFound,
                    format!(
                        "tenant `{}` has no grant for topic `{}`",
                        ctx.target, g.topic
                    ),
                ));
            }
            vec![TenantEvent::TopicRevoked {
                topic: g.topic.clone(),
                by,
                at,
            }]
        }
        TenantCommand::Delete(_) => vec![TenantEvent::TenantDeleted { by, at }],
    })
}

/// Folds one event.
pub fn apply(state: &mut TenantState, event: &TenantEvent) {
    match event {
        TenantEvent::TenantCreated {
            token_sha256,
            nats_password_bcrypt,
            quota,
            at,
            ..
        } => {
            // A tenant created again after deletion starts clean.
            *state = TenantState {
                active: true,
                token_sha256: token_sha256.clone(),
                nats_password_bcrypt: nats_password_bcrypt.clone(),
                quota: *quota,
                granted_topics: BTreeSet::new(),
                created_at: Some(*at),
            };
        }
        TenantEvent::TokenRotated {
            token_sha256,
            nats_password_bcrypt,
            ..
        } => {
            state.token_sha256 = token_sha256.clone();
            state.nats_password_bcrypt = nats_password_bcrypt.clone();
        }
        TenantEvent::QuotaSet { quota, .. } => state.quota = *quota,
        TenantEvent::TopicGranted { topic, .. } => {
            state.granted_topics.insert(topic.clone());
        }
        TenantEvent::TopicRevoked { topic, .. } => {
            state.granted_topics.remove(topic);
        }
        TenantEvent::TenantDeleted { .. } => {
            state.active = false;
            state.token_sha256.clear();
            state.nats_password_bcrypt = None;
        }
    }
}

impl Aggregate for TenantState {
    type Command = TenantCommand;
    type Event = TenantEvent;
    const STREAM_KIND: &'static str = "tenant";

    fn decide(
        &self,
        cmd: &TenantCommand,
        ctx: &DecideContext<'_>,
    ) -> Result<Vec<TenantEvent>, Rejection> {
        decide(self, cmd, ctx)
    }
    fn apply(&mut self, event: &TenantEvent) {
        apply(self, event)
    }
    fn event_type(event: &TenantEvent) -> &'static str {
        event.type_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> DecideContext<'static> {
        DecideContext {
            target: "alice",
            actor: "admin",
            now: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        }
    }

    fn run(state: &mut TenantState, cmd: TenantCommand) -> Result<usize, Rejection> {
        let events = decide(state, &cmd, &ctx())?;
        for e in &events {
            apply(state, e);
        }
        Ok(events.len())
    }

    fn create(token: &str) -> TenantCommand {
        TenantCommand::Create(CreateTenant {
            token_sha256: token_hash(token),
            nats_password_bcrypt: None,
            quota: Quota::default(),
        })
    }

    #[test]
    fn only_the_current_token_of_a_live_tenant_is_accepted() {
        let mut s = TenantState::default();
        assert!(!s.accepts(""), "no tenant, no token");
        run(&mut s, create("first")).unwrap();
        assert!(s.accepts("first"));
        assert!(!s.accepts("First"));
        assert!(!s.accepts(""));
        run(
            &mut s,
            TenantCommand::RotateToken(RotateToken {
                token_sha256: token_hash("second"),
                nats_password_bcrypt: None,
            }),
        )
        .unwrap();
        assert!(!s.accepts("first"), "a rotated token stops working");
        assert!(s.accepts("second"));
        run(&mut s, TenantCommand::Delete(DeleteTenant {})).unwrap();
        assert!(
            !s.accepts("second"),
            "a deleted tenant's token stops working"
        );
    }

    #[test]
    fn commands_on_a_missing_tenant_and_bad_input_are_refused_by_name() {
        let mut s = TenantState::default();
        let e = run(&mut s, TenantCommand::Delete(DeleteTenant {})).unwrap_err();
        assert_eq!(e.code, RejectionCode::NotFound);
        let e = run(
            &mut s,
            TenantCommand::Create(CreateTenant {
                token_sha256: "plaintext-token".into(),
                nats_password_bcrypt: None,
                quota: Quota::default(),
            }),
        )
        .unwrap_err();
        assert!(e.message.contains("token_sha256"), "{e}");
        // What becomes a line of nats-server's configuration is checked strictly.
        for bad in [
            "plain",
            "$2b$04$abcdefghijklmnopqrstuuN5tTKWWYQIIbDoxkYIkjPkx5Di3qc\"}",
            "$2b$04$abcdefghijklmnopqrstuuN5tTKWWYQIIbDoxkYIkjPkx5Di3qcz",
            "$9z$04$abcdefghijklmnopqrstuuN5tTKWWYQIIbDoxkYIkjPkx5Di3qcz.",
        ] {
            let e = run(
                &mut s,
                TenantCommand::Create(CreateTenant {
                    token_sha256: token_hash("t"),
                    nats_password_bcrypt: Some(bad.into()),
                    quota: Quota::default(),
                }),
            )
            .unwrap_err();
            assert!(e.message.contains("nats_password_bcrypt"), "{bad}: {e}");
        }
        run(&mut s, create("t")).unwrap();
        let e = run(&mut s, create("t")).unwrap_err();
        assert_eq!(e.code, RejectionCode::AlreadyExists);
        let e = run(
            &mut s,
            TenantCommand::GrantTopic(TopicGrant {
                topic: "a b".into(),
            }),
        )
        .unwrap_err();
        assert!(e.message.contains("`a b`"), "{e}");
        let e = run(
            &mut s,
            TenantCommand::SetQuota(Quota {
                commands_per_second: 0,
                ..Quota::default()
            }),
        )
        .unwrap_err();
        assert!(e.message.contains("commands_per_second"), "{e}");
    }

    #[test]
    fn a_tenant_uses_its_namespace_and_its_grants_only() {
        let mut s = TenantState::default();
        run(&mut s, create("t")).unwrap();
        assert_eq!(s.topic_problem("alice", "alice.orders"), None);
        for other in [
            "bob.orders",
            "alice",
            "alice.",
            "aliceorders",
            "alice-x.orders",
            "orders",
        ] {
            let p = s.topic_problem("alice", other).expect(other);
            assert!(p.contains(&format!("`{other}`")), "{p}");
        }
        let grant = TenantCommand::GrantTopic(TopicGrant {
            topic: "shared.rates".into(),
        });
        assert_eq!(run(&mut s, grant.clone()).unwrap(), 1);
        assert_eq!(
            run(&mut s, grant).unwrap(),
            0,
            "granting twice changes nothing"
        );
        assert_eq!(s.topic_problem("alice", "shared.rates"), None);
        run(
            &mut s,
            TenantCommand::RevokeTopic(TopicGrant {
                topic: "shared.rates".into(),
            }),
        )
        .unwrap();
        assert!(s.topic_problem("alice", "shared.rates").is_some());
    }

    #[test]
    fn a_nats_sink_publishes_under_its_tenant_s_data_subjects_only() {
        assert_eq!(subject_problem("alice", "data.alice.alerts"), None);
        assert_eq!(subject_problem("alice", "data.alice.a.b"), None);
        for other in [
            "data.bob.alerts",
            "data.alice",
            "data.alice.",
            "data.alicex.alerts",
            "alice.alerts",
            "weir.cmd.alice.job.stop",
            "data",
        ] {
            let p = subject_problem("alice", other).expect(other);
            assert!(p.contains(&format!("`{other}`")), "{p}");
            assert!(p.contains("data.alice.<name>"), "{p}");
        }
    }

    #[test]
    fn a_tenant_created_again_after_deletion_starts_clean() {
        let mut s = TenantState::default();
        run(&mut s, create("t")).unwrap();
        run(
            &mut s,
            TenantCommand::GrantTopic(TopicGrant {
                topic: "shared.x".into(),
            }),
        )
        .unwrap();
        run(&mut s, TenantCommand::Delete(DeleteTenant {})).unwrap();
        run(&mut s, create("u")).unwrap();
        assert!(s.granted_topics.is_empty());
        assert!(s.accepts("u"));
    }
}
