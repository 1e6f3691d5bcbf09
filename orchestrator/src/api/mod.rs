//! The HTTP query API (axum). Handlers return their own DTOs, never store rows.
//!
//! - `GET /healthz`, `GET /readyz` (checks PostgreSQL and NATS), `GET /metrics`
//! - `GET /v1/tenants/{t}/jobs`, `…/jobs/{name}`, `…/jobs/{name}/versions`,
//!   `…/jobs/{name}/events?after=&limit=`
//! - `GET …/jobs/{name}/runtime`, `GET` and `POST …/jobs/{name}/checkpoints`:
//!   the embedded stream runtime
//! - `GET /v1/tenants/{t}/runs?job=&active=`, `…/runs/{id}`: workflow runs
//! - `GET /v1/tenants/{t}/modules`, `…/modules/{name}`: UDF modules and their versions;
//!   `PUT …/modules/{name}/versions/{version}`: an upload, `GET` the same
//!   path: its bytes
//! - `GET /v1/tenants/{t}/lineage?node=&direction=`: what the jobs read and write, as a graph
//! - `GET /v1/tenants/{t}/alerts`, `…/jobs/{name}/alerts`: what fires, and a job's rules
//! - `PUT`/`GET /v1/tenants/{t}/topics/{topic}`, `POST`/`GET …/records`: the
//!   tenant's Kafka topics, within its namespace
//!
//! [`routes`] is the one list of them: the router serves it and the OpenAPI
//! description (`docs/schemas/openapi.json`, [`openapi`]) is generated from it.
//! The bodies are the types in [`types`], which the `weir` CLI decodes too.

pub(crate) mod alerts;
pub mod auth;
pub(crate) mod jobs;
pub(crate) mod lineage;
pub(crate) mod modules;
pub mod openapi;
pub(crate) mod runtime;
pub(crate) mod secrets;
pub(crate) mod tenants;
pub(crate) mod topics;
pub mod types;
pub(crate) mod workflows;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::domain::{JobName, ModuleName, Tenant};
use crate::store::postgres::PgStore;
use openapi::{schema_of, Doc, Method, PathParam, Reply, Route};

/// Shared state for handlers.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<PgStore>,
    pub nats: async_nats::Client,
    pub metrics: PrometheusHandle,
    /// The stream runtime embedded in this process, if any.
    pub runtime: Option<std::sync::Arc<crate::runtime::cluster::ClusterRuntime>>,
    /// Who may read what (see [`auth`]).
    pub access: auth::ApiAccess,
    /// The tenants' sealed secrets.
    pub secrets: crate::secrets::SecretStore,
    /// Subject names, for the commands routes send (module uploads).
    pub subjects: crate::intake::Subjects,
    /// Validates uploaded modules; `None`: uploads are refused.
    pub host: Option<crate::wasm::WasmHost>,
    /// The Kafka brokers the topic routes reach for tenants; `None`: refused.
    pub kafka_brokers: Option<String>,
}

/// Builds the router: every route of [`routes`], and nothing else.
pub fn router(state: ApiState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler))
        .with_state(state)
}

/// The OpenAPI 3.1 description of every route.
pub fn openapi_document() -> serde_json::Value {
    openapi::document(&routes(), TAGS)
}

/// The groups routes are listed under, in the description.
const TAGS: &[(&str, &str)] = &[
    (
        "health",
        "Liveness, readiness and metrics, for probes and Prometheus.",
    ),
    (
        "admin",
        "Tenants, for the admin: quotas, usage and topic grants. Only the admin's token opens these.",
    ),
    (
        "secrets",
        "A tenant's named secrets, referenced from job specs as `${secret:NAME}`. Values go in, never out.",
    ),
    (
        "jobs",
        "Jobs as their event streams have them: phase, versions, deployment, history.",
    ),
    (
        "runtime",
        "The data plane of a job, answered by the stream runtime embedded in `weir serve`.",
    ),
    ("modules", "WASM UDF modules and their versions."),
    (
        "topics",
        "Kafka topics in the tenant's namespace (`<tenant>.…` and granted topics): create, describe, produce, read.",
    ),
    (
        "runs",
        "Workflow runs (compile, deploy, restore, rescale, ...), their steps and history.",
    ),
];

