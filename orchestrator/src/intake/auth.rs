//! Who sent a command, and whether they may: the token in the message's
//! `Authorization: Bearer …` header names the identity (the admin, or one
//! tenant), never the envelope. Then the tenant's quota: commands per second,
//! jobs, module bytes.
//!
//! The decisions ([`identify`], [`authorize`], [`TokenBucket`],
//! [`check_usage`]) are pure; [`Gate::admit`] only loads the tenants a batch
//! names and what their quotas count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use crate::domain::envelope::{ParsedCommand, Unparsed};
use crate::domain::job::{JobCommand, JobState, Phase};
use crate::domain::module::{ModuleCommand, ModuleState};
use crate::domain::tenant::{token_hash, Quota, TenantCommand, TenantState};
use crate::domain::{Aggregate, Command, Rejection, RejectionCode, StreamId};
use crate::store::{self, EventStore, StoreError, StreamKey};

/// How commands are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `weir serve --insecure-dev`: no token is asked for, the envelope's
    /// tenant and actor are believed, no quota applies.
    InsecureDev,
    /// Every command carries a token: the admin's (this hash) or its tenant's.
    Tokens { admin_sha256: String },
}

impl Access {
    pub fn tokens(admin_token: &str) -> Self {
        Access::Tokens {
            admin_sha256: token_hash(admin_token),
        }
    }
}

/// Who a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Admin,
    Tenant(String),
}

impl Identity {
    /// Recorded as the command's actor, with the actor the sender claims:
    /// `ops@admin`, `bob@alice`.
    pub fn actor(&self, claimed: &str) -> String {
        match self {
            Identity::Admin => format!("{claimed}@admin"),
            Identity::Tenant(t) => format!("{claimed}@{t}"),
        }
    }
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whose token `token` is, for a message addressed to `tenant` (whose state is `state`).
pub fn identify(
    admin_sha256: &str,
    token: Option<&str>,
    tenant: &str,
    state: &TenantState,
) -> Result<Identity, Rejection> {
    let Some(token) = token else {
        return Err(Rejection::new(
            RejectionCode::Unauthorized,
            "no token: send the tenant's token as `Authorization: Bearer <token>` (the weir CLI reads WEIR_TOKEN)",
        ));
    };
    if token_hash(token) == admin_sha256 {
        return Ok(Identity::Admin);
    }
    if state.accepts(token) {
        return Ok(Identity::Tenant(tenant.to_owned()));
    }
    Err(Rejection::new(
        RejectionCode::Unauthorized,
        format!("the token is not valid for tenant `{tenant}`"),
    ))
}

/// Whether `identity` may send `cmd` to a tenant in `state`.
pub fn authorize(identity: &Identity, cmd: &Command, state: &TenantState) -> Result<(), Rejection> {
    if cmd.is_admin() && *identity != Identity::Admin {
        return Err(Rejection::new(
            RejectionCode::Forbidden,
            format!(
                "`{}` is an admin command; a tenant's token may not send it",
                cmd.kind()
            ),
        ));
    }
    if !cmd.is_admin() && !state.active {
        return Err(Rejection::new(
            RejectionCode::NotFound,
            "the tenant does not exist: an admin creates it with `weir tenant create`",
        ));
    }
    Ok(())
}

/// A token bucket: `rate` tokens a second, at most `rate` held.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub fn full(rate: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(rate),
            at: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate);
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a tenant's quota counts, before a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Jobs that are not deleted (or, while the quota is far, all jobs: an
    /// upper bound that an index answers).
    pub jobs: u32,
    pub module_bytes: u64,
    /// The tenant's jobs by name, as their streams have them: those that
    /// hold a deployment, and the targets of the batch's deploys.
    pub states: BTreeMap<String, JobState>,
    /// Which of the above were read, so a batch reads each at most once and
    /// only what its commands need.
    pub loaded: Loaded,
}

/// The parts of a [`Usage`] read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub jobs: bool,
    pub modules: bool,
    pub deployed: bool,
}

