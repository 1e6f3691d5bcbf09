//! What the HTTP API sends and accepts, shared by its handlers and by the
//! `weir` CLI, so that a renamed field is a compile error or a decode error,
//! never a silently blank column.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::job::state::Deployment;
use crate::domain::job::Phase;
use crate::domain::module::ModuleVersion;
use crate::domain::workflow::state::{Current, RunStatus, StepRecord};
use crate::store::StoredEvent;

pub use crate::domain::job::state::VersionInfo;
pub use crate::runtime::control::{CheckpointInfo, DeploymentStatus, TaskState, TaskStatus};

/// The body of every error response: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, for people: branch on the HTTP status, not on this text.
    pub error: String,
}

/// The body of `GET /readyz`: `ok` per dependency, or why it is not ready.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Readiness {
    /// `ok`, or the error PostgreSQL answered `SELECT 1` with.
    pub postgres: String,
    /// `ok`, or the NATS connection state (`pending`, `disconnected`).
    pub nats: String,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobView {
    pub tenant: String,
    pub name: String,
    /// Where the job's runtime is.
    pub phase: Phase,
    /// The job stream's version (for `expected_version`).
    pub stream_version: u64,
    /// The newest submitted version, if any.
    pub latest_version: Option<u32>,
    /// The version a rollback returns to: the last one marked stable.
    pub last_stable_version: Option<u32>,
    /// The newest deployment generation handed out.
    pub generation: u64,
    /// The deployment in force (or last in force).
    pub deployment: Option<Deployment>,
    /// Why the job last failed, if it did.
    pub last_failure: Option<String>,
    /// When the job stream last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Query of `…/jobs/{name}/events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Page {
    /// Return events with a position greater than this.
    #[serde(default)]
    pub after: i64,
    /// At most this many (1..=1000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Query of the tenant's job and module lists: a page by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct NamePage {
    /// Return those whose name sorts after this one (the last name of the
    /// page before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// At most this many (1..=1000, default 500). A page this full may have
    /// a next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl NamePage {
    /// The most a page holds.
    pub const MAX: usize = 1000;
    pub const DEFAULT: usize = 500;

    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(Self::DEFAULT).clamp(1, Self::MAX)
    }

    /// This page of `items` (in name order), named by `name`.
    pub fn of<T>(&self, items: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
        items
            .into_iter()
            .filter(|i| self.after.as_deref().is_none_or(|a| name(i) > a))
            .take(self.limit())
            .collect()
    }
}

/// A page of events.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventPage {
    /// In position order.
    pub events: Vec<StoredEvent>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// A run as the API shows it (the pinned definition text is left out of listings).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunView {
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The definition file the run was started from.
    pub file: String,
    /// SHA-256 of the definition text pinned at the start.
    pub definition_sha256: String,
    pub status: RunStatus,
    /// The job the run acts on, if any.
    pub job: Option<String>,
    /// The run's input.
    pub input: serde_json::Value,
    /// The step in progress, if any.
    pub current: Option<Current>,
    /// Why the run paused, failed or was aborted.
    pub reason: Option<String>,
    /// The outputs of a finished run.
    pub outputs: Option<serde_json::Value>,
    /// Each step that ran, by step name.
    pub steps: std::collections::BTreeMap<String, StepRecord>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One run with its history.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    /// The run stream's events, in order.
    pub events: Vec<StoredEvent>,
}

/// Query of `…/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RunFilter {
    /// Only runs of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Only runs still in progress (running or paused).
    #[serde(default)]
    pub active: bool,
    /// Only runs started before this time (the `started_at` of the last run
    /// of the page before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many (1..=1000, default 200). A page this full may have
    /// a next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl RunFilter {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(200).clamp(1, 1000)
    }
}

/// One module version as the API shows it: its number and the stored version,
/// whose fields appear beside it in the JSON.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct VersionView {
    /// The version label.
    pub version: String,
    #[serde(flatten)]
    pub module: ModuleVersion,
}

/// A module as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModuleView {
    pub tenant: String,
    pub name: String,
    /// The most recently uploaded version.
    pub latest: Option<String>,
    /// Every uploaded version, by label.
    pub versions: Vec<VersionView>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI decodes what the handlers encode: each DTO survives the trip.
    #[test]
    fn views_round_trip_through_json() {
        let at = chrono::Utc::now();
        let job = JobView {
            tenant: "acme".into(),
            name: "orders".into(),
            phase: Phase::Running,
            stream_version: 4,
            latest_version: Some(2),
            last_stable_version: None,
            generation: 3,
            deployment: None,
            last_failure: None,
            updated_at: at,
        };
        let back: JobView = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
        assert_eq!(back.latest_version, Some(2));
        assert_eq!(back.phase, Phase::Running);

        let run = RunDetail {
            run: RunView {
                run_id: "r1".into(),
                workflow: "deploy".into(),
                file: "deploy.yaml".into(),
                definition_sha256: "ab".into(),
                status: RunStatus::Paused,
                job: Some("orders".into()),
                input: serde_json::json!({"job": "orders"}),
                current: None,
                reason: Some("why".into()),
                outputs: None,
                steps: Default::default(),
                started_at: Some(at),
                updated_at: None,
            },
            events: vec![],
        };
        let back: RunDetail = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
        assert_eq!(back.run.status, RunStatus::Paused);
        assert_eq!(back.run.reason.as_deref(), Some("why"));
    }

    #[test]
    fn a_name_page_starts_after_its_cursor_and_holds_at_most_its_limit() {
        let names = || vec!["a", "b", "c", "d"];
        let page = |after: Option<&str>, limit: Option<usize>| NamePage {
            after: after.map(str::to_owned),
            limit,
        };
        assert_eq!(page(None, None).of(names(), |n| n), names());
        assert_eq!(page(None, Some(2)).of(names(), |n| n), ["a", "b"]);
        assert_eq!(page(Some("b"), Some(2)).of(names(), |n| n), ["c", "d"]);
        assert_eq!(page(Some("d"), None).of(names(), |n| n), Vec::<&str>::new());
        assert_eq!(page(None, Some(0)).limit(), 1);
        assert_eq!(page(None, Some(5000)).limit(), NamePage::MAX);
    }

    #[test]
    fn queries_leave_out_what_is_unset() {
        let q = serde_json::to_value(RunFilter {
            job: None,
            active: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q, serde_json::json!({"active": true}));
    }
}