const TENANT: PathParam = PathParam {
    name: "tenant",
    description: "The tenant.",
    schema: schema_of::<Tenant>,
};
const JOB: PathParam = PathParam {
    name: "name",
    description: "The job's name.",
    schema: schema_of::<JobName>,
};
const MODULE: PathParam = PathParam {
    name: "name",
    description: "The module's name.",
    schema: schema_of::<ModuleName>,
};
const RUN: PathParam = PathParam {
    name: "id",
    description: "The run's id (a UUID), as `weir workflow runs` and `…/runs` show it.",
    schema: schema_of::<String>,
};

const VERSION: PathParam = PathParam {
    name: "version",
    description: "The version to upload, e.g. `1.0.0` (`weir udf upload` defaults to the digest's first 12 hex digits).",
    schema: schema_of::<String>,
};

const TOPIC: PathParam = PathParam {
    name: "topic",
    description: "The Kafka topic: `<tenant>.<name>`, or a topic an admin granted the tenant.",
    schema: schema_of::<String>,
};
const TOPIC_REFUSED: Reply = Reply::error(
    StatusCode::FORBIDDEN,
    "The topic is outside the tenant's namespace and not granted to it; the message says how to name it.",
);
const TOPIC_BAD: Reply = Reply::error(
    StatusCode::BAD_REQUEST,
    "The tenant or topic name, or a query field, is invalid; the message says which and why.",
);
const BROKER_DOWN: Reply = Reply::error(
    StatusCode::SERVICE_UNAVAILABLE,
    "The Kafka broker is unreachable or refused, or PostgreSQL (the tenant's grants) is unavailable.",
);

const SECRET: PathParam = PathParam {
    name: "secret",
    description: "The secret's name (1-64 of A-Z a-z 0-9 _ -).",
    schema: schema_of::<String>,
};
const SECRETS_DOWN: Reply = Reply::error(
    StatusCode::SERVICE_UNAVAILABLE,
    "PostgreSQL is unavailable, this `weir serve` has no secret key, or a stored value does not open with it.",
);
const BAD_NAME: Reply = Reply::error(
    StatusCode::BAD_REQUEST,
    "A name in the path is invalid; the message says which and why.",
);
const BAD_SNAPSHOT: Reply = Reply::error(
    StatusCode::INTERNAL_SERVER_ERROR,
    "A stored snapshot cannot be decoded.",
);
const STORE_DOWN: Reply = Reply::error(
    StatusCode::SERVICE_UNAVAILABLE,
    "PostgreSQL cannot be reached or answered with an error.",
);
const NO_RUNTIME: &str = "This `weir serve` runs no stream runtime (`--runtime none` or `sim`).";
const RUNTIME_DOWN: Reply = Reply::error(
    StatusCode::SERVICE_UNAVAILABLE,
    "The worker running the deployment did not answer in time, its store is unavailable, or the runtime failed.",
);

