//! NATS subject and JetStream stream names. A prefix (default `weir`) lets
//! tests and side-by-side installations share one NATS server without overlap.

/// All subject and stream names for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `weir.cmd.<tenant>.<kind>`: where clients publish commands.
    pub fn command(&self, tenant: &str, kind: &str) -> String {
        format!("{}.cmd.{tenant}.{kind}", self.prefix)
    }

    /// `weir.out.<tenant>.<command id>`: the outcome of one command.
    pub fn outcome(&self, tenant: &str, id: &str) -> String {
        format!("{}.out.{tenant}.{id}", self.prefix)
    }

    /// `weir.evt.<tenant>.<stream>`: domain events, relayed from the outbox.
    pub fn event(&self, tenant: &str, stream: &str) -> String {
        format!("{}.evt.{tenant}.{stream}", self.prefix)
    }

    /// `weir.dlq.<tenant>`: commands that could not be processed, with the reason.
    pub fn dead_letter(&self, tenant: &str) -> String {
        format!("{}.dlq.{tenant}", self.prefix)
    }

    /// The tenant token of a command subject, if it is one.
    pub fn tenant_of_command<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix(".cmd.")?;
        rest.split('.').next().filter(|t| !t.is_empty())
    }

    /// The command kind a command subject names (what follows the tenant).
    pub fn kind_of_command<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix(".cmd.")?;
        rest.split_once('.')
            .map(|(_, k)| k)
            .filter(|k| !k.is_empty())
    }

    fn stream_name(&self, suffix: &str) -> String {
        let base: String = self
            .prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{base}_{suffix}")
    }

    pub fn command_stream(&self) -> String {
        self.stream_name("CMD")
    }
    pub fn outcome_stream(&self) -> String {
        self.stream_name("OUT")
    }
    pub fn event_stream(&self) -> String {
        self.stream_name("EVT")
    }
    pub fn dead_letter_stream(&self) -> String {
        self.stream_name("DLQ")
    }
    pub fn all(&self, kind: &str) -> String {
        format!("{}.{kind}.>", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let s = Subjects::new("t-1");
        assert_eq!(s.command("acme", "job.create"), "t-1.cmd.acme.job.create");
        assert_eq!(s.tenant_of_command("t-1.cmd.acme.job.create"), Some("acme"));
        assert_eq!(s.tenant_of_command("t-1.out.acme.x"), None);
        assert_eq!(
            s.kind_of_command("t-1.cmd.acme.job.create"),
            Some("job.create")
        );
        assert_eq!(s.kind_of_command("t-1.cmd.acme"), None);
        assert_eq!(s.kind_of_command("t-1.cmd.acme."), None);
        assert_eq!(s.command_stream(), "T_1_CMD");
    }
}
