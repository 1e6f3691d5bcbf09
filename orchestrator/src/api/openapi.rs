//! The OpenAPI 3.1 description of the HTTP API (`docs/schemas/openapi.json`,
//! written by `weir schema`). It is read off the route table the router is
//! built from ([`super::routes`]): methods, paths, path parameters and the
//! statuses from the table, the query and the body schemas from each
//! handler's own signature. So a route cannot be served without being
//! described, and a handler that changes what it returns changes the
//! description, which the drift test in `schema.rs` then catches.

use std::future::Future;

use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::types::ErrorBody;
use super::{ApiError, ApiState, PrometheusText};

/// What axum sends for a `&str` body and for its own rejections.
pub const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

/// The methods the API serves. `HEAD` is answered wherever `GET` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A `{name}` segment of a route's path.
pub struct PathParam {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

/// The schema of `T`, as a [`PathParam::schema`].
pub fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What a response of a given status carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// The handler's own answer (its type is read off the handler).
    Answer,
    /// An [`ErrorBody`].
    Error,
}

/// One status a route answers with, and when.
pub struct Reply {
    pub status: StatusCode,
    pub when: &'static str,
    pub carries: Carries,
}

impl Reply {
    pub const fn answer(status: StatusCode, when: &'static str) -> Self {
        Self {
            status,
            when,
            carries: Carries::Answer,
        }
    }

    pub const fn error(status: StatusCode, when: &'static str) -> Self {
        Self {
            status,
            when,
            carries: Carries::Error,
        }
    }
}

/// The words of one route's description; everything else is read off the code.
pub struct Doc {
    pub operation_id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    /// In the order they appear in the path.
    pub params: Vec<PathParam>,
    pub replies: Vec<Reply>,
}

/// A response body as sent.
pub enum Body {
    Json(Schema),
    /// Text, with its `content-type`.
    Text(&'static str),
    /// Bytes, with their `content-type`.
    Binary(&'static str),
}

/// A handler's return type, as it appears on the wire.
pub trait Answer {
    fn body(g: &mut SchemaGenerator) -> Body;
}

impl<T: JsonSchema> Answer for Result<Json<T>, ApiError> {
    fn body(g: &mut SchemaGenerator) -> Body {
        Body::Json(g.subschema_for::<T>())
    }
}

impl<T: JsonSchema> Answer for (StatusCode, Json<T>) {
    fn body(g: &mut SchemaGenerator) -> Body {
        Body::Json(g.subschema_for::<T>())
    }
}

impl Answer for &'static str {
    fn body(_: &mut SchemaGenerator) -> Body {
        Body::Text(PLAIN_TEXT)
    }
}

impl Answer for PrometheusText {
    fn body(_: &mut SchemaGenerator) -> Body {
        Body::Text(super::PROMETHEUS_TEXT)
    }
}

impl Answer for Result<super::modules::WasmBytes, ApiError> {
    fn body(_: &mut SchemaGenerator) -> Body {
        Body::Binary(super::modules::WASM)
    }
}

/// A handler's argument (an axum extractor), as it appears on the wire.
pub trait Argument {
    /// When axum refuses the request (400, plain text) before the handler runs.
    const REJECTS_WHEN: Option<&'static str> = None;

    /// The query string's fields, if this extractor reads them.
    fn query(_: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
}

impl<S> Argument for State<S> {}

/// A raw request body (a secret's value).
impl Argument for axum::body::Bytes {
    const REJECTS_WHEN: Option<&'static str> = Some("the body cannot be read");
}

/// Request headers (the caller's token, passed on with its command).
impl Argument for axum::http::HeaderMap {}

impl<T> Argument for Path<T> {
    const REJECTS_WHEN: Option<&'static str> =
        Some("a path segment is not UTF-8 once percent-decoded");
}

impl<T: JsonSchema> Argument for Query<T> {
    const REJECTS_WHEN: Option<&'static str> =
        Some("the query string does not parse (e.g. `limit=ten`)");

    fn query(g: &mut SchemaGenerator) -> Option<Schema> {
        Some(g.root_schema_for::<T>())
    }
}

/// What a handler's signature says about the wire.
pub struct Io {
    query: Option<Schema>,
    rejects_when: Vec<&'static str>,
    body: Body,
}

/// Implemented by every handler whose arguments are [`Argument`]s and whose
/// return type is an [`Answer`]; `Args` is its argument list.
pub trait Handles<Args> {
    fn io(answers: &mut SchemaGenerator, queries: &mut SchemaGenerator) -> Io;
}

macro_rules! handles {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg),*> Handles<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future,
            Fut::Output: Answer,
            $($arg: Argument,)*
        {
            // A handler without arguments reads no query and is never refused.
            #[allow(unused_mut, unused_variables)]
            fn io(answers: &mut SchemaGenerator, queries: &mut SchemaGenerator) -> Io {
                let mut query = None;
                let mut rejects_when = Vec::new();
                $(
                    query = query.or_else(|| <$arg as Argument>::query(queries));
                    rejects_when.extend(<$arg as Argument>::REJECTS_WHEN);
                )*
                Io {
                    query,
                    rejects_when,
                    body: <Fut::Output as Answer>::body(answers),
                }
            }
        }
    };
}

