//! `key_by`: sets a record's key from a dot-separated path into its JSON value.

use super::super::operator::{BatchContext, Operator, OperatorError, RecordResult};
use super::super::record::Record;
use super::super::state::PartitionState;

/// Re-keys records by a JSON field. Records whose value is not JSON or lacks
/// the field are dead-lettered.
#[derive(Debug, Clone)]
pub struct KeyBy {
    path: Vec<String>,
    module: String,
}

impl KeyBy {
    pub fn new(id: &str, field: &str) -> Self {
        Self {
            path: field.split('.').map(str::to_owned).collect(),
            module: format!("key_by:{id}"),
        }
    }
}

/// Reads `path` from a JSON document. Strings become their bytes; other
/// values their compact JSON text.
pub fn extract_field(value: &[u8], path: &[String]) -> Result<Vec<u8>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
    let mut cur = &doc;
    for part in path {
        cur = cur
            .get(part)
            .ok_or_else(|| format!("field `{}` is missing", path.join(".")))?;
    }
    Ok(match cur {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        serde_json::Value::Null => return Err(format!("field `{}` is null", path.join("."))),
        other => other.to_string().into_bytes(),
    })
}

impl Operator for KeyBy {
    fn process_batch(
        &mut self,
        records: &[Record],
        _state: &mut PartitionState,
        _ctx: BatchContext<'_>,
    ) -> Result<Vec<RecordResult>, OperatorError> {
        Ok(records
            .iter()
            .map(|r| match extract_field(&r.value, &self.path) {
                Ok(key) => {
                    let mut out = r.clone();
                    out.key = Some(key.into());
                    RecordResult::Emit(vec![out])
                }
                Err(reason) => RecordResult::DeadLetter { reason },
            })
            .collect())
    }

    fn module(&self) -> &str {
        &self.module
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_nested_fields_and_dead_letters_the_rest() {
        let mut op = KeyBy::new("k", "user.id");
        let recs = [
            Record::value(r#"{"user":{"id":"alice"}}"#),
            Record::value(r#"{"user":{"id":7}}"#),
            Record::value(r#"{"user":{}}"#),
            Record::value("not json"),
        ];
        let ctx = BatchContext::whole(0, None);
        let res = op
            .process_batch(&recs, &mut PartitionState::default(), ctx)
            .unwrap();
        let key = |i: usize| match &res[i] {
            RecordResult::Emit(v) => v[0].key.clone(),
            RecordResult::DeadLetter { .. } => None,
        };
        assert_eq!(key(0).as_deref(), Some(&b"alice"[..]));
        assert_eq!(key(1).as_deref(), Some(&b"7"[..]));
        assert!(
            matches!(&res[2], RecordResult::DeadLetter { reason } if reason.contains("user.id"))
        );
        assert!(matches!(&res[3], RecordResult::DeadLetter { reason } if reason.contains("JSON")));
    }
}
