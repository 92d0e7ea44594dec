//! keystead.toml as the long-running commands read it: the library's
//! configuration plus the `[run]`, `[render]` and `[agent]` tables.
//!
//! The library accepts these three tables and ignores them, so one file
//! serves both. Each table is checked here, with unknown keys rejected by
//! name and line, the way the library checks its own tables.

use std::path::{Path, PathBuf};

use keystead::Config;
use serde::Deserialize;

use crate::agent::AgentTable;
use crate::output::Failure;
use crate::render::RenderTable;
use crate::run::RunTable;

/// The parsed configuration file, or the defaults when no file was given.
pub(crate) struct ConfigFile {
    /// The library's configuration: cache, providers and per-secret settings.
    pub(crate) library: Config,
    /// The tables of the run, render and agent commands.
    pub(crate) commands: CommandTables,
    /// The folder relative paths in the file are resolved against: the
    /// file's own folder, or the working directory without a file.
    pub(crate) directory: PathBuf,
}

/// The command tables of keystead.toml. Every table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CommandTables {
    pub(crate) run: RunTable,
    pub(crate) render: RenderTable,
    pub(crate) agent: AgentTable,
}

impl ConfigFile {
    /// Loads `path`, or the defaults when it is `None`.
    pub(crate) fn load(path: Option<&Path>) -> Result<ConfigFile, Failure> {
        let Some(path) = path else {
            return Ok(ConfigFile {
                library: Config::default(),
                commands: CommandTables::default(),
                directory: PathBuf::from("."),
            });
        };

        let text = std::fs::read_to_string(path).map_err(|error| {
            Failure::usage(format!("cannot read config file {}: {error}", path.display()))
        })?;
        let origin = path.display().to_string();
        let library = Config::from_toml(&text, &origin)?;
        let commands = parse_command_tables(&text, &origin)?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(ConfigFile {
            library,
            commands,
            directory,
        })
    }

    /// Resolves a path written in the file against the file's folder.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.directory.join(path)
        }
    }
}

fn parse_command_tables(text: &str, origin: &str) -> Result<CommandTables, Failure> {
    toml::from_str(text).map_err(|error| {
        let message = error.message().trim_end().to_owned();
        let location = error
            .span()
            .map(|span| line_of(text, span.start))
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default();
        Failure::usage(format!("invalid config in {origin}{location}: {message}"))
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|byte| **byte == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_tables_are_left_to_the_library() {
        let text = "[cache]\nttl = \"5s\"\n[run]\nrestart = false\n";
        let tables = parse_command_tables(text, "k.toml").unwrap();
        assert!(!tables.run.restart.unwrap());
    }

    #[test]
    fn unknown_command_key_names_line() {
        let text = "[cache]\nttl = \"5s\"\n\n[agent]\nprot = 2773\n";
        let failure = parse_command_tables(text, "k.toml").unwrap_err();
        assert!(failure.message.contains("prot"), "{}", failure.message);
        assert!(failure.message.contains("line 5"), "{}", failure.message);
    }
}