handles!();
handles!(A);
handles!(A, B);
handles!(A, B, C);
handles!(A, B, C, D);

/// One route: served by the router and listed by the description, both from here.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub doc: Doc,
    pub(super) handler: MethodRouter<ApiState>,
    io: fn(&mut SchemaGenerator, &mut SchemaGenerator) -> Io,
}

impl Route {
    pub fn new<H, T, A>(method: Method, path: &'static str, doc: Doc, handler: H) -> Self
    where
        H: Handler<T, ApiState> + Handles<A>,
        T: 'static,
    {
        Self {
            method,
            path,
            doc,
            handler: on(method.filter(), handler),
            io: <H as Handles<A>>::io,
        }
    }

    /// Bodies up to `bytes` (axum's default is 2 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }

    /// The `{name}` segments of the path, in order.
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

/// The OpenAPI document for `routes`, grouped under `tags` (name, description).
pub fn document(routes: &[Route], tags: &[(&str, &str)]) -> Value {
    // Responses are described as sent (serialize contract), with shared types
    // under `components/schemas`; query fields as parsed, inlined.
    let mut answers = SchemaSettings::draft2020_12()
        .for_serialize()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut queries = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let error = answers.subschema_for::<ErrorBody>();

    let mut paths = Map::new();
    for route in routes {
        let io = (route.io)(&mut answers, &mut queries);
        let op = operation(route, io, &error, &mut answers);
        let entry = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.as_str().to_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Weir HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "What `weir serve` answers over HTTP (docs/api.md): jobs, modules and \
                workflow runs as their events left them, the embedded runtime's status and \
                checkpoints, health and metrics. Jobs, modules and runs change only through \
                commands on NATS (docs/commands.md). Generated from the code by `weir schema`.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "servers": [{
            "url": "http://127.0.0.1:8080",
            "description": "`weir serve` at its default `--http-addr`",
        }],
        "tags": tags.iter()
            .map(|(name, description)| json!({ "name": name, "description": description }))
            .collect::<Vec<_>>(),
        "paths": paths,
        "components": { "schemas": answers.take_definitions(true) },
    })
}

fn operation(route: &Route, io: Io, error: &Schema, g: &mut SchemaGenerator) -> Value {
    let doc = &route.doc;
    let mut parameters: Vec<Value> = doc
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": "path",
                "required": true,
                "description": p.description,
                "schema": (p.schema)(g),
            })
        })
        .collect();
    if let Some(query) = &io.query {
        parameters.extend(query_parameters(query));
    }

    let text = json!({ "schema": { "type": "string" } });
    let mut responses = Map::new();
    for reply in &doc.replies {
        let mut content = Map::new();
        let mut description = reply.when.to_owned();
        match (reply.carries, &io.body) {
            (Carries::Answer, Body::Json(schema)) => {
                content.insert("application/json".into(), json!({ "schema": schema }));
            }
            (Carries::Answer, Body::Text(content_type)) => {
                content.insert((*content_type).into(), text.clone());
            }
            (Carries::Answer, Body::Binary(content_type)) => {
                content.insert(
                    (*content_type).into(),
                    json!({ "schema": { "type": "string", "format": "binary" } }),
                );
            }
            (Carries::Error, _) => {
                content.insert("application/json".into(), json!({ "schema": error }));
            }
        }
        if reply.status == StatusCode::BAD_REQUEST && !io.rejects_when.is_empty() {
            content.insert(PLAIN_TEXT.into(), text.clone());
            description += &format!(
                " Also refused, in plain text and before the handler runs, when {}.",
                io.rejects_when.join(" or ")
            );
        }
        responses.insert(
            reply.status.as_u16().to_string(),
            json!({ "description": description, "content": content }),
        );
    }

    let mut op = Map::new();
    op.insert("operationId".into(), doc.operation_id.into());
    op.insert("tags".into(), json!([doc.tag]));
    op.insert("summary".into(), doc.summary.into());
    if !doc.description.is_empty() {
        op.insert("description".into(), doc.description.into());
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), parameters.into());
    }
    op.insert("responses".into(), responses.into());
    Value::Object(op)
}

/// One query parameter per field of the query type.
fn query_parameters(query: &Schema) -> Vec<Value> {
    let required: Vec<&str> = query
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(fields) = query.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    fields
        .iter()
        .map(|(name, schema)| {
            let mut schema = schema.clone();
            let mut param = Map::new();
            param.insert("name".into(), name.as_str().into());
            param.insert("in".into(), "query".into());
            param.insert("required".into(), required.contains(&name.as_str()).into());
            if let Some(s) = schema.as_object_mut() {
                if let Some(description) = s.remove("description") {
                    param.insert("description".into(), description);
                }
                // A query string cannot say null: leaving the field out is
                // how a client leaves an optional one unset.
                if let Some(Value::Array(types)) = s.get_mut("type") {
                    types.retain(|t| t != "null");
                    if let [only] = types.as_slice() {
                        let only = only.clone();
                        s.insert("type".into(), only);
                    }
                }
                if s.get("default") == Some(&Value::Null) {
                    s.remove("default");
                }
            }
            param.insert("schema".into(), schema);
            Value::Object(param)
        })
        .collect()
}
