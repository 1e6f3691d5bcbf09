//! Loading workflow files: the `file:line: field: problem` errors users see,
//! and the catalog the engine picks definitions from.
//!
//! The catalog reads the directory on every lookup, so an edited file is used
//! by the next run that starts; runs already started keep the text they pinned.
//! Files shipped in `workflows/` are compiled in as a fallback, so `weir serve`
//! works from any directory.

use std::path::{Path, PathBuf};

use crate::domain::document::{self, Problem};
use crate::domain::workflow::spec::WorkflowSpec;
use crate::domain::workflow::validate;

use super::activities::NAMES;

/// The workflows Weir ships, by file name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "compile.yaml",
        include_str!("../../../workflows/compile.yaml"),
    ),
    (
        "deploy.yaml",
        include_str!("../../../workflows/deploy.yaml"),
    ),
    (
        "restore.yaml",
        include_str!("../../../workflows/restore.yaml"),
    ),
    (
        "upgrade.yaml",
        include_str!("../../../workflows/upgrade.yaml"),
    ),
    (
        "rescale.yaml",
        include_str!("../../../workflows/rescale.yaml"),
    ),
    ("stop.yaml", include_str!("../../../workflows/stop.yaml")),
    (
        "autotune.yaml",
        include_str!("../../../workflows/autotune.yaml"),
    ),
    ("alert.yaml", include_str!("../../../workflows/alert.yaml")),
];

/// A file that failed to load: one line per problem, `file:line: field: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", document::render(.file, .problems))]
pub struct LoadError {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// Checks a definition's text as the engine will, against the engine's activities.
pub fn check_text(file: &str, text: &str) -> Result<WorkflowSpec, LoadError> {
    validate::parse(text, Some(NAMES)).map_err(|problems| LoadError {
        file: file.to_owned(),
        problems,
    })
}

/// Reads and checks a file.
pub fn load_file(path: &Path) -> Result<(String, WorkflowSpec), LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: file.clone(),
        problems: vec![Problem::new("(file)", format!("cannot read: {e}"))],
    })?;
    let spec = check_text(&file, &text)?;
    Ok((text, spec))
}

/// A definition ready to start a run with.
#[derive(Debug, Clone)]
pub struct Definition {
    pub file: String,
    pub text: String,
}

/// Where definitions come from: a directory, then the built-in files.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: Option<PathBuf>,
}

impl Catalog {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The current, checked definition of `file` (e.g. `deploy.yaml`).
    pub fn get(&self, file: &str) -> Result<Definition, LoadError> {
        let bad_name = file.contains('/') || file.contains("..") || !file.ends_with(".yaml");
        if bad_name {
            return Err(LoadError {
                file: file.to_owned(),
                problems: vec![Problem::new(
                    "(file)",
                    "a workflow is named by a file name ending in .yaml",
                )],
            });
        }
        if let Some(dir) = &self.dir {
            let path = dir.join(file);
            if path.exists() {
                let (text, _) = load_file(&path)?;
                return Ok(Definition {
                    file: file.to_owned(),
                    text,
                });
            }
        }
        match BUILTIN.iter().find(|(name, _)| *name == file) {
            Some((name, text)) => {
                check_text(name, text)?;
                Ok(Definition {
                    file: (*name).to_owned(),
                    text: (*text).to_owned(),
                })
            }
            None => Err(LoadError {
                file: file.to_owned(),
                problems: vec![Problem::new(
                    "(file)",
                    format!(
                        "no such workflow in {} or among the built-in ones",
                        self.dir
                            .as_ref()
                            .map(|d| d.display().to_string())
                            .unwrap_or_else(|| "(no directory)".into())
                    ),
                )],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_workflow_is_valid() {
        for (name, text) in BUILTIN {
            if let Err(e) = check_text(name, text) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn errors_read_file_line_field_problem() {
        let e =
            check_text("w.yaml", "name: w\nsteps:\n  - id: a\n    activity: nope\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "w.yaml:4: steps[0].activity: unknown activity `nope`; known: {}",
                NAMES.join(", ")
            )
        );
    }
}
