//! `keystead get` run as a user runs it: a child process, its stdout,
//! stderr and exit code.

use std::process::{Command, Output};

const CANARY: &str = "canary-cli-7d3e01";

fn keystead(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(args, env);
    command.env("KEYSTEAD_LOG", "trace");
    command.output().expect("the keystead binary runs")
}

/// Builds the binary's command without `KEYSTEAD_LOG`, so that the
/// default log level applies.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keystead"));
    command
        .args(args)
        .env_remove("KEYSTEAD_CONFIG")
        .env_remove("KEYSTEAD_LOG")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn prints_text_value_with_newline() {
    let output = keystead(&["get", "env://KS_CLI_TOKEN"], &[("KS_CLI_TOKEN", "t0ken")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(output.stdout, b"t0ken\n");
}

#[test]
fn no_newline_prints_exact_text() {
    let output = keystead(&["get", "-n", "env://KS_CLI_TOKEN"], &[("KS_CLI_TOKEN", "-dash\nline")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(output.stdout, b"-dash\nline");
}

#[test]
fn binary_file_is_written_exactly() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("key.bin");
    let bytes = [0u8, 159, 146, 150, 255, b'\n'];
    std::fs::write(&path, bytes).unwrap();
    let reference = format!("file://{}", path.display());
    let output = keystead(&["get", &reference], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(output.stdout, bytes);
}

#[test]
fn json_prints_value_and_metadata() {
    let output = keystead(&["get", "--json", "env://KS_CLI_JSON#port"], &[("KS_CLI_JSON", r#"{"port": 5432}"#)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["value"], "5432");
    assert_eq!(printed["reference"], "env://KS_CLI_JSON#port");
    assert_eq!(printed["metadata"]["provider"], "env");
    assert_eq!(printed["metadata"]["field"], "port");
    assert_eq!(printed["metadata"]["binary"], false);
}

#[test]
fn exit_codes_follow_error_class() {
    let cases: [(&[&str], i32, &str); 5] = [
        (&["get", "not a reference"], 2, "invalid-reference"),
        (&["get", "env://KS_CLI_UNSET_VARIABLE"], 3, "not-found"),
        (&["get", "env://KS_CLI_JSON#missing"], 3, "field-not-found"),
        (&["get", "--timeout", "soon", "env://X"], 2, "invalid duration"),
        (&["get"], 2, "REFERENCE"),
    ];
    for (args, code, needle) in cases {
        let output = keystead(args, &[("KS_CLI_JSON", r#"{"a": 1}"#)]);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(needle), "{args:?}: {}", stderr(&output));
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn error_is_one_line_naming_the_reference() {
    let output = keystead(&["get", "env://KS_CLI_UNSET_VARIABLE"], &[]);
    let text = stderr(&output);
    let error_lines: Vec<_> = text.lines().filter(|line| line.starts_with("keystead: ")).collect();
    assert_eq!(error_lines, vec!["keystead: env://KS_CLI_UNSET_VARIABLE: not-found: environment variable KS_CLI_UNSET_VARIABLE is not set"]);
}

#[test]
fn error_is_only_line_at_default_level() {
    let output = command(&["get", "env://KS_CLI_UNSET_DEFAULT"], &[]).output().unwrap();

    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "keystead: env://KS_CLI_UNSET_DEFAULT: not-found: environment variable KS_CLI_UNSET_DEFAULT is not set\n"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn log_option_overrides_default_without_colour() {
    let output = command(&["get", "--log", "error", "env://KS_CLI_UNSET_LOGGED"], &[]).output().unwrap();

    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("ERROR"), "{text}");
    assert!(lines[0].contains("reference=env://KS_CLI_UNSET_LOGGED"), "{text}");
    assert_eq!(lines[1], "keystead: env://KS_CLI_UNSET_LOGGED: not-found: environment variable KS_CLI_UNSET_LOGGED is not set");
    assert!(!text.contains('\u{1b}'), "stderr is a pipe, so no ANSI codes: {text:?}");
}

#[test]
fn invalid_log_level_is_usage_error() {
    let from_flag = command(&["get", "--log", "verbose", "env://HOME"], &[]).output().unwrap();
    let from_variable = command(&["get", "env://HOME"], &[("KEYSTEAD_LOG", "verbose")]).output().unwrap();

    for output in [from_flag, from_variable] {
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(text.contains("invalid log level `verbose`: use off, error, warn, info, debug or trace"), "{text}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn control_characters_in_reference_are_escaped() {
    let output = command(&["get", "env://KS_CLI_UNSET%1b%5b31m%00%0aEND"], &[]).output().unwrap();

    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(!output.stderr.iter().any(|byte| *byte < 0x20 && *byte != b'\n'), "{text:?}");
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.contains(r"`KS_CLI_UNSET\u{1b}[31m\u{0}\nEND` is not a valid environment variable name"), "{text:?}");
}

#[test]
fn long_reference_is_cut_in_error() {
    let reference = format!("env://KS_CLI_UNSET_{}", "A".repeat(100_000));

    let output = command(&["get", &reference], &[]).output().unwrap();

    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(text.chars().count(), "keystead: ".len() + 2_000 + "…\n".chars().count());
    assert!(text.ends_with("AAAA…\n"), "{}", &text[text.len() - 20..]);
}

#[test]
fn bad_config_names_the_file_and_key() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("keystead.toml");
    std::fs::write(&path, "[cache]\nttl = \"5m\"\nmax_entrys = 3\n").unwrap();
    let config = path.display().to_string();
    let output = keystead(&["get", "--config", &config, "env://HOME"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains(&config), "{text}");
    assert!(text.contains("max_entrys"), "{text}");
}

#[test]
fn canary_never_reaches_stderr() {
    let json = format!(r#"{{"password": "{CANARY}"}}"#);
    for args in [
        vec!["get", "env://KS_CLI_SECRET#user"],
        vec!["get", "env://KS_CLI_SECRET#password.deeper"],
        vec!["get", "--json", "env://KS_CLI_SECRET#password"],
    ] {
        let output = keystead(&args, &[("KS_CLI_SECRET", &json)]);
        assert!(!stderr(&output).contains(CANARY), "{args:?}: {}", stderr(&output));
    }
}

#[test]
fn help_is_available_everywhere() {
    for args in [vec!["--help"], vec!["get", "--help"]] {
        let output = keystead(&args, &[]);
        assert_eq!(output.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage"));
    }
}
