//! `/ui/t/{tenant}/lineage`: the lineage graph ([`crate::domain::lineage`])
//! drawn as SVG. The layout is a plain layered one: a node's column is the
//! longest path to it from a node nothing writes (nodes on a cycle go after
//! their laid-out predecessors), and each column is ordered by the mean row
//! of its predecessors. Jobs are the edges, labelled with version and phase.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use maud::{html, Markup};

use super::{clip, label, layout, tenant, ConsoleError, Page};
use crate::api::types::LineageQuery;
use crate::api::{lineage, ApiState};
use crate::domain::lineage::Graph;

pub async fn show(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    Query(q): Query<LineageQuery>,
) -> Result<Page, ConsoleError> {
    let t = tenant(&t)?;
    let graph = lineage::graph_of(&s, &t, &q).await?;
    Ok(Page(layout(
        "Lineage",
        Some(&t),
        html! {
            form action=(format!("/ui/t/{t}/lineage")) method="get" {
                label { "Around node " input name="node" placeholder="topic:orders" value=[q.node.as_deref()]; }
                " "
                select name="direction" {
                    @for d in ["both", "upstream", "downstream"] {
                        option value=(d) selected[q.direction.as_deref() == Some(d)] { (d) }
                    }
                }
                " " button type="submit" { "Show" }
            }
            @if graph.nodes.is_empty() {
                p.note { "No job reads or writes anything yet." }
            } @else {
                div.lineage { (draw(&graph)) }
                h2 { "Edges" }
                table {
                    tr { th { "from" } th { "to" } th { "job" } th { "version" } th { "phase" } th { "role" } }
                    @for e in &graph.edges {
                        tr {
                            td.mono { (e.from) } td.mono { (e.to) }
                            td { a href=(format!("/ui/t/{t}/jobs/{}", e.job)) { (e.job) } }
                            td.num { (e.version) } td { (label(&e.phase)) } td { (e.role) }
                        }
                    }
                }
            }
        },
    )))
}

/// Column and row of every node (by id).
pub fn layers(graph: &Graph) -> BTreeMap<String, (usize, usize)> {
    let ids: BTreeSet<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    let mut preds: BTreeMap<&str, BTreeSet<&str>> =
        ids.iter().map(|i| (*i, BTreeSet::new())).collect();
    for e in &graph.edges {
        if e.from != e.to && ids.contains(e.from.as_str()) {
            if let Some(p) = preds.get_mut(e.to.as_str()) {
                p.insert(e.from.as_str());
            }
        }
    }
    // Longest path from a source; what a cycle leaves out goes after the
    // predecessors already placed.
    let mut column: BTreeMap<&str, usize> = BTreeMap::new();
    while column.len() < ids.len() {
        let ready: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|n| !column.contains_key(n))
            .filter(|n| preds[n].iter().all(|p| column.contains_key(p)))
            .collect();
        let next: Vec<&str> = if ready.is_empty() {
            // A cycle: break it at a node some placed node writes to (the
            // first by name), else at the first left.
            let left: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|n| !column.contains_key(n))
                .collect();
            let fed = left
                .iter()
                .copied()
                .find(|n| preds[n].iter().any(|p| column.contains_key(p)));
            fed.or(left.first().copied()).into_iter().collect()
        } else {
            ready
        };
        for n in next {
            let c = preds[n]
                .iter()
                .filter_map(|p| column.get(p))
                .map(|c| c + 1)
                .max()
                .unwrap_or(0);
            column.insert(n, c);
        }
    }
    let columns = column.values().copied().max().map_or(0, |m| m + 1);
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in 0..columns {
        let mut members: Vec<(f64, &str)> = column
            .iter()
            .filter(|(_, col)| **col == c)
            .map(|(n, _)| {
                let rows: Vec<f64> = preds[n]
                    .iter()
                    .filter_map(|p| out.get(*p))
                    .map(|(_, r)| *r as f64)
                    .collect();
                let mean = if rows.is_empty() {
                    f64::MAX
                } else {
                    rows.iter().sum::<f64>() / rows.len() as f64
                };
                (mean, *n)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        for (row, (_, n)) in members.into_iter().enumerate() {
            out.insert(n.to_owned(), (c, row));
        }
    }
    out
}

const NODE_W: f64 = 250.0;
const NODE_H: f64 = 38.0;
const COL: f64 = 400.0;
const ROW: f64 = 70.0;
const PAD: f64 = 20.0;

fn kind_colour(kind: &str) -> &'static str {
    match kind {
        "topic" => "#dbe7fb",
        "table" => "#d7f2de",
        "subject" => "#eadcf7",
        _ => "#fde7d3",
    }
}

