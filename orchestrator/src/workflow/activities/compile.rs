//! The compile pipeline: fetch the modules, check each one's WIT world,
//! precompile, and compute the plan with stable operator ids and a state
//! fingerprint. Modules come from a [`ModuleSource`](crate::registry::ModuleSource), so the pipeline works
//! with the module registry or with a fixed set (tests, air-gapped setups).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::job::job_state;
use super::{input, Activities, ActivityCtx, ActivityError};
use crate::domain::job::spec::{parse_module_ref, rule_module, OperatorSpec};
use crate::domain::job::JobSpec;
use crate::domain::module::UdfKind;
use crate::domain::tenant::TenantState;
use crate::domain::ErrorClass;
use crate::registry::FetchedModule;
use crate::runtime::control::DeploymentControl;
use crate::store::EventStore;

/// One UDF operator and its module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorModule {
    pub operator: String,
    /// The kind the job spec asks for.
    pub kind: UdfKind,
    pub module: FetchedModule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionInput {
    job: String,
    version: u32,
}

async fn spec_of<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    job: &str,
    version: u32,
) -> Result<JobSpec, ActivityError> {
    let (_, state) = job_state(a.store(), &ctx.tenant, job).await?;
    let info = state.version(version).ok_or_else(|| {
        ActivityError::new(
            ErrorClass::NotFound,
            format!("job `{job}` has no version {version}"),
        )
    })?;
    JobSpec::from_value(info.spec.clone())
        .map_err(|e| ActivityError::invalid(format!("version {version} spec: {e}")))
}

pub async fn fetch_modules<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: VersionInput = input(v)?;
    let spec = spec_of(a, ctx, &i.job, i.version).await?;
    let mut out = Vec::new();
    for op in &spec.operators {
        match op {
            OperatorSpec::Udf {
                id, module, kind, ..
            } => {
                let (name, version) = parse_module_ref(module).ok_or_else(|| {
                    ActivityError::invalid(format!(
                        "operator `{id}`: module `{module}` is not name@version"
                    ))
                })?;
                let m = a.modules.fetch(&ctx.tenant, name, version).await?;
                out.push(OperatorModule {
                    operator: id.clone(),
                    kind: *kind,
                    module: m,
                });
            }
            OperatorSpec::Cep {
                id,
                rule,
                component,
                ..
            } => {
                // A rule component is a `process` module, and so is the
                // stock component a YAML rule is to run in.
                let named = rule_module(rule).or_else(|| {
                    component
                        .as_deref()
                        .and_then(|c| parse_module_ref(c.trim()))
                });
                if let Some((name, version)) = named {
                    let m = a.modules.fetch(&ctx.tenant, name, version).await?;
                    out.push(OperatorModule {
                        operator: id.clone(),
                        kind: UdfKind::Process,
                        module: m,
                    });
                }
            }
            OperatorSpec::KeyBy { .. } => {}
        }
    }
    Ok(json!({"modules": out}))
}

/// Refuses a version that names a Kafka topic outside its tenant's
/// namespace and grants (when `weir serve` enforces namespaces).
pub async fn check_topics<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: VersionInput = input(v)?;
    let spec = spec_of(a, ctx, &i.job, i.version).await?;
    if let Some(tenant) = enforced_tenant(a, ctx).await? {
        topics_allowed(ctx, &tenant, &spec)?;
    }
    Ok(json!({"checked": a.tenancy}))
}

/// The tenant's state when tenants are enforced (`None` under `--insecure-dev`).
pub async fn enforced_tenant<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
) -> Result<Option<TenantState>, ActivityError> {
    if !a.tenancy {
        return Ok(None);
    }
    crate::intake::auth::load_tenant(a.store(), &ctx.tenant)
        .await
        .map(Some)
        .map_err(|e| ActivityError::new(ErrorClass::Unavailable, e.to_string()))
}