impl Usage {
    /// Tasks of the tenant's jobs that hold a deployment (deploying,
    /// running, stopping), leaving out `except`.
    pub fn tasks(&self, except: &str) -> u32 {
        self.states
            .iter()
            .filter(|(name, _)| name.as_str() != except)
            .filter_map(|(_, s)| tasks_of(s))
            .sum()
    }
}

/// The tasks a job's deployment holds, if it holds one.
fn tasks_of(s: &JobState) -> Option<u32> {
    match s.phase {
        Phase::Deploying | Phase::Running | Phase::Stopping => {
            s.deployment.as_ref().map(|d| d.parallelism)
        }
        _ => None,
    }
}

/// The parallelism `cmd` would give job `target`, for the commands that
/// start or resize a deployment.
fn wanted_tasks(cmd: &JobCommand, state: Option<&JobState>) -> Option<u32> {
    match cmd {
        JobCommand::Deploy(d) => d.parallelism.or_else(|| {
            let state = state?;
            let version = d.version.or_else(|| state.latest_version())?;
            let spec = &state.version(version)?.spec;
            Some(
                spec.get("parallelism")
                    .and_then(serde_json::Value::as_u64)
                    .map_or(1, |p| u32::try_from(p).unwrap_or(u32::MAX)),
            )
        }),
        JobCommand::Rescale(r) => Some(r.parallelism),
        JobCommand::Restore(_) | JobCommand::Rollback(_) => {
            state?.deployment.as_ref().map(|d| d.parallelism)
        }
        _ => None,
    }
}

/// Refuses `cmd` (for job `target`) if it would take the tenant past
/// `quota`; otherwise counts it into `usage`, so later commands of the same
/// batch see it.
pub fn check_usage(
    cmd: &Command,
    target: &str,
    quota: &Quota,
    usage: &mut Usage,
) -> Result<(), Rejection> {
    if let Command::Job(job) = cmd {
        if let Some(wanted) = wanted_tasks(job, usage.states.get(target)) {
            let others = usage.tasks(target);
            let total = others.saturating_add(wanted);
            if total > quota.max_parallelism {
                return Err(Rejection::new(
                    RejectionCode::QuotaExceeded,
                    format!(
                        "{} with parallelism {wanted} would bring the tenant's tasks to {total} \
                         ({others} in its other jobs), over its quota's max_parallelism ({})",
                        job.kind(),
                        quota.max_parallelism
                    ),
                ));
            }
            let state = usage.states.entry(target.to_owned()).or_default();
            state.phase = Phase::Deploying;
            match &mut state.deployment {
                Some(d) => d.parallelism = wanted,
                None => {
                    state.deployment = Some(crate::domain::job::state::Deployment {
                        version: 0,
                        parallelism: wanted,
                        generation: 0,
                        cause: crate::domain::job::DeployCause::Deploy,
                        checkpoint: None,
                    })
                }
            }
        }
    }
    match cmd {
        Command::Job(JobCommand::Create(_)) => {
            if usage.jobs >= quota.max_jobs {
                return Err(Rejection::new(
                    RejectionCode::QuotaExceeded,
                    format!(
                        "the tenant has {} jobs, its quota's max_jobs; delete one first",
                        usage.jobs
                    ),
                ));
            }
            usage.jobs += 1;
        }
        Command::Module(ModuleCommand::Register(r)) => {
            let after = usage.module_bytes.saturating_add(r.size);
            if after > quota.max_module_bytes {
                return Err(Rejection::new(
                    RejectionCode::QuotaExceeded,
                    format!(
                        "this module ({} bytes) would bring the tenant's modules to {after} bytes, over its quota's max_module_bytes ({})",
                        r.size, quota.max_module_bytes
                    ),
                ));
            }
            usage.module_bytes = after;
        }
        _ => {}
    }
    Ok(())
}

