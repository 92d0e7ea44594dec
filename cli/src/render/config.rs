//! Settings of `keystead render`: the `[render]` table, the flags, and
//! their defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config_file::ConfigFile;
use crate::output::Failure;
use crate::render::RenderArgs;

/// File mode of rendered files: readable and writable by the owner only,
/// because they hold secrets.
pub(crate) const DEFAULT_MODE: u32 = 0o600;

/// How long a command run after a render may take before it is killed.
/// Thirty seconds covers a service reload with a wide margin.
pub(crate) const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts of a failing command after one render, the first included.
pub(crate) const DEFAULT_COMMAND_ATTEMPTS: u32 = 5;

/// Delay before the second attempt of a failing command; later delays
/// double, up to `MAX_COMMAND_BACKOFF`.
pub(crate) const DEFAULT_COMMAND_BACKOFF: Duration = Duration::from_secs(1);

/// The `[render]` table of keystead.toml.
///
/// ```toml
/// [render]
/// debounce = "2s"
///
/// [[render.template]]
/// source = "templates/app.conf.j2"
/// destination = "/run/app/app.conf"
/// mode = "0640"
/// command = "systemctl reload app"
/// command_timeout = "30s"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RenderTable {
    /// Quiet time after a rotation before rendering again.
    #[serde(with = "keystead::config::optional_duration_text")]
    pub(crate) debounce: Option<Duration>,
    /// The templates.
    #[serde(rename = "template")]
    pub(crate) templates: Vec<TemplateTable>,
}

/// One `[[render.template]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateTable {
    /// Path of the template file, relative to the config file.
    pub(crate) source: Option<PathBuf>,
    /// The template itself, instead of `source`.
    pub(crate) contents: Option<String>,
    /// Path of the rendered file, relative to the config file.
    pub(crate) destination: PathBuf,
    /// File mode in octal, for example "0640".
    pub(crate) mode: Option<String>,
    /// Shell command run after the file changed.
    pub(crate) command: Option<String>,
    /// Time allowed for one run of `command`.
    #[serde(default, with = "keystead::config::optional_duration_text")]
    pub(crate) command_timeout: Option<Duration>,
    /// Attempts of a failing `command` after one render.
    pub(crate) command_attempts: Option<u32>,
    /// Delay before the second attempt of a failing `command`.
    #[serde(default, with = "keystead::config::optional_duration_text")]
    pub(crate) command_backoff: Option<Duration>,
}

/// One template to render, with everything resolved.
#[derive(Clone, Debug)]
pub(crate) struct TemplateSpec {
    /// Name used in messages and template errors: the source path, or
    /// the destination for an inline template.
    pub(crate) name: String,
    pub(crate) source: String,
    /// The template file, or `None` for an inline template.
    pub(crate) source_path: Option<PathBuf>,
    pub(crate) destination: PathBuf,
    pub(crate) mode: u32,
    pub(crate) command: Option<CommandSpec>,
}

/// A command run after a render.
#[derive(Clone, Debug)]
pub(crate) struct CommandSpec {
    pub(crate) line: String,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
}

/// Collects the templates of the `[render]` table and the `--template`
/// flags.
pub(crate) fn templates(file: &ConfigFile, args: &RenderArgs) -> Result<Vec<TemplateSpec>, Failure> {
    let default_mode = match &args.mode {
        Some(text) => parse_mode(text)?,
        None => DEFAULT_MODE,
    };
    let mut specs = Vec::new();

    for (index, table) in file.commands.render.templates.iter().enumerate() {
        let (name, source, source_path) = match (&table.source, &table.contents) {
            (Some(path), None) => {
                let path = file.resolve(path);
                (path.display().to_string(), read_template(&path)?, Some(path))
            }
            (None, Some(contents)) => (table.destination.display().to_string(), contents.clone(), None),
            _ => {
                return Err(Failure::usage(format!(
                    "render.template[{index}]: give exactly one of `source` or `contents`"
                )))
            }
        };
        let mode = match &table.mode {
            Some(text) => parse_mode(text).map_err(|failure| Failure::usage(format!("render.template[{index}].{}", failure.message)))?,
            None => default_mode,
        };
        let command = table.command.clone().map(|line| CommandSpec {
            line,
            timeout: table.command_timeout.or(args.command_timeout).unwrap_or(DEFAULT_COMMAND_TIMEOUT),
            attempts: table.command_attempts.unwrap_or(DEFAULT_COMMAND_ATTEMPTS).max(1),
            backoff: table.command_backoff.unwrap_or(DEFAULT_COMMAND_BACKOFF),
        });
        specs.push(TemplateSpec {
            name,
            source,
            source_path,
            destination: file.resolve(&table.destination),
            mode,
            command,
        });
    }

    for flag in &args.templates {
        specs.push(template_from_flag(flag, default_mode, args)?);
    }

    if specs.is_empty() {
        return Err(Failure::usage(
            "no templates: add --template SOURCE:DESTINATION or a [[render.template]] table".to_owned(),
        ));
    }
    check_destinations(&specs)?;
    Ok(specs)
}

