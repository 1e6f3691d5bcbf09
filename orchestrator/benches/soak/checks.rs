//! The final checks, once the load is over and the sinks have caught up:
//! exactly-once sinks and exact keyed state, every command applied once,
//! no workflow run stuck, and each job's phase agreeing with its deployment.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use uuid::Uuid;

use crate::measure::Ledger;
use crate::system::{Job, Weir, PREFIX, SCHEMA, TENANT};

/// One line of the final summary.
pub struct Check {
    pub name: String,
    pub pass: bool,
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, pass: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            pass,
            detail: detail.into(),
        }
    }
}

/// Each input's output exactly once: every source offset below the source
/// topic's end offsets appears once, none twice, none beyond.
pub fn exactly_once(job: Job, ledger: &Ledger, source_ends: &[i64]) -> Check {
    let expected: i64 = source_ends.iter().sum();
    let mut missing = 0i64;
    let mut missing_example = None;
    for (p, end) in source_ends.iter().enumerate() {
        let seen = ledger.positions.get(&(p as i32));
        for o in 0..*end {
            if seen.and_then(|v| v.get(o as usize)).copied().unwrap_or(0) == 0 {
                missing += 1;
                missing_example.get_or_insert((p, o));
            }
        }
    }
    let beyond = ledger
        .positions
        .iter()
        .map(|(p, v)| {
            let end = source_ends.get(*p as usize).copied().unwrap_or(0).max(0) as usize;
            v.iter().skip(end).filter(|n| **n > 0).count() as u64
        })
        .sum::<u64>();
    let pass = missing == 0
        && ledger.duplicates == 0
        && beyond == 0
        && ledger.foreign == 0
        && ledger.extra_seq == 0
        && ledger.distinct as i64 == expected;
    let mut detail = format!(
        "{} outputs read, {} distinct source positions of {} in {}; {} missing, {} duplicated",
        ledger.read,
        ledger.distinct,
        expected,
        job.source_topic(),
        missing,
        ledger.duplicates
    );
    if let Some((p, o)) = missing_example {
        detail += &format!(" (first missing: partition {p} offset {o})");
    }
    if !ledger.duplicate_examples.is_empty() {
        detail += &format!(
            " (e.g. source partition/offset → sink partition/offset: {:?})",
            ledger.duplicate_examples
        );
    }
    if beyond + ledger.foreign + ledger.extra_seq > 0 {
        detail += &format!(
            "; {beyond} beyond the source's end, {} without this job's headers, {} with a sequence number ≠ 0",
            ledger.foreign, ledger.extra_seq
        );
    }
    Check::new(
        format!("{}: each input's output exactly once", job.name()),
        pass,
        detail,
    )
}

/// The keyed job's per-key state: key `u<k>`'s outputs, in sink order, are
/// counts 1, 2, … each reset by a timer's `total=` of the count before it,
/// and the totals plus the open count are N_k, the records of that key the
/// input holds.
pub fn keyed_state(ledger: &Ledger, per_key: &[u64]) -> Check {
    let mut wrong = Vec::new();
    let empty = Default::default();
    for (k, n) in per_key.iter().enumerate() {
        let key = format!("u{k}");
        let walk = ledger.walks.get(&key).unwrap_or(&empty);
        let counted = walk.totals + walk.open;
        if counted != *n || walk.wrong > 0 {
            wrong.push(format!(
                "{key}: {counted} of {n} counted ({} fired totals + {} open), {} out of sequence{}",
                walk.totals,
                walk.open,
                walk.wrong,
                walk.first_wrong
                    .as_deref()
                    .map(|w| format!(", first: {w}"))
                    .unwrap_or_default()
            ));
        }
    }
    let unknown_keys = ledger
        .walks
        .keys()
        .filter(|k| {
            k.strip_prefix('u')
                .and_then(|n| n.parse::<usize>().ok())
                .is_none_or(|n| n >= per_key.len())
        })
        .count();
    let pass =
        !per_key.is_empty() && wrong.is_empty() && unknown_keys == 0 && ledger.not_counts == 0;
    let total: u64 = per_key.iter().sum();
    let fired: u64 = ledger.walks.values().map(|w| w.fired).sum();
    let mut detail = format!(
        "{} keys, {total} inputs, {fired} timer totals; {} keys wrong",
        per_key.len(),
        wrong.len()
    );
    if !wrong.is_empty() {
        detail += &format!(
            " ({})",
            wrong.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        );
    }
    if unknown_keys + ledger.not_counts as usize > 0 {
        detail += &format!(
            "; {unknown_keys} unknown keys, {} outputs that are neither counts nor totals",
            ledger.not_counts
        );
    }
    Check::new("counts: final per-key state exact", pass, detail)
}

