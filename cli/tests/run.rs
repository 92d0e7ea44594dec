//! `keystead run` against moto: the child's environment, exit code,
//! signals, restarts on rotation, and redaction.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{eventually, keystead, moto, unique, Running};

const CANARY: &str = "canary-run-5f0c2a9e";

/// A keystead.toml with a short TTL, so that rotations are found within
/// about a second.
fn short_ttl_config(folder: &Path) -> PathBuf {
    let path = folder.join("keystead.toml");
    std::fs::write(&path, "[cache]\nttl = \"1s\"\n").unwrap();
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A child that records each start as a line "$A:$B" in `starts`, then
/// waits until it is told to stop.
fn recording_child(starts: &Path) -> String {
    format!(
        "trap 'kill $! 2>/dev/null; exit 0' TERM; printf '%s:%s\\n' \"$A\" \"$B\" >> {}; sleep 1000 & wait",
        starts.display()
    )
}

fn run_command(config: Option<&Path>, flags: &[&str], script: &str) -> Command {
    let mut command = keystead();
    command.arg("run");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(flags).args(["--", "sh", "-c", script]);
    command
}

#[test]
fn child_gets_values_verbatim() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("run-verbatim");
    moto().create_secret(&name, r#"{"username": "app", "password": "-starts-with-dash\nand a second line"}"#);
    let out_user = folder.path().join("user");
    let out_password = folder.path().join("password");
    let script = format!(
        "printf %s \"$DB_USER\" > {}; printf %s \"$DB_PASSWORD\" > {}",
        out_user.display(),
        out_password.display()
    );
    let user_flag = format!("DB_USER=aws-sm://{name}#username");
    let password_flag = format!("DB_PASSWORD=aws-sm://{name}#password");

    let output = run_command(None, &["-e", &user_flag, "--env", &password_flag], &script).output().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(out_user).unwrap(), "app");
    assert_eq!(std::fs::read_to_string(out_password).unwrap(), "-starts-with-dash\nand a second line");
}

#[test]
fn env_table_in_config_is_used() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("run-table");
    moto().create_secret(&name, "from-table");
    let config = folder.path().join("keystead.toml");
    std::fs::write(&config, format!("[run]\nrestart = false\n\n[run.env]\nTOKEN = \"aws-sm://{name}\"\n")).unwrap();
    let out = folder.path().join("out");

    let output = run_command(Some(&config), &[], &format!("printf %s \"$TOKEN\" > {}", out.display()))
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(out).unwrap(), "from-table");
}