/// Why tenant `tenant` may not be deleted yet, if it may not: its jobs
/// would run on with nobody able to stop them (a deleted tenant takes no
/// command but `tenant.create`).
pub fn delete_problem(tenant: &str, usage: &Usage) -> Option<Rejection> {
    (usage.jobs > 0).then(|| {
        Rejection::new(
            RejectionCode::InvalidTransition,
            format!(
                "tenant `{tenant}` still has {} jobs; stop and delete them first",
                usage.jobs
            ),
        )
    })
}

/// Admits commands: authentication, authorization, rate and quotas.
pub struct Gate {
    access: Access,
    buckets: Mutex<HashMap<String, TokenBucket>>,
    /// Each tenant's job streams as this replica last counted them, plus
    /// the creates it admitted since: an upper bound of its jobs that spares
    /// most `job.create` batches a count of the index.
    job_streams: Mutex<HashMap<String, JobStreams>>,
}

/// A tenant's job streams (deleted jobs included), counted at `read_at`.
struct JobStreams {
    count: u64,
    read_at: Instant,
}

/// How long a replica trusts its count of a tenant's job streams. Other
/// replicas' creates are unseen for this long, as they are within a batch;
/// near the quota the count is exact whatever the age.
const JOB_COUNT_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// One message on its way in: its parse result and its token.
pub struct Arrival {
    pub parsed: Result<ParsedCommand, Unparsed>,
    pub token: Option<String>,
}

