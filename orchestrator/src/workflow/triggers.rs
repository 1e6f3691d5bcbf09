//! Which job events start which workflow, and with what input.
//!
//! | job event | cause | workflow |
//! |---|---|---|
//! | `compile_requested` | | `compile.yaml` |
//! | `deploy_requested` | `deploy`, `rollback` | `deploy.yaml` (a rollback deploys the stable version) |
//! | `deploy_requested` | `upgrade` / `restore` / `rescale` | `upgrade.yaml` / `restore.yaml` / `rescale.yaml` |
//! | `stop_requested` | | `stop.yaml` |
//! | `alert_fired`, `alert_resolved` | the rule has `notify` targets | `alert.yaml` |
//!
//! A run's id is derived from the triggering event's position, so every
//! replica that sees the event proposes the same run, and it starts once.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::store::StoredEvent;

/// Namespace of run ids derived from trigger positions.
pub const RUN_NAMESPACE: Uuid = Uuid::from_u128(0x5e1f_0a0c_77d4_4c4e_9a7e_3c1b_2f00_0002);

/// A run a job event asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub run_id: Uuid,
    pub tenant: String,
    pub job: String,
    /// The workflow file, e.g. `deploy.yaml`.
    pub file: String,
    pub input: Value,
}

/// The workflow file for a job event, if it starts one.
pub fn workflow_file(event_type: &str, payload: &Value) -> Option<String> {
    // A lifecycle command may name its own workflow; it travels in the event.
    if let Some(w) = payload.get("workflow").and_then(|w| w.as_str()) {
        return Some(if w.ends_with(".yaml") {
            w.to_owned()
        } else {
            format!("{w}.yaml")
        });
    }
    let file = match event_type {
        "compile_requested" => "compile.yaml",
        "stop_requested" => "stop.yaml",
        "alert_fired" | "alert_resolved" => match payload.get("notify") {
            Some(Value::Object(targets)) if !targets.is_empty() => "alert.yaml",
            _ => return None,
        },
        "deploy_requested" => match payload.get("cause").and_then(|c| c.as_str()) {
            Some("upgrade") => "upgrade.yaml",
            Some("restore") => "restore.yaml",
            Some("rescale") => "rescale.yaml",
            _ => "deploy.yaml",
        },
        _ => return None,
    };
    Some(file.to_owned())
}

/// The run `event` starts, if any.
pub fn trigger_for(event: &StoredEvent) -> Option<Trigger> {
    let job = event.stream.strip_prefix("job.")?;
    let file = workflow_file(&event.event_type, &event.payload)?;
    let mut input = match &event.payload {
        Value::Object(m) => m.clone(),
        _ => Default::default(),
    };
    input.remove("type");
    input.insert("tenant".into(), json!(event.tenant));
    input.insert("job".into(), json!(job));
    input.insert("event".into(), json!(event.event_type));
    input.insert(
        "trigger".into(),
        json!({"position": event.position, "stream_version": event.stream_version}),
    );
    Some(Trigger {
        run_id: Uuid::new_v5(
            &RUN_NAMESPACE,
            format!("{}/{}", event.tenant, event.position).as_bytes(),
        ),
        tenant: event.tenant.clone(),
        job: job.to_owned(),
        file,
        input: Value::Object(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: &str, payload: Value) -> StoredEvent {
        StoredEvent {
            position: 42,
            tenant: "acme".into(),
            stream: "job.orders".into(),
            stream_version: 7,
            event_type: t.into(),
            payload,
            command_id: None,
            actor: None,
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn maps_events_to_workflows() {
        let file = |t: &str, p: Value| trigger_for(&event(t, p)).map(|t| t.file);
        assert_eq!(
            file("compile_requested", json!({"version": 1})).as_deref(),
            Some("compile.yaml")
        );
        for (cause, wf) in [
            ("deploy", "deploy.yaml"),
            ("rollback", "deploy.yaml"),
            ("upgrade", "upgrade.yaml"),
            ("restore", "restore.yaml"),
            ("rescale", "rescale.yaml"),
        ] {
            assert_eq!(
                file("deploy_requested", json!({"cause": cause})).as_deref(),
                Some(wf)
            );
        }
        assert_eq!(
            file("stop_requested", json!({})).as_deref(),
            Some("stop.yaml")
        );
        assert_eq!(file("running", json!({})), None);
        assert_eq!(
            file("alert_fired", json!({"notify": {"subject": "alerts.x"}})).as_deref(),
            Some("alert.yaml")
        );
        assert_eq!(file("alert_resolved", json!({"rule": "lag"})), None);
        assert_eq!(
            file(
                "deploy_requested",
                json!({"cause": "deploy", "workflow": "canary"})
            )
            .as_deref(),
            Some("canary.yaml")
        );
    }

    #[test]
    fn the_run_id_and_input_come_from_the_event() {
        let t = trigger_for(&event(
            "deploy_requested",
            json!({"type": "deploy_requested", "version": 2}),
        ))
        .unwrap();
        assert_eq!(
            t.run_id,
            trigger_for(&event("deploy_requested", json!({})))
                .unwrap()
                .run_id
        );
        assert_eq!(t.input["job"], "orders");
        assert_eq!(t.input["version"], 2);
        assert_eq!(t.input["trigger"]["stream_version"], 7);
        assert!(t.input.get("type").is_none());
    }
}