/// The repartition topic holds one record per input (stage 1 exactly once).
pub fn repartition(ends: &[i64], inputs: i64) -> Check {
    let total: i64 = ends.iter().sum();
    Check::new(
        "counts: repartition topic holds each input once",
        total == inputs,
        format!("{total} records for {inputs} inputs"),
    )
}

/// Waits until the orchestrator's command consumer has nothing pending.
async fn wait_commands_settled(js: &async_nats::jetstream::Context) -> Result<String> {
    let stream = js
        .get_stream(format!("{}_CMD", PREFIX.to_uppercase()))
        .await?;
    let start = Instant::now();
    loop {
        let info = stream.consumer_info("orchestrator").await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(String::new());
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Ok(format!(
                "; still pending after 60 s: {} undelivered, {} unacknowledged",
                info.num_pending, info.num_ack_pending
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every command published on the command stream (by the soak, the
/// workflows, the reconciler) has exactly one recorded outcome, and the
/// events carrying its id are exactly the ones that outcome lists: none
/// lost, none applied twice. Also: every event was relayed once.
pub async fn commands(weir: &Weir) -> Result<Vec<Check>> {
    let nc = async_nats::connect(&weir.nats_url).await?;
    let js = async_nats::jetstream::new(nc);
    let pending = wait_commands_settled(&js).await?;

    let mut published: HashMap<Uuid, String> = HashMap::new();
    let mut unreadable = 0u64;
    let mut messages = 0u64;
    let mut cmd_stream = js
        .get_stream(format!("{}_CMD", PREFIX.to_uppercase()))
        .await?;
    let last = cmd_stream.info().await?.state.last_sequence;
    for seq in 1..=last {
        let Ok(m) = cmd_stream.get_raw_message(seq).await else {
            continue;
        };
        messages += 1;
        let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        match v["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()) {
            Some(id) => {
                published.insert(id, v["kind"].as_str().unwrap_or("?").to_owned());
            }
            None => unreadable += 1,
        }
    }

    let pool = weir::store::postgres::pool(&weir.db_url, SCHEMA, 2).await?;
    let recorded: Vec<(Uuid, String, Value)> =
        sqlx::query_as("SELECT command_id, kind, outcome FROM commands")
            .fetch_all(&pool)
            .await?;
    let events: Vec<(i64, Option<Uuid>)> =
        sqlx::query_as("SELECT position, command_id FROM events ORDER BY position")
            .fetch_all(&pool)
            .await?;
    pool.close().await;

    let recorded_ids: HashMap<Uuid, &Value> = recorded.iter().map(|(id, _, o)| (*id, o)).collect();
    let lost: Vec<(&Uuid, &String)> = published
        .iter()
        .filter(|(id, _)| !recorded_ids.contains_key(id))
        .collect();
    let mut by_command: HashMap<Uuid, HashSet<i64>> = HashMap::new();
    for (pos, id) in &events {
        if let Some(id) = id {
            by_command.entry(*id).or_default().insert(*pos);
        }
    }
    let (mut accepted, mut rejected, mut mismatched) = (0u64, 0u64, Vec::new());
    for (id, outcome) in &recorded_ids {
        let listed: HashSet<i64> = outcome["events"]
            .as_array()
            .map(|es| es.iter().filter_map(|e| e["position"].as_i64()).collect())
            .unwrap_or_default();
        if outcome["status"] == "accepted" {
            accepted += 1;
        } else {
            rejected += 1;
        }
        let stored = by_command.remove(id).unwrap_or_default();
        if stored != listed {
            mismatched.push(format!(
                "{id}: outcome lists {} events, {} stored",
                listed.len(),
                stored.len()
            ));
        }
    }
    // Events naming a command that has no recorded outcome.
    let orphans = by_command.len();
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for k in published.values() {
        *kinds.entry(k.as_str()).or_default() += 1;
    }
    let kinds = kinds
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut detail = format!(
        "{messages} messages on the command stream, {} distinct ids ({kinds}); {} recorded ({accepted} accepted, {rejected} rejected); {} lost, {} applied other than once, {orphans} events without an outcome, {unreadable} unreadable{pending}",
        published.len(),
        recorded_ids.len(),
        lost.len(),
        mismatched.len(),
    );
    if let Some((id, kind)) = lost.first() {
        detail += &format!(" (e.g. lost: {kind} {id})");
    }
    if let Some(m) = mismatched.first() {
        detail += &format!(" (e.g. {m})");
    }
    let commands_ok =
        lost.is_empty() && mismatched.is_empty() && orphans == 0 && pending.is_empty();

    // The relay: every event position published once on the event stream.
    let mut evt_stream = js
        .get_stream(format!("{}_EVT", PREFIX.to_uppercase()))
        .await?;
    let evt_last = evt_stream.info().await?.state.last_sequence;
    let mut relayed: HashMap<String, u32> = HashMap::new();
    for seq in 1..=evt_last {
        if let Ok(m) = evt_stream.get_raw_message(seq).await {
            let id = m
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_else(|| format!("seq {seq}"));
            *relayed.entry(id).or_default() += 1;
        }
    }
    let twice = relayed.values().filter(|n| **n > 1).count();
    let unrelayed = events
        .iter()
        .filter(|(pos, _)| {
            !relayed.contains_key(&format!("{PREFIX}-{pos}"))
                && !relayed.contains_key(&pos.to_string())
        })
        .count();
    let relay_ok = twice == 0 && unrelayed == 0;
    Ok(vec![
        Check::new("commands: none lost, none applied twice", commands_ok, detail),
        Check::new(
            "events: each relayed once",
            relay_ok,
            format!(
                "{} events stored, {} relayed messages; {unrelayed} not relayed, {twice} relayed more than once",
                events.len(),
                relayed.values().map(|n| *n as u64).sum::<u64>()
            ),
        ),
    ])
}

/// No workflow run is left `running` or `paused` (given a minute to finish).
pub async fn workflow_runs(weir: &Weir) -> Check {
    let start = Instant::now();
    loop {
        let runs = weir
            .get(&format!("/v1/tenants/{TENANT}/runs"))
            .await
            .filter(|(c, _)| *c == 200)
            .and_then(|(_, v)| v.as_array().cloned());
        if let Some(runs) = &runs {
            let mut by: BTreeMap<String, u64> = BTreeMap::new();
            let mut stuck = Vec::new();
            for r in runs {
                let status = r["status"].as_str().unwrap_or("?").to_owned();
                let wf = r["workflow"].as_str().unwrap_or("?");
                *by.entry(format!("{wf} {status}")).or_default() += 1;
                if matches!(status.as_str(), "running" | "paused" | "absent" | "?") {
                    stuck.push(format!(
                        "{} ({wf}, {status}, at {})",
                        r["run_id"].as_str().unwrap_or("?"),
                        r["current"]
                    ));
                }
            }
            let summary = by
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            if stuck.is_empty() || start.elapsed() > Duration::from_secs(60) {
                return Check::new(
                    "workflow runs: none stuck",
                    stuck.is_empty(),
                    format!(
                        "{} runs ({summary}){}",
                        runs.len(),
                        if stuck.is_empty() {
                            String::new()
                        } else {
                            format!("; stuck: {}", stuck.join("; "))
                        }
                    ),
                );
            }
        } else if start.elapsed() > Duration::from_secs(60) {
            return Check::new(
                "workflow runs: none stuck",
                false,
                "the API did not list the runs",
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The job's phase is `running`, its placement desired `running`, and
/// every task of its deployment runs.
pub async fn phase_agrees(weir: &Weir, job: Job) -> Result<Check> {
    let phase = weir.phase(job).await;
    let (tasks_ok, tasks) = weir.tasks_running(job).await;
    let placement = weir
        .placements()
        .await
        .context("reading placements")?
        .into_iter()
        .find(|(j, ..)| j == job.name());
    let desired = placement.as_ref().map(|p| p.3.as_str());
    let pass = phase.as_deref() == Some("running") && tasks_ok && desired == Some("running");
    Ok(Check::new(
        format!("{}: phase agrees with its deployment", job.name()),
        pass,
        format!(
            "phase {}, placement {}, tasks [{tasks}]",
            phase.as_deref().unwrap_or("(no answer)"),
            placement
                .map(|(_, w, e, d)| format!("{d} on {w} epoch {e}"))
                .unwrap_or_else(|| "none".into()),
        ),
    ))
}

/// What the job's history recorded: event types, and the data plane's
/// incidents by kind (informational).
pub async fn history(weir: &Weir, job: Job) -> Result<String> {
    let pool = weir::store::postgres::pool(&weir.db_url, SCHEMA, 1).await?;
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload FROM events WHERE tenant = $1 AND stream_id = $2 ORDER BY position",
    )
    .bind(TENANT)
    .bind(format!("job.{}", job.name()))
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for (t, payload) in &rows {
        let name = match find_key(payload, "incident")
            .and_then(|i| i["what"].as_str().map(str::to_owned))
        {
            Some(what) => format!("{t}:{what}"),
            None => t.clone(),
        };
        *by.entry(name).or_default() += 1;
    }
    Ok(by
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", "))
}

fn find_key(v: &Value, key: &str) -> Option<Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .cloned()
            .or_else(|| m.values().find_map(|v| find_key(v, key))),
        Value::Array(a) => a.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

/// The CEP job's check, by name.
pub const CEP_CHECK: &str = "matches: every triple exactly once";

/// The CEP job's matches. Its rule makes consecutive triples of each key's
/// records in event time (production order here), so from the input and
/// the late topic the check knows every match that must come out: each
/// key's records, less those that arrived late, cut into threes. Every
/// match read must be one of those, none twice, and every one must be
/// there except at the very end, where the last records of a partition
/// wait for a watermark that no later record moves (`open_after_ms`: the
/// time after which a triple may still be open). Late records are allowed
/// (the watermark is not aligned across the first stage's tasks, so a task
/// that restarts behind another delivers late), but each must be in the
/// late topic once.
pub fn cep_matches(
    ledger: &Ledger,
    inputs: &[Vec<crate::measure::Produced>],
    late: &HashMap<String, Vec<u64>>,
    late_records: u64,
    open_after_ms: i64,
) -> Check {
    let (mut expected, mut required, mut missing, mut unexpected) = (0u64, 0u64, 0u64, 0u64);
    let mut example: Option<String> = None;
    let mut late_twice = 0u64;
    let mut late_unknown = 0u64;
    for (k, recs) in inputs.iter().enumerate() {
        let key = format!("u{k}");
        let mut late_ns: Vec<u64> = late.get(&key).cloned().unwrap_or_default();
        late_ns.sort_unstable();
        let before = late_ns.len();
        late_ns.dedup();
        late_twice += (before - late_ns.len()) as u64;
        let on_time: Vec<_> = recs
            .iter()
            .filter(|r| late_ns.binary_search(&r.n).is_err())
            .collect();
        late_unknown += late_ns
            .iter()
            .filter(|n| !recs.iter().any(|r| r.n == **n))
            .count() as u64;
        let triples: Vec<([u64; 3], i64)> = on_time
            .chunks_exact(3)
            .map(|c| ([c[0].n, c[1].n, c[2].n], c[2].ts))
            .collect();
        let seen: HashSet<[u64; 3]> = ledger
            .matches
            .get(&key)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default();
        let want: HashSet<[u64; 3]> = triples.iter().map(|(t, _)| *t).collect();
        expected += triples.len() as u64;
        for (t, last_ts) in &triples {
            if *last_ts <= open_after_ms {
                required += 1;
                if !seen.contains(t) {
                    missing += 1;
                    example.get_or_insert_with(|| format!("{key} missing {t:?}"));
                }
            }
        }
        for t in &seen {
            if !want.contains(t) {
                unexpected += 1;
                example
                    .get_or_insert_with(|| format!("{key} has {t:?}, not a triple of its input"));
            }
        }
    }
    let unknown_keys = ledger
        .matches
        .keys()
        .filter(|k| {
            k.strip_prefix('u')
                .and_then(|n| n.parse::<usize>().ok())
                .is_none_or(|n| n >= inputs.len())
        })
        .count();
    let pass = !inputs.is_empty()
        && required > 0
        && missing == 0
        && unexpected == 0
        && ledger.duplicates == 0
        && ledger.not_matches == 0
        && late_twice == 0
        && late_unknown == 0
        && unknown_keys == 0;
    let mut detail = format!(
        "{} matches read ({} distinct) of {expected} triples in the input, {required} due before the end; {missing} missing, {unexpected} not a triple, {} duplicated; {late_records} late records ({late_twice} written twice, {late_unknown} not in the input)",
        ledger.read, ledger.distinct, ledger.duplicates
    );
    if let Some(e) = example {
        detail += &format!(" (e.g. {e})");
    }
    if ledger.not_matches + unknown_keys as u64 > 0 {
        detail += &format!(
            "; {} outputs that are not match records, {unknown_keys} unknown keys",
            ledger.not_matches
        );
    }
    Check::new(CEP_CHECK, pass, detail)
}
