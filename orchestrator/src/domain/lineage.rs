//! Lineage: what a tenant's jobs read and write, as a graph. Nodes are the
//! things data lives in (Kafka topics, PostgreSQL tables, NATS subjects,
//! HTTP URLs); each job is a set of edges, from every topic it reads to
//! every place it writes (side outputs and the dead-letter topic included).
//! Derived from the specs every time it is asked for, so it is current
//! after every create, version, deploy and delete. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::job::spec::{OperatorSpec, SinkSpec};
use super::job::{JobSpec, JobState, Phase};

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    /// `kind:name`, e.g. `topic:orders`: how `--node` names it.
    pub id: String,
    /// `topic`, `table`, `subject` or `url`.
    pub kind: String,
    pub name: String,
}

impl Node {
    fn new(kind: &str, name: &str) -> Self {
        Self {
            id: format!("{kind}:{name}"),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// A job carrying data from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub job: String,
    /// The version the edge comes from: the deployed one, else the latest.
    pub version: u32,
    pub phase: Phase,
    /// `output`, `dead_letter`, `timed_out` or `late`.
    pub role: String,
}

/// A tenant's lineage graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// Which way to walk from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upstream,
    Downstream,
    Both,
}

/// The version of `state` that counts: deployed, else the latest.
fn current_spec(state: &JobState) -> Option<(u32, JobSpec)> {
    let version = state
        .deployment
        .as_ref()
        .map(|d| d.version)
        .or(state.latest_version())?;
    let info = state.version(version)?;
    let spec = JobSpec::from_value(info.spec.clone()).ok()?;
    Some((version, spec))
}

impl Graph {
    /// The graph of `jobs` (name, state); deleted jobs have no edges.
    pub fn of<'a>(jobs: impl IntoIterator<Item = (&'a str, &'a JobState)>) -> Self {
        let mut nodes = BTreeSet::new();
        let mut edges = BTreeSet::new();
        for (job, state) in jobs {
            if matches!(state.phase, Phase::Deleted | Phase::Absent) {
                continue;
            }
            let Some((version, spec)) = current_spec(state) else {
                continue;
            };
            let inputs: Vec<Node> = spec
                .sources
                .iter()
                .map(|s| Node::new("topic", &s.topic))
                .collect();
            let mut outputs: Vec<(Node, &str)> = spec
                .sinks
                .iter()
                .map(|s| match s {
                    SinkSpec::Kafka { topic } => (Node::new("topic", topic), "output"),
                    SinkSpec::Postgres { table, .. } => (Node::new("table", table), "output"),
                    SinkSpec::Nats { subject } => (Node::new("subject", subject), "output"),
                    SinkSpec::Http { url, .. } => (Node::new("url", url), "output"),
                })
                .collect();
            for op in &spec.operators {
                if let OperatorSpec::Cep {
                    timed_out_topic,
                    late_topic,
                    ..
                } = op
                {
                    if let Some(t) = timed_out_topic {
                        outputs.push((Node::new("topic", t), "timed_out"));
                    }
                    if let Some(t) = late_topic {
                        outputs.push((Node::new("topic", t), "late"));
                    }
                }
            }
            if let Some(t) = &spec.dead_letter_topic {
                outputs.push((Node::new("topic", t), "dead_letter"));
            }
            for i in &inputs {
                nodes.insert(i.clone());
                for (o, role) in &outputs {
                    nodes.insert(o.clone());
                    edges.insert(Edge {
                        from: i.id.clone(),
                        to: o.id.clone(),
                        job: job.to_owned(),
                        version,
                        phase: state.phase,
                        role: (*role).to_owned(),
                    });
                }
            }
        }
        Self {
            nodes: nodes.into_iter().collect(),
            edges: edges.into_iter().collect(),
        }
    }

    /// The part of the graph connected to `node` in `direction`
    /// (transitively), or `None` if no such node.
    pub fn around(&self, node: &str, direction: Direction) -> Option<Self> {
        if !self.nodes.iter().any(|n| n.id == node) {
            return None;
        }
        let mut keep: BTreeSet<&str> = BTreeSet::from([node]);
        let mut edges = BTreeSet::new();
        let walks: &[bool] = match direction {
            Direction::Downstream => &[true],
            Direction::Upstream => &[false],
            Direction::Both => &[true, false],
        };
        for &down in walks {
            let mut queue = VecDeque::from([node]);
            let mut seen: BTreeSet<&str> = BTreeSet::from([node]);
            while let Some(at) = queue.pop_front() {
                for e in &self.edges {
                    let (here, next) = if down {
                        (e.from.as_str(), e.to.as_str())
                    } else {
                        (e.to.as_str(), e.from.as_str())
                    };
                    if here != at {
                        continue;
                    }
                    edges.insert(e.clone());
                    keep.insert(next);
                    if seen.insert(next) {
                        queue.push_back(next);
                    }
                }
            }
        }
        Some(Self {
            nodes: self
                .nodes
                .iter()
                .filter(|n| keep.contains(n.id.as_str()))
                .cloned()
                .collect(),
            edges: edges.into_iter().collect(),
        })
    }