/// Rejects a destination that is its own template's source, which the
/// first render would overwrite, and two templates writing one file, whose
/// renders would overwrite each other. Paths are compared after resolving
/// symbolic links and `..`.
fn check_destinations(specs: &[TemplateSpec]) -> Result<(), Failure> {
    let mut seen: Vec<(PathBuf, &str)> = Vec::with_capacity(specs.len());
    for spec in specs {
        let destination = canonical(&spec.destination);
        if spec.source_path.as_deref().map(canonical).as_ref() == Some(&destination) {
            return Err(Failure::usage(format!(
                "template {}: the destination is the template itself; write the output to another file",
                spec.name
            )));
        }
        if let Some((_, other)) = seen.iter().find(|(path, _)| *path == destination) {
            return Err(Failure::usage(format!(
                "templates {other} and {} both write {}; give each template its own destination",
                spec.name,
                spec.destination.display()
            )));
        }
        seen.push((destination, &spec.name));
    }
    Ok(())
}

/// Resolves `path` as far as it exists: a destination is often not created
/// yet, so its folder is resolved and its file name appended.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(resolved) = std::fs::canonicalize(path) {
        return resolved;
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(folder), path.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Parses `SOURCE:DESTINATION[:COMMAND]`. Paths are relative to the working
/// directory; the command may itself contain colons.
fn template_from_flag(flag: &str, mode: u32, args: &RenderArgs) -> Result<TemplateSpec, Failure> {
    let mut parts = flag.splitn(3, ':');
    let source = parts.next().unwrap_or_default();
    let destination = parts.next().unwrap_or_default();
    if source.is_empty() || destination.is_empty() {
        return Err(Failure::usage(format!(
            "invalid --template `{flag}`: write SOURCE:DESTINATION or SOURCE:DESTINATION:COMMAND"
        )));
    }
    let command = parts.next().filter(|line| !line.is_empty()).map(|line| CommandSpec {
        line: line.to_owned(),
        timeout: args.command_timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT),
        attempts: DEFAULT_COMMAND_ATTEMPTS,
        backoff: DEFAULT_COMMAND_BACKOFF,
    });
    let source_path = PathBuf::from(source);
    Ok(TemplateSpec {
        name: source.to_owned(),
        source: read_template(&source_path)?,
        source_path: Some(source_path),
        destination: PathBuf::from(destination),
        mode,
        command,
    })
}

fn read_template(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|error| Failure::usage(format!("cannot read template {}: {error}", path.display())))
}

/// Mode bits a rendered file may not have: setuid, setgid and sticky, which
/// have no use on a data file, and write access for group or others, which
/// would let another user change a file that contains secrets.
const FORBIDDEN_MODE_BITS: u32 = 0o7022;

/// Parses an octal file mode such as `0600` or `640`, and rejects the bits
/// in `FORBIDDEN_MODE_BITS`.
pub(crate) fn parse_mode(text: &str) -> Result<u32, Failure> {
    let digits = text.trim().trim_start_matches("0o");
    let mode = match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && mode <= 0o7777 => mode,
        _ => {
            return Err(Failure::usage(format!(
                "mode `{text}` is not an octal file mode; write for example \"0600\" or \"0640\""
            )))
        }
    };
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(Failure::usage(format!(
            "mode `{text}` is not allowed for a file of secrets because it sets setuid, setgid or sticky bits, or lets group or others write; write for example \"0600\" or \"0640\""
        )));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0600").unwrap(), 0o600);
        assert_eq!(parse_mode("640").unwrap(), 0o640);
        assert_eq!(parse_mode("0o644").unwrap(), 0o644);
        for bad in ["", "0800", "rw-------", "17777", "4600", "2640", "1600", "0620", "0602", "0666"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }
}
