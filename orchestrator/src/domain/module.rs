//! The module aggregate: a named UDF with immutable, content-addressed
//! versions. Pure: `decide` and `apply`, no I/O.
//!
//! The bytes live in the tenant's object store bucket; the event records what
//! the uploader validated (digest, size, interface, kind). Workers verify the
//! digest of the bytes they download against the event before loading them,
//! so the handler can stay pure and still never run unverified code.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::aggregate::{Aggregate, DecideContext};
use super::rejection::{Rejection, RejectionCode};

/// The WIT interface a module must export, by package version.
pub const SUPPORTED_INTERFACES: &[&str] = &["weir:udf/guest@0.1.0"];

// The one definition, read by module uploads, job specs, the WASM host and
// the runtime. Its serde names are in stored events and specs: never rename them.
/// The shape of a UDF: what it does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UdfKind {
    /// One output per record.
    Map,
    /// The record or nothing.
    Filter,
    /// Any number of outputs per record.
    FlatMap,
    /// Any number of outputs, with keyed state and timers.
    Process,
}

/// A module command, tagged by `kind` with its `payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "payload", deny_unknown_fields)]
pub enum ModuleCommand {
    /// Record a validated upload. Sent by `weir udf upload` after the bytes
    /// are stored in the tenant's object store bucket.
    #[serde(rename = "module.register")]
    Register(RegisterModule),
}

impl ModuleCommand {
    pub const KINDS: [&'static str; 1] = ["module.register"];

    pub fn kind(&self) -> &'static str {
        match self {
            ModuleCommand::Register(_) => "module.register",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterModule {
    /// The version label, e.g. `1.2.0` (`[A-Za-z0-9._-]`, at most 64 bytes).
    pub version: String,
    /// `sha256:<64 hex>` of the component bytes.
    pub digest: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// The WIT interface the component exports, e.g. `weir:udf/guest@0.1.0`.
    pub interface: String,
    pub module_kind: UdfKind,
    /// The SDK that built it, as the module reports.
    #[serde(default)]
    pub sdk_version: String,
}

/// A module event, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModuleEvent {
    ModuleUploaded {
        version: String,
        digest: String,
        size: u64,
        interface: String,
        module_kind: UdfKind,
        #[serde(default)]
        sdk_version: String,
        uploader: String,
        at: DateTime<Utc>,
    },
}

impl ModuleEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            ModuleEvent::ModuleUploaded { .. } => "module_uploaded",
        }
    }
}

/// One immutable version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModuleVersion {
    pub digest: String,
    pub size: u64,
    pub interface: String,
    pub module_kind: UdfKind,
    pub sdk_version: String,
    pub uploader: String,
    pub uploaded_at: DateTime<Utc>,
}

/// The folded state of a module stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleState {
    pub versions: BTreeMap<String, ModuleVersion>,
    /// The most recently uploaded version.
    pub latest: Option<String>,
}

fn reject(code: RejectionCode, msg: impl Into<String>) -> Rejection {
    Rejection::new(code, msg)
}

fn check_version(v: &str) -> Result<(), Rejection> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        && v.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(reject(
            RejectionCode::InvalidCommand,
            format!("version `{}` is invalid: use 1-64 of A-Z a-z 0-9 . - _, starting with a letter or digit", v.chars().take(80).collect::<String>()),
        ))
    }
}

fn check_digest(d: &str) -> Result<(), Rejection> {
    match d.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(())
        }
        _ => Err(reject(
            RejectionCode::InvalidCommand,
            format!("digest `{d}` is invalid: expected sha256:<64 lowercase hex digits>"),
        )),
    }
}

/// Decides a module command.
pub fn decide(
    state: &ModuleState,
    cmd: &ModuleCommand,
    ctx: &DecideContext<'_>,
) -> Result<Vec<ModuleEvent>, Rejection> {
    match cmd {
        ModuleCommand::Register(r) => {
            check_version(&r.version)?;
            check_digest(&r.digest)?;
            if r.size == 0 {
                return Err(reject(
                    RejectionCode::InvalidCommand,
                    "size must be positive",
                ));
            }
            if !SUPPORTED_INTERFACES.contains(&r.interface.as_str()) {
                return Err(reject(
                    RejectionCode::InvalidCommand,
                    format!(
                        "interface `{}` is not supported; supported: {}",
                        r.interface,
                        SUPPORTED_INTERFACES.join(", ")
                    ),
                ));
            }
            if let Some(existing) = state.versions.get(&r.version) {
                if existing.digest == r.digest {
                    // The same bytes again: accepted, nothing changes.
                    return Ok(Vec::new());
                }
                return Err(reject(
                    RejectionCode::AlreadyExists,
                    format!(
                        "module `{}` version `{}` already exists with digest {}; versions are immutable, upload these bytes ({}) as a new version",
                        ctx.target, r.version, existing.digest, r.digest
                    ),
                ));
            }
            Ok(vec![ModuleEvent::ModuleUploaded {
                version: r.version.clone(),
                digest: r.digest.clone(),
                size: r.size,
                interface: r.interface.clone(),
                module_kind: r.module_kind,
                sdk_version: r.sdk_version.clone(),
                uploader: ctx.actor.to_owned(),
                at: ctx.now,
            }])
        }
    }
}