/// What `GET …/jobs/{name}/autotune` answers.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AutotuneView {
    /// The policy of the deployed (else the latest) version, with the
    /// job's `job.set_autotune` mode over it.
    pub policy: Option<crate::domain::autotune::AutotunePolicy>,
    /// The mode set by `job.set_autotune`, if any.
    pub mode_override: Option<crate::domain::autotune::Mode>,
    /// The tuner's last decision (recorded in the history or not):
    /// `{decision, generation, record}`, the decision with its explanation.
    pub last: Option<serde_json::Value>,
    /// The newest `autotune_decided` events, newest first (at most 20).
    pub history: Vec<crate::store::StoredEvent>,
}

/// Query of `…/lineage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct LineageQuery {
    /// Only what is connected to this node (`topic:orders`, `table:alerts`,
    /// `subject:…`, `url:…`), transitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// With `node`: `upstream`, `downstream` or `both` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

/// One alert rule of the deployed version and where it stands.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RuleView {
    pub rule: crate::domain::alerts::AlertRule,
    /// Absent until the rule first fires.
    pub status: Option<crate::domain::job::state::AlertStatus>,
}

/// What `GET …/jobs/{name}/alerts` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobAlerts {
    /// The deployed version's rules (none if nothing is deployed).
    pub rules: Vec<RuleView>,
    /// The names of the alerts that fire (a rule a new version dropped
    /// fires until the next evaluation resolves it).
    pub firing: Vec<String>,
    /// The newest `alert_fired` / `alert_resolved` events, newest first (at most 50).
    pub history: Vec<crate::store::StoredEvent>,
}

/// One firing alert, as `GET /v1/tenants/{t}/alerts` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FiringAlert {
    pub job: String,
    pub rule: String,
    pub severity: crate::domain::alerts::Severity,
    /// Since when its condition held.
    pub since: chrono::DateTime<chrono::Utc>,
    pub message: String,
}

/// A tenant as an admin sees it (`GET /v1/admin/tenants…`). Its token is
/// never shown, nor its hash.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TenantView {
    pub name: String,
    /// False once deleted: its token no longer works.
    pub active: bool,
    pub quota: crate::domain::tenant::Quota,
    pub usage: TenantUsage,
    /// Topics outside `<name>.` its jobs may use.
    pub granted_topics: Vec<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a tenant's quota counts now.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TenantUsage {
    /// Jobs that are not deleted.
    pub jobs: u32,
    /// Tasks of the jobs that hold a deployment (deploying, running, stopping).
    pub tasks: u32,
    /// Bytes of every module version uploaded.
    pub module_bytes: u64,
}

pub use crate::runtime::topics::{PartitionRange, TopicRecord};

/// The query of `PUT /v1/tenants/{t}/topics/{topic}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TopicCreateQuery {
    /// Partitions (1-64); 1 if absent.
    pub partitions: Option<i32>,
    /// Records older than this many milliseconds are deleted by the broker
    /// (1 minute to 365 days); 7 days if absent.
    pub retention_ms: Option<u64>,
}

impl TopicCreateQuery {
    /// The partitions and retention, or why they are refused.
    pub fn checked(&self) -> Result<(i32, std::time::Duration), String> {
        let partitions = self.partitions.unwrap_or(1);
        if !(1..=64).contains(&partitions) {
            return Err(format!("partitions: {partitions} is not within 1-64"));
        }
        let ms = self.retention_ms.unwrap_or(7 * 24 * 3_600_000);
        if !(60_000..=365 * 24 * 3_600_000).contains(&ms) {
            return Err(format!(
                "retention_ms: {ms} is not within 60000 (1 minute) and 31536000000 (365 days)"
            ));
        }
        Ok((partitions, std::time::Duration::from_millis(ms)))
    }
}

/// The answer to a topic create.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TopicCreated {
    pub topic: String,
    /// False if the topic existed already (it is left as it was).
    pub created: bool,
}

/// A topic and its partitions' offsets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TopicView {
    pub topic: String,
    pub partitions: Vec<PartitionRange>,
}

/// The query of `POST …/topics/{topic}/records`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ProduceQuery {
    /// Key each record by this top-level field of its line, read as JSON.
    pub key_field: Option<String>,
}

/// The answer to a produce: how many records the broker acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Produced {
    pub produced: usize,
}

/// The query of `GET …/topics/{topic}/records`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReadQuery {
    pub partition: i32,
    /// The first offset to read (the partition's start if older); 0 if absent.
    pub offset: Option<i64>,
    /// At most this many records (up to 1000); 100 if absent.
    pub limit: Option<usize>,
    /// Wait up to this long (ms, up to 10000) for records when none are
    /// there yet; 0 if absent.
    pub wait_ms: Option<u64>,
}

/// A page of one partition's records.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RecordsPage {
    pub records: Vec<TopicRecord>,
    /// Where the next page starts.
    pub next_offset: i64,
}