impl Gate {
    pub fn new(access: Access) -> Self {
        Self {
            access,
            buckets: Mutex::new(HashMap::new()),
            job_streams: Mutex::new(HashMap::new()),
        }
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Each arrival's command, with the authenticated actor, or why it is refused.
    pub async fn admit<S: EventStore>(
        &self,
        store: &S,
        arrivals: &[Arrival],
        now: Instant,
    ) -> Result<Vec<Result<ParsedCommand, Unparsed>>, StoreError> {
        let Access::Tokens { admin_sha256 } = &self.access else {
            return Ok(arrivals.iter().map(|a| a.parsed.clone()).collect());
        };
        let mut tenants: Vec<String> = arrivals
            .iter()
            .filter_map(|a| a.parsed.as_ref().ok().map(|c| c.tenant.to_string()))
            .collect();
        tenants.sort();
        tenants.dedup();
        let states = load_tenants(store, &tenants).await?;
        // The jobs whose deploys need their specs, per tenant.
        let mut targets: HashMap<String, Vec<String>> = HashMap::new();
        for c in arrivals.iter().filter_map(|a| a.parsed.as_ref().ok()) {
            if let Command::Job(
                JobCommand::Deploy(_) | JobCommand::Restore(_) | JobCommand::Rollback(_),
            ) = c.command
            {
                targets
                    .entry(c.tenant.to_string())
                    .or_default()
                    .push(c.target.clone());
            }
        }
        // How many jobs each tenant's commands in the batch create.
        let mut creates: HashMap<String, u64> = HashMap::new();
        for c in arrivals.iter().filter_map(|a| a.parsed.as_ref().ok()) {
            if let Command::Job(JobCommand::Create(_)) = c.command {
                *creates.entry(c.tenant.to_string()).or_default() += 1;
            }
        }
        let mut usage: HashMap<String, Usage> = HashMap::new();
        let mut out = Vec::with_capacity(arrivals.len());
        for a in arrivals {
            let mut c = match &a.parsed {
                Ok(c) => c.clone(),
                Err(e) => {
                    out.push(Err(e.clone()));
                    continue;
                }
            };
            let tenant = c.tenant.to_string();
            let state = states.get(&tenant).cloned().unwrap_or_default();
            let refuse = |rejection| Unparsed {
                id: Some(c.id),
                rejection,
            };
            let identity = match identify(admin_sha256, a.token.as_deref(), &tenant, &state)
                .and_then(|i| authorize(&i, &c.command, &state).map(|()| i))
            {
                Ok(i) => i,
                Err(r) => {
                    out.push(Err(refuse(r)));
                    continue;
                }
            };
            if matches!(c.command, Command::Tenant(TenantCommand::Delete(_))) {
                let u = usage.entry(tenant.clone()).or_default();
                // Exact: only deleted jobs may be left.
                u.jobs = exact_jobs(store, &tenant).await?;
                u.loaded.jobs = false;
                if let Some(r) = delete_problem(&tenant, u) {
                    out.push(Err(refuse(r)));
                    continue;
                }
            }
            if let Identity::Tenant(_) = identity {
                if !self.take(&tenant, state.quota.commands_per_second, now) {
                    out.push(Err(refuse(Rejection::new(
                        RejectionCode::QuotaExceeded,
                        format!(
                            "more than {} commands a second (the tenant's quota's commands_per_second)",
                            state.quota.commands_per_second
                        ),
                    ))));
                    continue;
                }
                if counts_usage(&c.command) {
                    let u = usage.entry(tenant.clone()).or_default();
                    let t = targets.get(&tenant).map_or(&[][..], Vec::as_slice);
                    if let Command::Job(JobCommand::Create(_)) = c.command {
                        let creates = creates.get(&tenant).copied().unwrap_or(0);
                        self.count_jobs(store, &tenant, &state.quota, creates, now, u)
                            .await?;
                    } else {
                        fill(store, &tenant, &c.command, t, u).await?;
                    }
                }
                if let Some(u) = usage.get_mut(&tenant) {
                    if let Err(r) = check_usage(&c.command, &c.target, &state.quota, u) {
                        out.push(Err(refuse(r)));
                        continue;
                    }
                }
            }
            c.actor = identity.actor(&c.actor);
            if let Command::Job(JobCommand::Create(_)) = c.command {
                if let Some(j) = self.job_streams().get_mut(&tenant) {
                    j.count += 1;
                }
            }
            out.push(Ok(c));
        }
        Ok(out)
    }

    fn job_streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobStreams>> {
        self.job_streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads into `usage` the tenant's jobs, once per batch: the streams as
    /// counted within [`JOB_COUNT_FRESH`] (from the index, deleted jobs
    /// included) while this batch's `creates` cannot reach the quota, and an
    /// exact count (reading snapshots) only near it.
    async fn count_jobs<S: EventStore>(
        &self,
        store: &S,
        tenant: &str,
        quota: &Quota,
        creates: u64,
        now: Instant,
        usage: &mut Usage,
    ) -> Result<(), StoreError> {
        if usage.loaded.jobs {
            return Ok(());
        }
        let fresh = self
            .job_streams()
            .get(tenant)
            .filter(|j| now.saturating_duration_since(j.read_at) < JOB_COUNT_FRESH)
            .map(|j| j.count);
        let all = match fresh {
            Some(n) => n,
            None => {
                let n = store.count_streams(tenant, JobState::STREAM_KIND).await?;
                self.job_streams().insert(
                    tenant.to_owned(),
                    JobStreams {
                        count: n,
                        read_at: now,
                    },
                );
                n
            }
        };
        usage.jobs = if all + creates < u64::from(quota.max_jobs) {
            u32::try_from(all).unwrap_or(u32::MAX)
        } else {
            exact_jobs(store, tenant).await?
        };
        usage.loaded.jobs = true;
        Ok(())
    }

    fn take(&self, tenant: &str, rate: u32, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets
            .entry(tenant.to_owned())
            .or_insert_with(|| TokenBucket::full(rate, now))
            .take(rate, now)
    }
}

/// `tenant`'s jobs that are not deleted, read from their snapshots.
async fn exact_jobs<S: EventStore>(store: &S, tenant: &str) -> Result<u32, StoreError> {
    let n = store
        .count_streams_not_in_phase(tenant, JobState::STREAM_KIND, Phase::Deleted.name())
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn counts_usage(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Job(
            JobCommand::Create(_)
                | JobCommand::Deploy(_)
                | JobCommand::Rescale(_)
                | JobCommand::Restore(_)
                | JobCommand::Rollback(_)
        ) | Command::Module(ModuleCommand::Register(_))
    )
}

/// One tenant's state (the default, not active, if it was never created).
pub async fn load_tenant<S: EventStore>(
    store: &S,
    tenant: &str,
) -> Result<TenantState, StoreError> {
    let mut states = load_tenants(store, std::slice::from_ref(&tenant.to_owned())).await?;
    Ok(states.remove(tenant).unwrap_or_default())
}

/// The tenant states of `tenants` (absent ones are the default: not active).
pub async fn load_tenants<S: EventStore>(
    store: &S,
    tenants: &[String],
) -> Result<HashMap<String, TenantState>, StoreError> {
    let keys: Vec<StreamKey> = tenants
        .iter()
        .map(|t| (t.clone(), StreamId::new(TenantState::STREAM_KIND, t)))
        .collect();
    let loaded = store.load_streams(&keys).await?;
    let mut out = HashMap::with_capacity(keys.len());
    for key in keys {
        let st = loaded.get(&key).cloned().unwrap_or_default();
        let state: TenantState = store::restore(store, &key, &st).await?;
        out.insert(key.0, state);
    }
    Ok(out)
}

/// Reads into `usage` what the quota needs to judge `cmd` (other than a
/// job count, [`Gate::count_jobs`]), once per batch.
async fn fill<S: EventStore>(
    store: &S,
    tenant: &str,
    cmd: &Command,
    targets: &[String],
    usage: &mut Usage,
) -> Result<(), StoreError> {
    match cmd {
        Command::Module(ModuleCommand::Register(_)) if !usage.loaded.modules => {
            usage.module_bytes = module_bytes(store, tenant).await?;
            usage.loaded.modules = true;
        }
        Command::Job(_) if wanted_tasks_kind(cmd) && !usage.loaded.deployed => {
            deployed_states(store, tenant, targets, &mut usage.states).await?;
            usage.loaded.deployed = true;
        }
        _ => {}
    }
    Ok(())
}

fn wanted_tasks_kind(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Job(
            JobCommand::Deploy(_)
                | JobCommand::Rescale(_)
                | JobCommand::Restore(_)
                | JobCommand::Rollback(_)
        )
    )
}

async fn module_bytes<S: EventStore>(store: &S, tenant: &str) -> Result<u64, StoreError> {
    let modules = store.list_streams(tenant, ModuleState::STREAM_KIND).await?;
    Ok(modules
        .into_iter()
        .filter_map(|m| {
            m.snapshot
                .and_then(|s| serde_json::from_value::<ModuleState>(s).ok())
        })
        .map(|state| state.versions.values().map(|v| v.size).sum::<u64>())
        .sum())
}

/// The states of `tenant`'s jobs that hold a deployment, and of `targets`.
async fn deployed_states<S: EventStore>(
    store: &S,
    tenant: &str,
    targets: &[String],
    states: &mut BTreeMap<String, JobState>,
) -> Result<(), StoreError> {
    let deployed = store
        .streams_in_phases(
            tenant,
            JobState::STREAM_KIND,
            &[
                Phase::Deploying.name(),
                Phase::Running.name(),
                Phase::Stopping.name(),
            ],
        )
        .await?;
    for j in deployed {
        if let Some(state) = j
            .snapshot
            .and_then(|s| serde_json::from_value::<JobState>(s).ok())
        {
            let name = j.stream.strip_prefix("job.").unwrap_or(&j.stream);
            states.insert(name.to_owned(), state);
        }
    }
    let keys: Vec<StreamKey> = targets
        .iter()
        .filter(|t| !states.contains_key(*t))
        .map(|t| (tenant.to_owned(), StreamId::new(JobState::STREAM_KIND, t)))
        .collect();
    if !keys.is_empty() {
        let loaded = store.load_streams(&keys).await?;
        for key in keys {
            let st = loaded.get(&key).cloned().unwrap_or_default();
            let state: JobState = store::restore(store, &key, &st).await?;
            let name = key
                .1
                .as_str()
                .strip_prefix("job.")
                .unwrap_or(key.1.as_str());
            states.insert(name.to_owned(), state);
        }
    }
    Ok(())
}

/// Everything `tenant`'s quota counts now, exactly (for `weir tenant show`).
pub async fn tenant_usage<S: EventStore>(store: &S, tenant: &str) -> Result<Usage, StoreError> {
    let mut usage = Usage {
        jobs: u32::try_from(
            store
                .count_streams_not_in_phase(tenant, JobState::STREAM_KIND, Phase::Deleted.name())
                .await?,
        )
        .unwrap_or(u32::MAX),
        module_bytes: module_bytes(store, tenant).await?,
        ..Usage::default()
    };
    deployed_states(store, tenant, &[], &mut usage.states).await?;
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::tenant::{self, CreateTenant, TenantCommand};
    use crate::domain::DecideContext;

    fn alice(token: &str) -> TenantState {
        let mut s = TenantState::default();
        let ctx = DecideContext {
            target: "alice",
            actor: "admin",
            now: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
        };
        let cmd = TenantCommand::Create(CreateTenant {
            token_sha256: token_hash(token),
            nats_password_bcrypt: None,
            quota: Quota::default(),
        });
        for e in tenant::decide(&s, &cmd, &ctx).unwrap() {
            tenant::apply(&mut s, &e);
        }
        s
    }

    #[test]
    fn the_token_names_the_identity_never_the_envelope() {
        let admin = token_hash("root-secret");
        let a = alice("alice-secret");
        assert_eq!(
            identify(&admin, Some("alice-secret"), "alice", &a),
            Ok(Identity::Tenant("alice".into()))
        );
        assert_eq!(
            identify(&admin, Some("root-secret"), "alice", &a),
            Ok(Identity::Admin)
        );
        let no = identify(&admin, None, "alice", &a).unwrap_err();
        assert_eq!(no.code, RejectionCode::Unauthorized);
        // Mallory's valid token is not valid for alice.
        let forged = identify(&admin, Some("mallory-secret"), "alice", &a).unwrap_err();
        assert!(
            forged.message.contains("not valid for tenant `alice`"),
            "{forged}"
        );
        // A tenant that was never created accepts no token but the admin's.
        assert!(identify(&admin, Some(""), "ghost", &TenantState::default()).is_err());
    }

    #[test]
    fn tenant_commands_need_the_admin_and_other_commands_a_live_tenant() {
        let a = alice("x");
        let create = Command::parse(
            "tenant.create",
            serde_json::json!({ "token_sha256": token_hash("y") }),
        )
        .unwrap();
        let job = Command::parse("job.delete", serde_json::json!({})).unwrap();
        let e = authorize(&Identity::Tenant("alice".into()), &create, &a).unwrap_err();
        assert_eq!(e.code, RejectionCode::Forbidden);
        assert!(authorize(&Identity::Admin, &create, &TenantState::default()).is_ok());
        assert!(authorize(&Identity::Tenant("alice".into()), &job, &a).is_ok());
        let e = authorize(&Identity::Admin, &job, &TenantState::default()).unwrap_err();
        assert_eq!(e.code, RejectionCode::NotFound);
    }

    #[test]
    fn the_bucket_allows_the_rate_and_refills_with_time() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(3, t0);
        assert!((0..3).all(|_| b.take(3, t0)));
        assert!(!b.take(3, t0), "a fourth within the same instant");
        assert!(!b.take(3, t0 + Duration::from_millis(300)));
        assert!(
            b.take(3, t0 + Duration::from_millis(700)),
            "refilled at 3/s"
        );
        // Never more than one second's worth is saved up.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.take(3, later)));
        assert!(!b.take(3, later));
    }