#[test]
fn exit_code_propagates() {
    let name = unique("run-exit");
    moto().create_secret(&name, "x");
    let flag = format!("A=aws-sm://{name}");
    for (script, expected) in [("exit 0", 0), ("exit 7", 7), ("exit 255", 255), ("kill -TERM $$", 143)] {
        let output = run_command(None, &["-e", &flag], script).output().unwrap();
        assert_eq!(output.status.code(), Some(expected), "{script}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn missing_secret_stops_before_start() {
    let folder = tempfile::tempdir().unwrap();
    let marker = folder.path().join("started");
    let name = unique("run-missing");
    let flag = format!("DB_PASSWORD=aws-sm://{name}#password");

    let output = run_command(None, &["-e", &flag], &format!("touch {}", marker.display())).output().unwrap();

    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot set DB_PASSWORD"), "{stderr}");
    assert!(stderr.contains(&name), "{stderr}");
    assert!(!marker.exists());
}

#[test]
fn missing_field_names_variable_without_value() {
    let name = unique("run-field");
    moto().create_secret(&name, &format!(r#"{{"password": "{CANARY}"}}"#));
    let flag = format!("DB_USER=aws-sm://{name}#username");

    let mut command = run_command(None, &["-e", &flag], "true");
    command.env("KEYSTEAD_LOG", "trace");
    let output = command.output().unwrap();

    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot set DB_USER"), "{stderr}");
    assert!(!stderr.contains(CANARY), "{stderr}");
}

#[test]
fn signals_are_forwarded() {
    let folder = tempfile::tempdir().unwrap();
    let ready = folder.path().join("ready");
    let got = folder.path().join("got");
    let name = unique("run-signal");
    moto().create_secret(&name, "x");
    let script = format!(
        "trap 'echo usr1 >> {got}' USR1; trap 'echo term >> {got}; exit 42' TERM; touch {ready}; \
         while :; do sleep 1 & wait; done",
        got = got.display(),
        ready = ready.display()
    );
    let flag = format!("A=aws-sm://{name}");
    let mut running = Running::spawn(run_command(None, &["-e", &flag], &script));
    assert!(eventually(|| ready.exists()), "{}", running.stderr.text());

    running.signal(libc::SIGUSR1);
    assert!(eventually(|| lines(&got) == ["usr1"]), "{:?}", lines(&got));
    running.signal(libc::SIGTERM);

    assert_eq!(running.wait_exit(), Some(42));
    assert_eq!(lines(&got), ["usr1", "term"]);
}

#[test]
fn rotation_of_two_secrets_restarts_once() {
    let folder = tempfile::tempdir().unwrap();
    let config = short_ttl_config(folder.path());
    let starts = folder.path().join("starts");
    let first = unique("run-rotate-a");
    let second = unique("run-rotate-b");
    moto().create_secret(&first, "a1");
    moto().create_secret(&second, "b1");
    let flags = [format!("A=aws-sm://{first}"), format!("B=aws-sm://{second}")];
    let mut running = Running::spawn(run_command(
        Some(&config),
        &["-e", &flags[0], "-e", &flags[1], "--debounce", "2s"],
        &recording_child(&starts),
    ));
    assert!(eventually(|| lines(&starts).len() == 1), "{}", running.stderr.text());

    moto().put_secret(&first, "a2");
    moto().put_secret(&second, "b2");

    assert!(eventually(|| lines(&starts).len() == 2), "{}", running.stderr.text());
    assert_eq!(lines(&starts), ["a1:b1", "a2:b2"]);
    let log = running.stderr.text();
    let restart_lines: Vec<&str> = log.lines().filter(|line| line.contains("restarting the child")).collect();
    assert_eq!(restart_lines.len(), 1, "{log}");
    assert!(restart_lines[0].contains(&first) && restart_lines[0].contains(&second), "{log}");

    // A rotation to the same value is handled after any batch still
    // pending, so once it is logged no other restart can follow.
    moto().put_secret(&first, "a2");
    assert!(running.stderr.wait_for("unchanged values; the child keeps running", 1), "{}", running.stderr.text());
    assert_eq!(lines(&starts), ["a1:b1", "a2:b2"]);
    assert_eq!(running.stderr.count("restarting the child"), 1);

    running.signal(libc::SIGTERM);
    assert_eq!(running.wait_exit(), Some(0));
}

#[test]
fn unchanged_value_causes_no_restart() {
    let folder = tempfile::tempdir().unwrap();
    let config = short_ttl_config(folder.path());
    let starts = folder.path().join("starts");
    let name = unique("run-same");
    moto().create_secret(&name, "same");
    let flag = format!("A=aws-sm://{name}");
    let mut running = Running::spawn(run_command(
        Some(&config),
        &["-e", &flag, "--debounce", "100ms"],
        &recording_child(&starts),
    ));
    assert!(eventually(|| lines(&starts).len() == 1), "{}", running.stderr.text());

    moto().put_secret(&name, "same");

    assert!(running.stderr.wait_for("unchanged values; the child keeps running", 1), "{}", running.stderr.text());
    assert_eq!(lines(&starts), ["same:"]);
    assert_eq!(running.stderr.count("restarting the child"), 0);

    running.signal(libc::SIGTERM);
    assert_eq!(running.wait_exit(), Some(0));
}

#[test]
fn no_restart_keeps_the_child() {
    let folder = tempfile::tempdir().unwrap();
    let config = short_ttl_config(folder.path());
    let starts = folder.path().join("starts");
    let name = unique("run-no-restart");
    moto().create_secret(&name, "v1");
    let flag = format!("A=aws-sm://{name}");
    let mut running = Running::spawn(run_command(
        Some(&config),
        &["-e", &flag, "--no-restart", "--debounce", "100ms"],
        &recording_child(&starts),
    ));
    assert!(eventually(|| lines(&starts).len() == 1), "{}", running.stderr.text());

    moto().put_secret(&name, "v2");

    assert!(running.stderr.wait_for("restarts are off", 1), "{}", running.stderr.text());
    assert_eq!(lines(&starts), ["v1:"]);
    running.signal(libc::SIGTERM);
    assert_eq!(running.wait_exit(), Some(0));
}

#[test]
fn child_ignoring_stop_signal_is_killed_after_grace() {
    let folder = tempfile::tempdir().unwrap();
    let config = short_ttl_config(folder.path());
    let starts = folder.path().join("starts");
    let name = unique("run-grace");
    moto().create_secret(&name, "v1");
    let flag = format!("A=aws-sm://{name}");
    let script = format!(
        "trap '' TERM; printf '%s\\n' \"$A\" >> {}; while :; do sleep 1; done",
        starts.display()
    );
    let running = Running::spawn(run_command(
        Some(&config),
        &["-e", &flag, "--debounce", "100ms", "--grace-period", "300ms"],
        &script,
    ));
    assert!(eventually(|| lines(&starts).len() == 1), "{}", running.stderr.text());

    moto().put_secret(&name, "v2");

    assert!(eventually(|| lines(&starts).len() == 2), "{}", running.stderr.text());
    assert_eq!(lines(&starts), ["v1", "v2"]);
    assert!(running.stderr.text().contains("did not exit within the grace period"));
    running.signal(libc::SIGKILL);
}

#[test]
fn custom_stop_signal_is_sent() {
    let folder = tempfile::tempdir().unwrap();
    let config = short_ttl_config(folder.path());
    let starts = folder.path().join("starts");
    let name = unique("run-stop-signal");
    moto().create_secret(&name, "v1");
    let flag = format!("A=aws-sm://{name}");
    let script = format!(
        "trap 'echo hup >> {starts}; exit 0' HUP; printf '%s\\n' \"$A\" >> {starts}; while :; do sleep 1 & wait; done",
        starts = starts.display()
    );
    let running = Running::spawn(run_command(
        Some(&config),
        &["-e", &flag, "--debounce", "100ms", "--stop-signal", "SIGHUP"],
        &script,
    ));
    assert!(eventually(|| lines(&starts).len() == 1), "{}", running.stderr.text());

    moto().put_secret(&name, "v2");

    assert!(eventually(|| lines(&starts).len() == 3), "{}", running.stderr.text());
    assert_eq!(lines(&starts), ["v1", "hup", "v2"]);
    running.signal(libc::SIGKILL);
}

#[test]
fn redact_masks_values_in_child_output() {
    let name = unique("run-redact");
    moto().create_secret(&name, &format!(r#"{{"token": "{CANARY}", "user": "plain-user"}}"#));
    let flag = format!("TOKEN=aws-sm://{name}#token");
    let script = "printf 'token=%s\\n' \"$TOKEN\"; printf 'again %s!' \"$TOKEN\" >&2; \
                  printf 'half=%.8s\\n' \"$TOKEN\"";

    let output = run_command(None, &["-e", &flag, "--redact"], script).output().unwrap();

    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains(CANARY), "{stdout}");
    assert!(!stderr.contains(CANARY), "{stderr}");
    assert!(stdout.contains("token=[REDACTED]\n"), "{stdout}");
    assert!(stdout.contains("half=canary-r\n"), "{stdout}");
    assert!(stderr.contains("again [REDACTED]!"), "{stderr}");
}

#[test]
fn without_redact_output_passes_through() {
    let name = unique("run-plain");
    moto().create_secret(&name, CANARY);
    let flag = format!("TOKEN=aws-sm://{name}");

    let output = run_command(None, &["-e", &flag], "printf %s \"$TOKEN\"").output().unwrap();

    assert_eq!(output.stdout, CANARY.as_bytes());
}

#[test]
fn canary_never_in_keystead_logs() {
    let folder = tempfile::tempdir().unwrap();
    let config = short_ttl_config(folder.path());
    let starts = folder.path().join("starts");
    let name = unique("run-canary");
    moto().create_secret(&name, &format!("{CANARY}-1"));
    let flag = format!("A=aws-sm://{name}");
    let mut command = run_command(Some(&config), &["-e", &flag, "--debounce", "100ms"], &recording_child(&starts));
    command.env("KEYSTEAD_LOG", "trace");
    let mut running = Running::spawn(command);
    assert!(eventually(|| lines(&starts).len() == 1), "{}", running.stderr.text());

    moto().put_secret(&name, &format!("{CANARY}-2"));
    assert!(eventually(|| lines(&starts).len() == 2), "{}", running.stderr.text());
    running.signal(libc::SIGTERM);
    assert_eq!(running.wait_exit(), Some(0));

    let log = running.stderr.text();
    assert!(log.contains("restarting the child"), "{log}");
    assert!(!log.contains(CANARY), "{log}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["run", "--"],
        vec!["run", "-e", "NOEQUALS", "--", "true"],
        vec!["run", "-e", "A=not a reference", "--", "true"],
        vec!["run", "--stop-signal", "SIGNOPE", "--", "true"],
        vec!["run", "-e", "A=env://HOME", "-e", "A=env://PATH", "--", "true"],
    ] {
        let output = keystead().args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn missing_program_exits_127() {
    let output = keystead()
        .args(["run", "-e", "A=env://HOME", "--", "/nonexistent/keystead-test-program"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(127), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot start /nonexistent/keystead-test-program"));
}