/// Every route the API serves, with its description.
pub fn routes() -> Vec<Route> {
    use Method::{Delete, Get, Post, Put};
    vec![
        Route::new(
            Get,
            "/healthz",
            Doc {
                operation_id: "health",
                tag: "health",
                summary: "Liveness: the process serves HTTP",
                description: "Answers `ok` without checking any dependency.",
                params: vec![],
                replies: vec![Reply::answer(StatusCode::OK, "Always `ok`.")],
            },
            healthz,
        ),
        Route::new(
            Get,
            "/readyz",
            Doc {
                operation_id: "readiness",
                tag: "health",
                summary: "Readiness: PostgreSQL and NATS are reachable",
                description: "Pings PostgreSQL (`SELECT 1`) and reads the NATS connection state.",
                params: vec![],
                replies: vec![
                    Reply::answer(StatusCode::OK, "Both are `ok`."),
                    Reply::answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "At least one is not `ok`; its field says why.",
                    ),
                ],
            },
            readyz,
        ),
        Route::new(
            Get,
            "/metrics",
            Doc {
                operation_id: "metrics",
                tag: "health",
                summary: "Prometheus metrics",
                description: "Every metric of docs/metrics.md, in the Prometheus text format 0.0.4.",
                params: vec![],
                replies: vec![Reply::answer(StatusCode::OK, "The metrics.")],
            },
            metrics_text,
        ),
        Route::new(
            Get,
            "/v1/admin/tenants",
            Doc {
                operation_id: "listTenants",
                tag: "admin",
                summary: "Every tenant ever created",
                description: "Each tenant with its quota, what the quota counts now and its topic grants; \
                    deleted ones too (`active: false`). Never a token or its hash.",
                params: vec![],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The tenants, by name."),
                    STORE_DOWN,
                ],
            },
            tenants::list,
        ),
        Route::new(
            Get,
            "/v1/admin/tenants/{tenant}",
            Doc {
                operation_id: "getTenant",
                tag: "admin",
                summary: "One tenant",
                description: "Its quota, usage and topic grants.",
                params: vec![TENANT],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The tenant."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant was never created."),
                    STORE_DOWN,
                ],
            },
            tenants::show,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs",
            Doc {
                operation_id: "listJobs",
                tag: "jobs",
                summary: "The tenant's jobs, a page at a time",
                description: "The tenant's jobs by name, deleted ones included (phase `deleted`): at most \
                    `limit` (default 500, at most 1000) whose names sort after `after`.",
                params: vec![TENANT],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The jobs; empty if the tenant has none."),
                    BAD_NAME,
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            jobs::list,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs/{name}",
            Doc {
                operation_id: "getJob",
                tag: "jobs",
                summary: "One job",
                description: "Its phase, versions, deployment and the stream version to quote as a command's `expected_version`.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The job."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant has no such job."),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            jobs::show,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs/{name}/versions",
            Doc {
                operation_id: "listJobVersions",
                tag: "jobs",
                summary: "A job's versions",
                description: "Every submitted version, oldest first, with its spec and compile status.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The versions."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant has no such job."),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            jobs::versions,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs/{name}/autotune",
            Doc {
                operation_id: "showJobAutotune",
                tag: "jobs",
                summary: "A job's auto-tuning: policy, last decision, history",
                description: "The policy in force (the deployed version's `autotune` block, with a \
                    `job.set_autotune` mode over it), the tuner's last decision with its full \
                    explanation, and the newest `autotune_decided` events, newest first.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The job's auto-tuning."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant has no such job."),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            jobs::autotune,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs/{name}/alerts",
            Doc {
                operation_id: "showJobAlerts",
                tag: "jobs",
                summary: "A job's alert rules, what fires, and their history",
                description: "The deployed version's `alerts:` rules, each with where it stands \
                    (firing or not, since when, why, how often it fired), the names of the alerts \
                    that fire, and the newest `alert_fired` / `alert_resolved` events, newest first.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The job's alerts."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant has no such job."),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            alerts::job,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/alerts",
            Doc {
                operation_id: "listFiringAlerts",
                tag: "jobs",
                summary: "What fires across the tenant",
                description: "Every firing alert of the tenant's jobs, the most severe first, then the oldest.",
                params: vec![TENANT],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The firing alerts; empty if none fires."),
                    BAD_NAME,
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            alerts::firing,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs/{name}/events",
            Doc {
                operation_id: "listJobEvents",
                tag: "jobs",
                summary: "A job's events, a page at a time",
                description: "The job stream's events in position order: why the job is where it is. \
                    Pass `next_after` back as `after` for the next page.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(
                        StatusCode::OK,
                        "A page of events; `next_after` is null on the last page.",
                    ),
                    BAD_NAME,
                    Reply::error(
                        StatusCode::NOT_FOUND,
                        "The tenant has no such job (checked when the first page, `after=0`, is empty; \
                         a later page of a missing job is empty instead).",
                    ),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            jobs::events,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs/{name}/runtime",
            Doc {
                operation_id: "getJobRuntime",
                tag: "runtime",
                summary: "A deployment's tasks, records, lag and guarantee",
                description: "Asks the worker running the job's deployment for its status.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The deployment's status."),
                    Reply::error(
                        StatusCode::BAD_REQUEST,
                        "A name in the path is invalid, or the runtime refused the request as invalid.",
                    ),
                    Reply::error(
                        StatusCode::NOT_FOUND,
                        "The job is not deployed, or this `weir serve` runs no stream runtime \
                         (`--runtime none` or `sim`).",
                    ),
                    RUNTIME_DOWN,
                ],
            },
            runtime::status,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/jobs/{name}/checkpoints",
            Doc {
                operation_id: "listCheckpoints",
                tag: "runtime",
                summary: "A job's completed checkpoints",
                description: "Every completed checkpoint of the job, newest first, whether deployed or not.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The checkpoints; empty if there are none."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, NO_RUNTIME),
                    RUNTIME_DOWN,
                ],
            },
            runtime::checkpoints,
        ),
        Route::new(
            Post,
            "/v1/tenants/{tenant}/jobs/{name}/checkpoints",
            Doc {
                operation_id: "takeCheckpoint",
                tag: "runtime",
                summary: "Take a checkpoint now",
                description: "Checkpoints the job's running deployment and answers once the checkpoint is complete. \
                    The request has no body.",
                params: vec![TENANT, JOB],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The completed checkpoint."),
                    Reply::error(
                        StatusCode::BAD_REQUEST,
                        "A name in the path is invalid, or the runtime refused the request as invalid.",
                    ),
                    Reply::error(
                        StatusCode::NOT_FOUND,
                        "The job is not deployed, or this `weir serve` runs no stream runtime \
                         (`--runtime none` or `sim`).",
                    ),
                    Reply::error(
                        StatusCode::CONFLICT,
                        "A newer generation of the deployment replaced the one checkpointing.",
                    ),
                    RUNTIME_DOWN,
                ],
            },
            runtime::checkpoint_now,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/modules",
            Doc {
                operation_id: "listModules",
                tag: "modules",
                summary: "The tenant's UDF modules, a page at a time",
                description: "The tenant's modules by name, with all their versions: at most `limit` \
                    (default 500, at most 1000) whose names sort after `after`.",
                params: vec![TENANT],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The modules; empty if the tenant has none."),
                    BAD_NAME,
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            modules::list,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/modules/{name}",
            Doc {
                operation_id: "getModule",
                tag: "modules",
                summary: "One UDF module",
                description: "The module with every uploaded version.",
                params: vec![TENANT, MODULE],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The module."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant has no such module."),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            modules::show,
        ),
        Route::new(
            Put,
            "/v1/tenants/{tenant}/modules/{name}/versions/{version}",
            Doc {
                operation_id: "uploadModule",
                tag: "modules",
                summary: "Upload a version of a UDF module",
                description: "The request body is the WebAssembly component. `weir serve` validates it \
                    (the `weir:udf` world and nothing else, within the size limit), stores it in the \
                    tenant's bucket and sends `module.register` with the caller's token, so quotas \
                    and immutability are judged on the command path. The answer is that command's \
                    outcome: accepted (no events if the same bytes were uploaded before), or refused \
                    with its rejection, in which case the bytes are removed again.",
                params: vec![TENANT, MODULE, VERSION],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The outcome of `module.register`."),
                    BAD_NAME,
                    Reply::error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "The body is larger than the largest module `weir serve` accepts.",
                    ),
                    Reply::error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "The body is not a component of the `weir:udf` world; the message says why.",
                    ),
                    Reply::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "NATS (the module store or the command path) is unavailable, or this `weir serve` validates no modules.",
                    ),
                ],
            },
            modules::upload,
        )
        .body_limit(crate::wasm::HostConfig::default().max_module_bytes + 1),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/modules/{name}/versions/{version}",
            Doc {
                operation_id: "downloadModule",
                tag: "modules",
                summary: "A version of a UDF module, as uploaded",
                description: "The WebAssembly component's bytes (`application/wasm`), read from the \
                    tenant's bucket and checked against the digest and size recorded at upload. \
                    `weir udf run NAME@VERSION` runs what this returns, so a tenant needs no rights \
                    on NATS's object store.",
                params: vec![TENANT, MODULE, VERSION],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The component."),
                    BAD_NAME,
                    Reply::error(
                        StatusCode::NOT_FOUND,
                        "The tenant has no such module, or the module no such version.",
                    ),
                    BAD_SNAPSHOT,
                    Reply::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The module store (NATS) is unavailable, or the stored bytes do not match the recorded digest.",
                    ),
                ],
            },
            modules::download,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/secrets",
            Doc {
                operation_id: "listSecrets",
                tag: "secrets",
                summary: "The tenant's secrets, by name",
                description: "Names and when each was set; never a value.",
                params: vec![TENANT],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The secrets; empty if there are none."),
                    BAD_NAME,
                    SECRETS_DOWN,
                ],
            },
            secrets::list,
        ),
        Route::new(
            Put,
            "/v1/tenants/{tenant}/secrets/{secret}",
            Doc {
                operation_id: "setSecret",
                tag: "secrets",
                summary: "Set a secret",
                description: "The request body is the value (UTF-8 text, at most 16 KiB), sealed with \
                    `weir serve`'s secret key before it is stored. Replaces an earlier value; \
                    deployments that started before keep the value they started with.",
                params: vec![TENANT, SECRET],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The secret's name and when it was set."),
                    Reply::error(
                        StatusCode::BAD_REQUEST,
                        "A name is invalid, or the value is too large or not UTF-8.",
                    ),
                    SECRETS_DOWN,
                ],
            },
            secrets::put,
        ),
        Route::new(
            Delete,
            "/v1/tenants/{tenant}/secrets/{secret}",
            Doc {
                operation_id: "deleteSecret",
                tag: "secrets",
                summary: "Delete a secret",
                description: "Later starts of a job that refers to it fail, naming it.",
                params: vec![TENANT, SECRET],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The secrets left."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant has no such secret."),
                    SECRETS_DOWN,
                ],
            },
            secrets::delete,
        ),
        Route::new(
            Put,
            "/v1/tenants/{tenant}/topics/{topic}",
            Doc {
                operation_id: "createTopic",
                tag: "topics",
                summary: "Create a topic",
                description: "Creates the topic with `cleanup.policy=delete` and the retention asked                     for, so its storage stays bounded. An existing topic is left as it is                     (`created: false`).",
                params: vec![TENANT, TOPIC],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The topic, and whether it was created now."),
                    TOPIC_BAD,
                    TOPIC_REFUSED,
                    BROKER_DOWN,
                ],
            },
            topics::create,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/topics/{topic}",
            Doc {
                operation_id: "getTopic",
                tag: "topics",
                summary: "A topic's partitions and their offsets",
                description: "Each partition's first and next offset (`low`, `high`): its records are at `low..high`.",
                params: vec![TENANT, TOPIC],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The topic's partitions."),
                    TOPIC_BAD,
                    TOPIC_REFUSED,
                    Reply::error(StatusCode::NOT_FOUND, "The topic does not exist."),
                    BROKER_DOWN,
                ],
            },
            topics::show,
        ),
        Route::new(
            Post,
            "/v1/tenants/{tenant}/topics/{topic}/records",
            Doc {
                operation_id: "produceRecords",
                tag: "topics",
                summary: "Produce records, one per line",
                description: "The request body is UTF-8 text (at most 8 MiB); every non-blank line                     becomes one record, keyed by `key_field` when the line is a JSON object with it.                     Answers once the broker acknowledged them all (an idempotent producer).",
                params: vec![TENANT, TOPIC],
                replies: vec![
                    Reply::answer(StatusCode::OK, "How many records were produced."),
                    TOPIC_BAD,
                    TOPIC_REFUSED,
                    Reply::error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "The body is larger than 8 MiB: produce in several calls.",
                    ),
                    BROKER_DOWN,
                ],
            },
            topics::produce,
        )
        .body_limit(topics::MAX_PRODUCE_BYTES),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/topics/{topic}/records",
            Doc {
                operation_id: "readRecords",
                tag: "topics",
                summary: "Read a page of one partition",
                description: "Up to `limit` records of `partition` from `offset` on. Returns at once                     with what is there; when nothing is, waits up to `wait_ms` for the next record.                     `next_offset` is where the next page starts.",
                params: vec![TENANT, TOPIC],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The records, oldest first; empty if none came."),
                    TOPIC_BAD,
                    TOPIC_REFUSED,
                    Reply::error(StatusCode::NOT_FOUND, "The topic or partition does not exist."),
                    BROKER_DOWN,
                ],
            },
            topics::read,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/lineage",
            Doc {
                operation_id: "getLineage",
                tag: "jobs",
                summary: "The tenant's lineage graph",
                description: "Topics, tables, NATS subjects and URLs as nodes; every job (its deployed \
                    version, else its latest) as edges from each topic it reads to each place it writes, \
                    with its version and phase. Deleted jobs have no edges. With `node`, only what is \
                    connected to it, `upstream`, `downstream` or `both`.",
                params: vec![TENANT],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The graph."),
                    Reply::error(
                        StatusCode::BAD_REQUEST,
                        "The tenant name or `direction` is not valid.",
                    ),
                    Reply::error(StatusCode::NOT_FOUND, "`node` is read or written by no job."),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            lineage::graph,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/runs",
            Doc {
                operation_id: "listRuns",
                tag: "runs",
                summary: "The tenant's workflow runs",
                description: "Runs newest first (by start), with their step records; the pinned definition text is left out.",
                params: vec![TENANT],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The runs; empty if none match."),
                    BAD_NAME,
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            workflows::list,
        ),
        Route::new(
            Get,
            "/v1/tenants/{tenant}/runs/{id}",
            Doc {
                operation_id: "getRun",
                tag: "runs",
                summary: "One workflow run and its history",
                description: "The run as `…/runs` shows it, plus every event of its stream in order.",
                params: vec![TENANT, RUN],
                replies: vec![
                    Reply::answer(StatusCode::OK, "The run."),
                    BAD_NAME,
                    Reply::error(StatusCode::NOT_FOUND, "The tenant has no such run."),
                    BAD_SNAPSHOT,
                    STORE_DOWN,
                ],
            },
            workflows::show,
        ),
    ]
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<ApiState>) -> (StatusCode, Json<types::Readiness>) {
    let pg = match s.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let nats = match s.nats.connection_state() {
        async_nats::connection::State::Connected => "ok".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    let code = if pg == "ok" && nats == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(types::Readiness { postgres: pg, nats }))
}