/// The graph as SVG: a box per node, a curve per (from, to) with its jobs.
pub fn draw(graph: &Graph) -> Markup {
    let at = layers(graph);
    let columns = at.values().map(|(c, _)| c + 1).max().unwrap_or(1);
    let rows = at.values().map(|(_, r)| r + 1).max().unwrap_or(1);
    let width = PAD * 2.0 + (columns - 1) as f64 * COL + NODE_W;
    let height = PAD * 2.0 + (rows - 1) as f64 * ROW + NODE_H + 20.0;
    let pos = |id: &str| {
        at.get(id)
            .map(|(c, r)| (PAD + *c as f64 * COL, PAD + 20.0 + *r as f64 * ROW))
    };
    let mut links: BTreeMap<(&str, &str), Vec<&crate::domain::lineage::Edge>> = BTreeMap::new();
    for e in &graph.edges {
        links
            .entry((e.from.as_str(), e.to.as_str()))
            .or_default()
            .push(e);
    }
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) role="img" aria-label="lineage graph" {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto" {
                    path d="M0,0 L10,5 L0,10 z" fill="#6a7385" {}
                }
            }
            @for ((from, to), edges) in &links {
                @if let (Some((x0, y0)), Some((x1, y1))) = (pos(from), pos(to)) {
                    @let running = edges.iter().any(|e| e.phase == crate::domain::job::Phase::Running);
                    @let side = edges.iter().all(|e| e.role != "output");
                    @let text = edges.iter().map(|e| format!("{} v{} {}", e.job, e.version, label(&e.phase))).collect::<Vec<_>>().join(", ");
                    @let (d, lx, ly) = if *from == *to {
                        let (cx, cy) = (x0 + NODE_W / 2.0, y0);
                        (format!("M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx - 30.0, cy, cx - 40.0, cy - 40.0, cx + 40.0, cy - 40.0, cx + 30.0, cy), cx, cy - 34.0)
                    } else {
                        let (sx, sy, ex, ey) = (x0 + NODE_W, y0 + NODE_H / 2.0, x1, y1 + NODE_H / 2.0);
                        let bend = ((ex - sx).abs() / 2.0).max(60.0);
                        (format!("M{sx:.1},{sy:.1} C{:.1},{sy:.1} {:.1},{ey:.1} {ex:.1},{ey:.1}", sx + bend, ex - bend),
                         (sx + ex) / 2.0, (sy + ey) / 2.0 - 4.0)
                    };
                    g.edge data-from=(from) data-to=(to) data-jobs=(edges.iter().map(|e| e.job.as_str()).collect::<Vec<_>>().join(" ")) {
                        path d=(d) fill="none" stroke=(if running { "#3aa45b" } else { "#8a93a3" })
                            stroke-width="1.6" stroke-dasharray=[side.then_some("5 4")] marker-end="url(#arrow)" {}
                        text x=(lx) y=(ly) text-anchor="middle" font-size="11" fill="#1d2330" {
                            title { (text) }
                            (clip(&text, 44))
                        }
                    }
                }
            }
            @for n in &graph.nodes {
                @if let Some((x, y)) = pos(&n.id) {
                    g.node data-id=(n.id) data-kind=(n.kind) {
                        rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" fill=(kind_colour(&n.kind)) stroke="#8a93a3" {}
                        text x=(x + 8.0) y=(y + 14.0) font-size="10" fill="#6a7385" { (n.kind) }
                        text x=(x + 8.0) y=(y + 30.0) font-size="13" fill="#1d2330" {
                            title { (n.id) }
                            (clip(&n.name, 30))
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::Phase;
    use crate::domain::lineage::{Edge, Node};

    fn node(id: &str) -> Node {
        let (kind, name) = id.split_once(':').unwrap();
        Node {
            id: id.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn edge(from: &str, to: &str, job: &str) -> Edge {
        Edge {
            from: from.into(),
            to: to.into(),
            job: job.into(),
            version: 1,
            phase: Phase::Running,
            role: "output".into(),
        }
    }

    #[test]
    fn a_chain_is_laid_out_left_to_right_and_a_cycle_still_places_every_node() {
        let g = Graph {
            nodes: ["topic:orders", "topic:clean", "table:alerts", "topic:loop"]
                .map(node)
                .to_vec(),
            edges: vec![
                edge("topic:orders", "topic:clean", "clean"),
                edge("topic:clean", "table:alerts", "store"),
                edge("topic:clean", "topic:loop", "spin"),
                edge("topic:loop", "topic:clean", "back"),
                edge("topic:loop", "topic:loop", "self"),
            ],
        };
        let at = layers(&g);
        assert_eq!(at.len(), 4);
        assert_eq!(at["topic:orders"].0, 0);
        assert!(at["topic:clean"].0 > 0);
        assert!(at["table:alerts"].0 > at["topic:clean"].0);
        let svg = draw(&g).into_string();
        assert_eq!(svg.matches("<g class=\"node\"").count(), 4, "{svg}");
        assert_eq!(svg.matches("<g class=\"edge\"").count(), 5, "{svg}");
    }

    #[test]
    fn names_are_escaped_in_the_drawing() {
        let g = Graph {
            nodes: vec![
                node("topic:<script>x</script>"),
                node("url:http://a/?a=1&b=\"2\""),
            ],
            edges: vec![edge(
                "topic:<script>x</script>",
                "url:http://a/?a=1&b=\"2\"",
                "j",
            )],
        };
        let svg = draw(&g).into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        assert!(!svg.contains("b=\"2\""), "{svg}");
    }
}