    /// Graphviz DOT: nodes by kind (shape), one edge per job labelled with
    /// the job, its version and phase.
    pub fn to_dot(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut out = String::from("digraph lineage {\n  rankdir=LR;\n");
        for n in &self.nodes {
            let shape = match n.kind.as_str() {
                "table" => "cylinder",
                "subject" => "hexagon",
                "url" => "note",
                _ => "box",
            };
            let _ = writeln!(
                out,
                "  {} [label={}, shape={shape}];",
                quote(&n.id),
                quote(&format!("{}\\n{}", n.kind, n.name))
            );
        }
        let mut by_pair: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for e in &self.edges {
            let phase = e.phase.name();
            let role = if e.role == "output" {
                String::new()
            } else {
                format!(" ({})", e.role)
            };
            by_pair
                .entry((&e.from, &e.to))
                .or_default()
                .push(format!("{} v{} {phase}{role}", e.job, e.version));
        }
        for ((from, to), labels) in by_pair {
            let _ = writeln!(
                out,
                "  {} -> {} [label={}];",
                quote(from),
                quote(to),
                quote(&labels.join("\\n"))
            );
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::state::VersionInfo;

    fn job(phase: Phase, spec: serde_json::Value) -> JobState {
        JobState {
            phase,
            versions: vec![VersionInfo {
                version: 1,
                spec,
                submitted_at: chrono::Utc::now(),
                compile: Default::default(),
            }],
            ..Default::default()
        }
    }

    fn chain() -> Vec<(String, JobState)> {
        let spec = |from: &str, to: serde_json::Value| serde_json::json!({"sources": [{"topic": from}], "sinks": [to]});
        vec![
            (
                "a".into(),
                job(
                    Phase::Running,
                    spec(
                        "orders",
                        serde_json::json!({"type": "kafka", "topic": "clean"}),
                    ),
                ),
            ),
            (
                "b".into(),
                job(
                    Phase::Idle,
                    spec(
                        "clean",
                        serde_json::json!({"type": "kafka", "topic": "scored"}),
                    ),
                ),
            ),
            (
                "c".into(),
                job(
                    Phase::Stopped,
                    spec(
                        "scored",
                        serde_json::json!({"type": "postgres", "table": "alerts", "key_columns": ["id"]}),
                    ),
                ),
            ),
        ]
    }

    fn graph(jobs: &[(String, JobState)]) -> Graph {
        Graph::of(jobs.iter().map(|(n, s)| (n.as_str(), s)))
    }

    fn ids(g: &Graph) -> Vec<&str> {
        g.nodes.iter().map(|n| n.id.as_str()).collect()
    }

    #[test]
    fn three_chained_jobs_walk_both_ways() {
        let g = graph(&chain());
        assert_eq!(g.edges.len(), 3);
        let down = g.around("topic:clean", Direction::Downstream).unwrap();
        assert_eq!(ids(&down), ["table:alerts", "topic:clean", "topic:scored"]);
        assert_eq!(
            down.edges
                .iter()
                .map(|e| e.job.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        let up = g.around("table:alerts", Direction::Upstream).unwrap();
        assert_eq!(up.edges.len(), 3);
        let both = g.around("topic:clean", Direction::Both).unwrap();
        assert_eq!(both.edges.len(), 3);
        assert!(g.around("topic:nope", Direction::Both).is_none());
    }

    #[test]
    fn a_deleted_job_has_no_edges() {
        let mut jobs = chain();
        jobs[1].1.phase = Phase::Deleted;
        let g = graph(&jobs);
        assert_eq!(
            g.edges.iter().map(|e| e.job.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        let down = g.around("topic:orders", Direction::Downstream).unwrap();
        assert_eq!(ids(&down), ["topic:clean", "topic:orders"]);
    }

    #[test]
    fn side_outputs_and_dead_letters_are_edges_too() {
        let jobs = vec![(
            "fraud".to_owned(),
            job(
                Phase::Running,
                serde_json::json!({
                    "sources": [{"topic": "logins"}],
                    "operators": [
                        {"type": "key_by", "id": "k", "field": "user"},
                        {"type": "cep", "id": "c", "rule": "name: r\nwithin_ms: 1000\nsteps:\n  - name: a\n    where: x == 1\n", "timed_out_topic": "slow"}
                    ],
                    "sinks": [{"type": "nats", "subject": "alerts.fraud"}],
                    "dead_letter_topic": "bad"
                }),
            ),
        )];
        let g = graph(&jobs);
        let roles: Vec<(&str, &str)> = g
            .edges
            .iter()
            .map(|e| (e.to.as_str(), e.role.as_str()))
            .collect();
        assert_eq!(
            roles,
            [
                ("subject:alerts.fraud", "output"),
                ("topic:bad", "dead_letter"),
                ("topic:slow", "timed_out")
            ]
        );
    }

    #[test]
    fn dot_names_every_node_and_edge() {
        let dot = graph(&chain()).to_dot();
        assert!(dot.starts_with("digraph lineage {"), "{dot}");
        assert!(
            dot.contains("\"topic:orders\" -> \"topic:clean\" [label=\"a v1 running\"]"),
            "{dot}"
        );
        assert!(dot.contains("shape=cylinder"), "{dot}");
        assert!(dot.trim_end().ends_with('}'));
    }
}