/// The `content-type` of `GET /metrics`.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// The Prometheus text exposition, sent with its content type.
pub struct PrometheusText(String);

impl IntoResponse for PrometheusText {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], self.0).into_response()
    }
}

async fn metrics_text(State(s): State<ApiState>) -> PrometheusText {
    PrometheusText(s.metrics.render())
}

/// An API error as JSON: `{"error": "..."}` with a fitting status.
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.0
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        &self.1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(types::ErrorBody { error: self.1 })).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::*;

    fn described() -> Value {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas");
        serde_json::from_str(&std::fs::read_to_string(dir.join("openapi.json")).unwrap()).unwrap()
    }

    #[test]
    fn every_path_parameter_is_described_in_order() {
        for r in routes() {
            let described: Vec<_> = r.doc.params.iter().map(|p| p.name).collect();
            assert_eq!(
                r.path_params(),
                described,
                "{} {}",
                r.method.as_str(),
                r.path
            );
        }
    }

    /// Each route once, each with one success answer and a known tag, and
    /// every route that axum may refuse (any parameter) documents its 400.
    #[test]
    fn the_description_lists_each_route_once_with_its_answers() {
        let doc = openapi_document();
        let routes = routes();
        let mut listed = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let tags: BTreeSet<_> = TAGS.iter().map(|(t, _)| *t).collect();
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for (method, op) in methods.as_object().unwrap() {
                listed.insert((method.to_uppercase(), path.clone()));
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()));
                assert!(tags.contains(op["tags"][0].as_str().unwrap()));
                let responses = op["responses"].as_object().unwrap();
                assert!(responses["200"]["content"].is_object(), "{method} {path}");
                if op.get("parameters").is_some() {
                    let bad = &responses["400"]["content"];
                    assert!(bad[openapi::PLAIN_TEXT].is_object(), "{method} {path}");
                }
            }
        }
        let served: BTreeSet<_> = routes
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(served.len(), routes.len(), "a route is listed twice");
        assert_eq!(listed, served);
    }

    /// A state whose services are unreachable: enough to route requests,
    /// since every tenant route checks its names before it touches a service.
    async fn unreachable_state() -> ApiState {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(200))
            .connect_lazy("postgres://weir@127.0.0.1:1/weir")
            .unwrap();
        let nats = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("127.0.0.1:1")
            .await
            .unwrap();
        ApiState {
            store: Arc::new(PgStore::from_pool(pool.clone())),
            nats,
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            runtime: None,
            access: auth::ApiAccess {
                access: crate::intake::auth::Access::InsecureDev,
                protect_metrics: false,
            },
            secrets: crate::secrets::SecretStore::new(pool.clone(), None),
            subjects: crate::intake::Subjects::new("weir"),
            host: None,
            kafka_brokers: None,
        }
    }

    /// The router, probed over HTTP: every described (method, path) reaches
    /// a handler, and every other method on those paths is 405. An unrouted
    /// request is a 404 with an empty body, which no handler sends.
    #[tokio::test]
    async fn the_router_serves_exactly_the_described_routes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(unreachable_state().await);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();

        let doc = described();
        let mut paths = 0;
        for (path, methods) in doc["paths"].as_object().unwrap() {
            paths += 1;
            // An invalid tenant is refused before any service is asked.
            let url = base.clone()
                + &path
                    .replace("{tenant}", "Not-A-Tenant")
                    .replace("{name}", "orders")
                    .replace("{id}", "r1");
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let res = http.request(m, &url).send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.bytes().await.unwrap();
                if methods.get(method.to_lowercase()).is_some() {
                    assert!(
                        status != 405 && !(status == 404 && body.is_empty()),
                        "{method} {path} is described but not served ({status})"
                    );
                } else {
                    assert_eq!(status, 405, "{method} {path} is served but not described");
                }
            }
        }
        let served: BTreeSet<_> = routes().iter().map(|r| r.path).collect();
        assert_eq!(paths, served.len());
        let res = http
            .get(base + "/v1/tenants/acme/nope")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 404);
        assert!(res.bytes().await.unwrap().is_empty());
    }

    /// docs/api.md has a section per route, and each JSON example there
    /// validates against the schema named at the end of the line before it
    /// (``as `Name`:``).
    #[test]
    fn the_reference_page_matches_the_description() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let page = std::fs::read_to_string(dir.join("api.md")).unwrap();
        let sections: BTreeSet<String> = page
            .lines()
            .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`'))
            .map(str::to_owned)
            .collect();
        let served: BTreeSet<String> = routes()
            .iter()
            .map(|r| format!("{} {}", r.method.as_str(), r.path))
            .collect();
        assert_eq!(sections, served);

        let components = described()["components"].clone();
        let mut blocks = page.split("```json");
        let mut before = blocks.next().unwrap_or_default();
        let mut seen = 0;
        for block in blocks {
            let line = before
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            let name = line
                .trim_end()
                .strip_suffix("`:")
                .and_then(|l| l.rsplit('`').next())
                .unwrap_or_else(|| panic!("no `Name`: before the example after {line:?}"));
            let (text, rest) = block.split_once("```").unwrap();
            let example: Value = serde_json::from_str(text).unwrap();
            let root =
                json!({"$ref": format!("#/components/schemas/{name}"), "components": components});
            let v = jsonschema::validator_for(&root).unwrap();
            let errors: Vec<_> = v.iter_errors(&example).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {example}: {errors:?}");
            seen += 1;
            before = rest;
        }
        assert!(seen >= 10, "only {seen} examples");
    }

    /// The committed description, read as a client reads it: what the
    /// handlers send validates against the schema it names.
    #[test]
    fn answers_validate_against_the_published_description() {
        let doc = described();
        let validate = |schema: &str, value: Value| {
            let root = json!({
                "$ref": format!("#/components/schemas/{schema}"),
                "components": doc["components"],
            });
            let v = jsonschema::validator_for(&root).unwrap();
            let errors: Vec<_> = v.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{schema}: {value}: {errors:?}");
        };
        let at = chrono::Utc::now();
        let event = crate::store::StoredEvent {
            position: 1042,
            tenant: "acme".into(),
            stream: "job.orders".into(),
            stream_version: 5,
            event_type: "stop_requested".into(),
            payload: json!({"type": "stop_requested", "generation": 3}),
            command_id: Some(uuid::Uuid::now_v7()),
            actor: Some("alice".into()),
            recorded_at: at,
        };
        let page = types::EventPage {
            events: vec![event],
            next_after: Some(1042),
        };
        validate("EventPage", serde_json::to_value(&page).unwrap());
        let status = types::DeploymentStatus {
            key: crate::runtime::control::DeploymentKey {
                tenant: "acme".into(),
                job: "orders".into(),
            },
            version: 2,
            generation: 3,
            parallelism: 1,
            guarantee: "exactly-once (deterministic replay)".into(),
            tasks: vec![types::TaskStatus {
                task: 0,
                partitions: vec![0, 1],
                state: types::TaskState::Failed("boom".into()),
                records_in: 10,
                records_out: 9,
                dead_lettered: 1,
                lag: None,
                restarts: 2,
                last_checkpoint: Some("c1".into()),
                last_error: Some("sink `postgres:t`: table not found".into()),
                operators: [("fraud".to_owned(), [("cep_matches".to_owned(), 3)].into())].into(),
            }],
            completed_checkpoints: 4,
        };
        validate("DeploymentStatus", serde_json::to_value(&status).unwrap());
        let run = types::RunDetail {
            run: types::RunView {
                run_id: "r1".into(),
                workflow: "deploy".into(),
                file: "deploy.yaml".into(),
                definition_sha256: "ab".into(),
                status: crate::domain::workflow::state::RunStatus::Paused,
                job: Some("orders".into()),
                input: json!({"job": "orders"}),
                current: None,
                reason: Some("why".into()),
                outputs: None,
                steps: Default::default(),
                started_at: Some(at),
                updated_at: None,
            },
            events: vec![],
        };
        validate("RunDetail", serde_json::to_value(&run).unwrap());
        validate(
            "ErrorBody",
            json!({"error": "job `x` not found in tenant `acme`"}),
        );
        validate(
            "Readiness",
            json!({"postgres": "ok", "nats": "disconnected"}),
        );

        let mut bad = serde_json::to_value(&page).unwrap();
        bad["events"][0]["payload"] = json!({"type": "no_such_event"});
        let root =
            json!({"$ref": "#/components/schemas/EventPage", "components": doc["components"]});
        assert!(!jsonschema::validator_for(&root).unwrap().is_valid(&bad));
    }
}
