//! What a tenant's sinks may name. A job spec is untrusted: a NATS sink on
//! Weir's own command subjects would act as another tenant, one on `$JS.…`
//! would drive the JetStream API, and a PostgreSQL sink naming a schema
//! would reach Weir's tables. Checked when a spec is submitted, and again
//! by the runtime, which knows the installation's subject prefix.

/// The subject prefix of an installation that did not choose one.
pub const DEFAULT_PREFIX: &str = "weir";

/// Why `subject` may not be a sink's, if it may not. `prefix` is Weir's own
/// subject prefix (the default one when not known).
pub fn subject_problem(subject: &str, prefix: Option<&str>) -> Option<String> {
    let prefix = prefix.unwrap_or(DEFAULT_PREFIX);
    if subject.is_empty() {
        return Some("must not be empty".into());
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters".into());
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return Some("has an empty token (`..`, or a leading or trailing `.`)".into());
    }
    if tokens.iter().any(|t| *t == "*" || *t == ">") {
        return Some("is a wildcard; publish on one subject".into());
    }
    if subject.starts_with('$') {
        return Some("`$` subjects are the NATS server's own (JetStream, system)".into());
    }
    if tokens[0] == "_INBOX" {
        return Some("`_INBOX` subjects carry other clients' replies".into());
    }
    if tokens[0] == prefix {
        return Some(format!(
            "`{prefix}.…` subjects are Weir's own (commands, outcomes, events, metrics)"
        ));
    }
    None
}

/// Why `table` may not be a PostgreSQL sink's table, if it may not: it is
/// a bare name, resolved in the tenant's own schema.
pub fn table_problem(table: &str) -> Option<String> {
    if table.contains('.') {
        return Some("name the table without a schema: it lives in the tenant's own schema".into());
    }
    let ok = !table.is_empty()
        && table.len() <= 63
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (!ok).then(|| "must be 1-63 letters, digits and '_'".into())
}

/// Why `url` may not be an HTTP sink's, if it may not: an `http://` or
/// `https://` URL with a host. (Which addresses it may reach is the
/// runtime's to check: `runtime::sinks::egress`.)
pub fn url_problem(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        None => Some("must start with http:// or https://".into()),
        Some(r) if r.is_empty() || r.starts_with('/') => Some("has no host".into()),
        Some(r) if r.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Some("must not contain spaces or control characters".into())
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_that_reach_into_weir_or_the_server_are_refused() {
        assert_eq!(subject_problem("alerts.fraud", None), None);
        assert_eq!(subject_problem("acme.out", Some("t-1")), None);
        for bad in [
            "weir.cmd.victim.job.delete",
            "$JS.API.STREAM.DELETE.WEIR_CMD",
            "$SYS.REQ.SERVER.PING",
            "_INBOX.abc",
            "alerts.*",
            "alerts.>",
            "a..b",
            ".a",
            "a b",
            "",
        ] {
            assert!(subject_problem(bad, None).is_some(), "{bad}");
        }
        assert!(subject_problem("t-1.cmd.victim.job.delete", Some("t-1")).is_some());
        assert_eq!(subject_problem("weir.x", Some("t-1")), None);
    }

    #[test]
    fn urls_are_http_with_a_host() {
        assert_eq!(url_problem("https://hooks.example.com/a"), None);
        assert!(url_problem("file:///etc/passwd").is_some());
        assert!(url_problem("http:///x").is_some());
        assert!(url_problem("http://a b/").is_some());
    }

    #[test]
    fn tables_are_bare_names() {
        assert_eq!(table_problem("user_counts"), None);
        assert!(table_problem("weir.outbox_cursors").is_some());
        assert!(table_problem("outbox cursors").is_some());
        assert!(table_problem("").is_some());
        assert!(table_problem(&"t".repeat(64)).is_some());
    }
}