impl ModuleState {
    pub fn apply(&mut self, e: &ModuleEvent) {
        match e {
            ModuleEvent::ModuleUploaded {
                version,
                digest,
                size,
                interface,
                module_kind,
                sdk_version,
                uploader,
                at,
            } => {
                self.versions.insert(
                    version.clone(),
                    ModuleVersion {
                        digest: digest.clone(),
                        size: *size,
                        interface: interface.clone(),
                        module_kind: *module_kind,
                        sdk_version: sdk_version.clone(),
                        uploader: uploader.clone(),
                        uploaded_at: *at,
                    },
                );
                self.latest = Some(version.clone());
            }
        }
    }
}

impl Aggregate for ModuleState {
    type Command = ModuleCommand;
    type Event = ModuleEvent;
    const STREAM_KIND: &'static str = "module";

    fn decide(
        &self,
        cmd: &ModuleCommand,
        ctx: &DecideContext<'_>,
    ) -> Result<Vec<ModuleEvent>, Rejection> {
        decide(self, cmd, ctx)
    }

    fn apply(&mut self, event: &ModuleEvent) {
        ModuleState::apply(self, event)
    }

    fn event_type(event: &ModuleEvent) -> &'static str {
        event.type_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> DecideContext<'static> {
        DecideContext {
            target: "upper",
            actor: "alice",
            now: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        }
    }

    fn register(version: &str, digest_char: char) -> ModuleCommand {
        ModuleCommand::Register(RegisterModule {
            version: version.into(),
            digest: format!("sha256:{}", digest_char.to_string().repeat(64)),
            size: 1234,
            interface: "weir:udf/guest@0.1.0".into(),
            module_kind: UdfKind::Map,
            sdk_version: "0.1.0".into(),
        })
    }

    fn fold(cmds: &[ModuleCommand]) -> Result<ModuleState, Rejection> {
        let mut s = ModuleState::default();
        for c in cmds {
            for e in decide(&s, c, &ctx())? {
                s.apply(&e);
            }
        }
        Ok(s)
    }

    #[test]
    fn upload_records_who_and_what() {
        let s = ModuleState::default();
        let events = decide(&s, &register("1.0", 'a'), &ctx()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].type_name(), "module_uploaded");
        let s = fold(&[register("1.0", 'a'), register("2.0", 'b')]).unwrap();
        assert_eq!(s.versions["1.0"].uploader, "alice");
        assert_eq!(s.latest.as_deref(), Some("2.0"));
    }

    #[test]
    fn identical_reupload_is_a_no_op_and_different_bytes_are_refused() {
        let s = fold(&[register("1.0", 'a')]).unwrap();
        assert_eq!(decide(&s, &register("1.0", 'a'), &ctx()).unwrap(), vec![]);
        let r = decide(&s, &register("1.0", 'b'), &ctx()).unwrap_err();
        assert_eq!(r.code, RejectionCode::AlreadyExists);
        assert!(
            r.message.contains("versions are immutable"),
            "{}",
            r.message
        );
    }

    #[test]
    fn malformed_registrations_are_refused_with_the_field() {
        let s = ModuleState::default();
        let bad_version = decide(&s, &register("1 0", 'a'), &ctx()).unwrap_err();
        assert!(
            bad_version.message.starts_with("version"),
            "{}",
            bad_version.message
        );
        let mut r = register("1", 'a');
        let ModuleCommand::Register(ref mut reg) = r;
        reg.digest = "md5:abc".into();
        assert!(decide(&s, &r, &ctx())
            .unwrap_err()
            .message
            .starts_with("digest"));
        let ModuleCommand::Register(ref mut reg) = r;
        reg.digest = format!("sha256:{}", "a".repeat(64));
        reg.interface = "weir:udf/guest@9.0.0".into();
        assert!(decide(&s, &r, &ctx())
            .unwrap_err()
            .message
            .contains("not supported"));
    }
}