    #[test]
    fn quotas_count_jobs_and_module_bytes_within_a_batch() {
        let quota = Quota {
            max_jobs: 2,
            max_module_bytes: 100,
            ..Quota::default()
        };
        let mut usage = Usage {
            jobs: 1,
            module_bytes: 60,
            ..Usage::default()
        };
        let create = Command::parse("job.create", serde_json::json!({ "spec": {} })).unwrap();
        assert!(check_usage(&create, "j", &quota, &mut usage).is_ok());
        let e = check_usage(&create, "j", &quota, &mut usage).unwrap_err();
        assert_eq!(e.code, RejectionCode::QuotaExceeded);
        let module = |size: u64| {
            Command::parse(
                "module.register",
                serde_json::json!({
                    "version": "1", "digest": format!("sha256:{}", "0".repeat(64)), "size": size,
                    "interface": "weir:udf/guest@0.1.0", "module_kind": "map"
                }),
            )
            .unwrap()
        };
        assert!(check_usage(&module(40), "m", &quota, &mut usage).is_ok());
        let e = check_usage(&module(1), "m", &quota, &mut usage).unwrap_err();
        assert!(e.message.contains("101 bytes"), "{e}");
    }

    #[test]
    fn the_parallelism_quota_counts_the_other_jobs_deployments() {
        let quota = Quota {
            max_parallelism: 10,
            ..Quota::default()
        };
        let job = |phase: Phase, parallelism: u32| JobState {
            phase,
            deployment: Some(crate::domain::job::state::Deployment {
                version: 1,
                parallelism,
                generation: 1,
                cause: crate::domain::job::DeployCause::Deploy,
                checkpoint: None,
            }),
            ..JobState::default()
        };
        let mut usage = Usage::default();
        usage.states.insert("a".into(), job(Phase::Running, 4));
        usage.states.insert("b".into(), job(Phase::Stopped, 8));
        usage.states.insert("c".into(), job(Phase::Running, 2));
        let cmd = |kind: &str, payload: serde_json::Value| Command::parse(kind, payload).unwrap();
        // a (4) and c (2) hold 6; b is stopped and holds none.
        assert_eq!(usage.tasks(""), 6);
        // Rescaling c to 6 leaves 4 + 6 = 10: allowed, and counted.
        let ok = cmd("job.rescale", serde_json::json!({"parallelism": 6}));
        assert!(check_usage(&ok, "c", &quota, &mut usage).is_ok());
        assert_eq!(usage.tasks(""), 10);
        // Deploying b at its own 8 would make 18.
        let e = check_usage(
            &cmd("job.restore", serde_json::json!({})),
            "b",
            &quota,
            &mut usage,
        )
        .unwrap_err();
        assert_eq!(e.code, RejectionCode::QuotaExceeded);
        assert!(e.message.contains("to 18 (10 in its other jobs)"), "{e}");
        // An explicit parallelism on deploy is what counts.
        let e = check_usage(
            &cmd("job.deploy", serde_json::json!({"parallelism": 1})),
            "new",
            &quota,
            &mut usage,
        )
        .unwrap_err();
        assert!(e.message.contains("max_parallelism (10)"), "{e}");
        // Commands that start nothing are not counted.
        assert!(check_usage(
            &cmd("job.stop", serde_json::json!({})),
            "a",
            &quota,
            &mut usage
        )
        .is_ok());
    }

    #[test]
    fn a_tenant_with_jobs_is_not_deleted() {
        let mut usage = Usage::default();
        assert!(delete_problem("t", &usage).is_none());
        usage.jobs = 2;
        let r = delete_problem("t", &usage).unwrap();
        assert_eq!(r.code, RejectionCode::InvalidTransition);
        assert!(r.message.contains("still has 2 jobs"), "{r}");
    }

    #[test]
    fn the_actor_records_who_authenticated() {
        assert_eq!(Identity::Admin.actor("ops"), "ops@admin");
        assert_eq!(Identity::Tenant("alice".into()).actor("bob"), "bob@alice");
    }
}
