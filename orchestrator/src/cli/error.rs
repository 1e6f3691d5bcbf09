//! Why the CLI failed, and the exit code each reason maps to.

/// Why the CLI failed; each maps to an exit code (see [`CliError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command was decided and refused (its reason is printed with the outcome).
    #[error("command rejected")]
    Rejected,
    /// Bad usage or input: a file, a name, a flag, something the API refused as invalid.
    #[error("{0}")]
    Usage(String),
    /// NATS, PostgreSQL, Kafka or the HTTP API could not be reached or answered with an error.
    #[error("{0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("{0}")]
    Timeout(String),
    /// Something that should not happen: an answer we cannot read, a task that panicked.
    #[error("{context}: {source}")]
    Unexpected {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CliError {
    /// An unexpected failure of `context`.
    pub fn unexpected(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CliError::Unexpected {
            context: context.into(),
            source: source.into(),
        }
    }

    /// 0 is success; 1 rejected, 2 bad usage or input, 3 a service is
    /// unreachable, 4 timed out, 5 unexpected.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Rejected => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
            CliError::Timeout(_) => 4,
            CliError::Unexpected { .. } => 5,
        }
    }
}

impl From<crate::client::ClientError> for CliError {
    fn from(e: crate::client::ClientError) -> Self {
        use crate::client::ClientError as C;
        match e {
            C::Unreachable(m) => CliError::Unreachable(m),
            C::Timeout(m) => CliError::Timeout(m),
            C::Encode(e) => CliError::Usage(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_exit_code() {
        let io = || std::io::Error::other("boom");
        let codes = [
            CliError::Rejected.exit_code(),
            CliError::Usage("u".into()).exit_code(),
            CliError::Unreachable("n".into()).exit_code(),
            CliError::Timeout("t".into()).exit_code(),
            CliError::unexpected("decode", io()).exit_code(),
        ];
        assert_eq!(codes, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn an_unexpected_error_says_what_failed_and_why() {
        let e = CliError::unexpected("reading the answer", std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "reading the answer: boom");
    }
}