/// Whether `spec`'s Kafka topics are `tenant`'s to use.
pub fn topics_allowed(
    ctx: &ActivityCtx,
    tenant: &TenantState,
    spec: &JobSpec,
) -> Result<(), ActivityError> {
    let problems = crate::domain::tenant::spec_topic_problems(&ctx.tenant, tenant, spec);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ActivityError::new(ErrorClass::Refused, problems.join("; ")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModulesInput {
    modules: Vec<OperatorModule>,
}

pub async fn check_wit<S: EventStore, C: DeploymentControl>(
    _a: &Activities<S, C>,
    _ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: ModulesInput = input(v)?;
    for m in &i.modules {
        if m.module.interface != crate::wasm::GUEST_EXPORT {
            return Err(ActivityError::invalid(format!(
                "operator `{}`: module {}@{} exports `{}`, not the `{}` world this host runs",
                m.operator,
                m.module.name,
                m.module.version,
                m.module.interface,
                crate::wasm::GUEST_EXPORT
            )));
        }
        if m.module.kind != m.kind {
            return Err(ActivityError::invalid(format!(
                "operator `{}` is a {:?} UDF, but module {}@{} is a {:?}",
                m.operator, m.kind, m.module.name, m.module.version, m.module.kind
            )));
        }
    }
    Ok(json!({"checked": i.modules.len()}))
}

pub async fn precompile<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: ModulesInput = input(v)?;
    let mut done = BTreeSet::new();
    for m in &i.modules {
        if done.insert(m.module.digest.clone()) {
            a.modules.precompile(&ctx.tenant, &m.module).await?;
        }
    }
    Ok(json!({"precompiled": done.len()}))
}

/// One operator of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOperator {
    /// The id from the job spec.
    pub id: String,
    /// Derived only from `id`, so it survives versions that keep the id.
    pub uid: String,
    /// `udf`, `key_by` or `cep`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub stateful: bool,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Computes a plan: `(operators, plan_digest, state_fingerprint)`.
///
/// The fingerprint is a pure function of the stateful operators' ids, module
/// names (not versions: a new module version that keeps its state schema
/// keeps the state) and state schemas. Equal fingerprints mean state carries over.
pub fn plan(
    spec: &JobSpec,
    modules: &[OperatorModule],
) -> Result<(Vec<PlanOperator>, String, String), ActivityError> {
    let by_op: HashMap<&str, &OperatorModule> =
        modules.iter().map(|m| (m.operator.as_str(), m)).collect();
    let mut ops = Vec::new();
    let mut state = Vec::new();
    for op in &spec.operators {
        let (id, kind, m) = match op {
            OperatorSpec::Udf { id, .. } => {
                let m = by_op.get(id.as_str()).ok_or_else(|| {
                    ActivityError::invalid(format!("operator `{id}` has no fetched module"))
                })?;
                (id, "udf", Some(*m))
            }
            OperatorSpec::KeyBy { id, .. } => (id, "key_by", None),
            OperatorSpec::Cep { id, rule, .. } if rule_module(rule).is_some() => {
                // A rule component's partial matches restore only into the
                // same component: its digest is the state's shape.
                let m = by_op.get(id.as_str()).ok_or_else(|| {
                    ActivityError::invalid(format!("operator `{id}` has no fetched rule module"))
                })?;
                state.push(json!({"id": id, "cep_module": m.module.digest}));
                ops.push(PlanOperator {
                    id: id.clone(),
                    uid: sha256_hex(format!("operator:{id}").as_bytes())[..16].to_owned(),
                    kind: "cep".to_owned(),
                    module: Some(format!("{}@{}", m.module.name, m.module.version)),
                    digest: Some(m.module.digest.clone()),
                    stateful: true,
                });
                continue;
            }
            OperatorSpec::Cep { id, rule, .. } => {
                // Partial matches restore only into an NFA of the same shape;
                // a rule whose conditions alone changed keeps them.
                let shape = crate::domain::cep_rule::parse(rule)
                    .ok()
                    .and_then(|r| r.compile().ok())
                    .map(|nfa| format!("{:016x}", nfa.fingerprint()))
                    .ok_or_else(|| {
                        ActivityError::invalid(format!(
                            "operator `{id}`: the rule does not compile"
                        ))
                    })?;
                state.push(json!({"id": id, "cep_nfa": shape}));
                // The stock component it runs in, when the spec names one:
                // it keeps the same snapshot as the native runner, so it is
                // no part of the state's shape.
                let stock = by_op.get(id.as_str());
                ops.push(PlanOperator {
                    id: id.clone(),
                    uid: sha256_hex(format!("operator:{id}").as_bytes())[..16].to_owned(),
                    kind: "cep".to_owned(),
                    module: stock.map(|m| format!("{}@{}", m.module.name, m.module.version)),
                    digest: stock.map(|m| m.module.digest.clone()),
                    stateful: true,
                });
                continue;
            }
        };
        let stateful =
            m.is_some_and(|m| m.module.state_schema.is_some() || m.kind == UdfKind::Process);
        if let (true, Some(m)) = (stateful, m) {
            state.push(
                json!({"id": id, "module": m.module.name, "state_schema": m.module.state_schema}),
            );
        }
        ops.push(PlanOperator {
            id: id.clone(),
            uid: sha256_hex(format!("operator:{id}").as_bytes())[..16].to_owned(),
            kind: kind.to_owned(),
            module: m.map(|m| format!("{}@{}", m.module.name, m.module.version)),
            digest: m.map(|m| m.module.digest.clone()),
            stateful,
        });
    }
    state.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    // serde_json maps are ordered by key, so this text is canonical.
    let fingerprint = sha256_hex(Value::Array(state).to_string().as_bytes());
    let plan = json!({"operators": ops, "sources": spec.sources, "sinks": spec.sinks, "state_fingerprint": fingerprint});
    let digest = sha256_hex(plan.to_string().as_bytes());
    Ok((
        ops,
        format!("sha256:{digest}"),
        format!("sha256:{fingerprint}"),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanInput {
    job: String,
    version: u32,
    #[serde(default)]
    modules: Vec<OperatorModule>,
}

pub async fn plan_activity<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: PlanInput = input(v)?;
    let spec = spec_of(a, ctx, &i.job, i.version).await?;
    let (operators, plan_digest, state_fingerprint) = plan(&spec, &i.modules)?;
    Ok(
        json!({"operators": operators, "plan_digest": plan_digest, "state_fingerprint": state_fingerprint}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ops: &str) -> JobSpec {
        JobSpec::parse(&format!(
            "sources: [{{topic: a}}]\nsinks: [{{type: kafka, topic: b}}]\noperators:\n{ops}"
        ))
        .unwrap()
    }

    fn module(
        op: &str,
        name: &str,
        version: &str,
        kind: UdfKind,
        schema: Option<Value>,
    ) -> OperatorModule {
        OperatorModule {
            operator: op.into(),
            kind,
            module: FetchedModule {
                name: name.into(),
                version: version.into(),
                digest: format!("sha256:{name}{version}"),
                size: 0,
                interface: crate::wasm::GUEST_EXPORT.into(),
                kind,
                state_schema: schema,
            },
        }
    }

    #[test]
    fn fingerprint_depends_only_on_stateful_operators() {
        let s1 = spec("  - {type: udf, id: count, module: counter@1, kind: process}\n  - {type: udf, id: up, module: upper@1, kind: map}\n");
        let m1 = vec![
            module(
                "count",
                "counter",
                "1",
                UdfKind::Process,
                Some(json!({"n": "u64"})),
            ),
            module("up", "upper", "1", UdfKind::Map, None),
        ];
        let (ops, d1, f1) = plan(&s1, &m1).unwrap();
        assert!(ops[0].stateful && !ops[1].stateful);
        // A new version of the stateless module, and of the stateful one with the same schema: state survives.
        let m2 = vec![
            module(
                "count",
                "counter",
                "2",
                UdfKind::Process,
                Some(json!({"n": "u64"})),
            ),
            module("up", "upper", "9", UdfKind::Map, None),
        ];
        let s2 = spec("  - {type: udf, id: count, module: counter@2, kind: process}\n  - {type: udf, id: up, module: upper@9, kind: map}\n");
        let (ops2, d2, f2) = plan(&s2, &m2).unwrap();
        assert_eq!(f1, f2);
        assert_ne!(d1, d2);
        assert_eq!(ops[0].uid, ops2[0].uid, "operator ids are stable");
        // A changed state schema or a renamed stateful operator drops state.
        let m3 = vec![
            module(
                "count",
                "counter",
                "3",
                UdfKind::Process,
                Some(json!({"n": "string"})),
            ),
            m2[1].clone(),
        ];
        assert_ne!(plan(&s2, &m3).unwrap().2, f1);
        let s4 = spec("  - {type: udf, id: count2, module: counter@2, kind: process}\n");
        let m4 = vec![module(
            "count2",
            "counter",
            "2",
            UdfKind::Process,
            Some(json!({"n": "u64"})),
        )];
        assert_ne!(plan(&s4, &m4).unwrap().2, f1);
    }

    #[test]
    fn cep_partial_matches_survive_a_rule_change_only_when_its_shape_is_kept() {
        let cep = |rule: &str| {
            let rule = rule.replace('\n', "\n      ");
            spec(&format!(
                "  - {{type: key_by, id: k, field: user}}\n  - type: cep\n    id: fraud\n    rule: |{rule}\n"
            ))
        };
        let base = "\nname: fraud\nwithin_ms: 60000\nsteps:\n  - name: fail\n    where: status == \"failed\"\n    quantifier: { min: 3, max: 3 }\n  - name: ok\n    where: status == \"ok\"\n";
        let (ops, _, f1) = plan(&cep(base), &[]).unwrap();
        assert_eq!((ops[1].kind.as_str(), ops[1].stateful), ("cep", true));
        // New conditions, same steps and windows: the partial matches carry over.
        let reworded = base.replace("status == \"ok\"", "status == \"ok\" && amount > 0");
        assert_eq!(plan(&cep(&reworded), &[]).unwrap().2, f1);
        // Another quantifier, window or step: they do not.
        for changed in [
            base.replace("min: 3, max: 3", "min: 2, max: 3"),
            base.replace("60000", "30000"),
            base.replace("name: ok", "name: success"),
        ] {
            assert_ne!(plan(&cep(&changed), &[]).unwrap().2, f1, "{changed}");
        }
    }
}
