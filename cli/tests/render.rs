//! `keystead render` against moto: file contents, mode, atomic
//! replacement, errors, rotation and the command run after a render.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use support::{eventually, keystead, moto, unique, Running};

const CANARY: &str = "canary-render-81d4e6b3";

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn file_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn render(args: &[&str]) -> Command {
    let mut command = keystead();
    command.arg("render").args(args);
    command
}

#[test]
fn renders_secret_fields_into_private_file() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("render-once");
    moto().create_secret(&name, r#"{"username": "app", "password": "p\"w'd"}"#);
    let template = folder.path().join("app.conf.j2");
    std::fs::write(
        &template,
        format!(
            "user={{{{ secret(\"aws-sm://{name}#username\") }}}}\npassword={{{{ secret(\"aws-sm://{name}#password\") }}}}\n"
        ),
    )
    .unwrap();
    let out = folder.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let destination = out.join("app.conf");
    let flag = format!("{}:{}", template.display(), destination.display());

    let output = render(&["--once", "-t", &flag]).output().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(&destination).unwrap(), "user=app\npassword=p\"w'd\n");
    assert_eq!(mode_of(&destination), 0o600);
    assert_eq!(file_names(&out), ["app.conf"]);
}

#[test]
fn config_table_sets_inline_template_and_mode() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("render-table");
    moto().create_binary_secret(&name, "AAEC/w==");
    let config = folder.path().join("keystead.toml");
    std::fs::write(
        &config,
        format!(
            "[[render.template]]\ncontents = \"key={{{{ secret_base64('aws-sm://{name}') }}}}\"\ndestination = \"rendered/key.env\"\nmode = \"0640\"\n"
        ),
    )
    .unwrap();

    let output = render(&["--once", "--config", config.to_str().unwrap()]).output().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let destination = folder.path().join("rendered/key.env");
    assert_eq!(std::fs::read_to_string(&destination).unwrap(), "key=AAEC/w==");
    assert_eq!(mode_of(&destination), 0o640);
}

#[test]
fn missing_field_fails_and_writes_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("render-missing");
    moto().create_secret(&name, &format!(r#"{{"password": "{CANARY}"}}"#));
    let template = folder.path().join("t.j2");
    std::fs::write(
        &template,
        format!("p={{{{ secret('aws-sm://{name}#password') }}}} u={{{{ secret('aws-sm://{name}#username') }}}}\n"),
    )
    .unwrap();
    let destination = folder.path().join("out.conf");
    let flag = format!("{}:{}", template.display(), destination.display());

    let mut command = render(&["--once", "-t", &flag]);
    command.env("KEYSTEAD_LOG", "trace");
    let output = command.output().unwrap();

    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("aws-sm://{name}#username")), "{stderr}");
    assert!(stderr.contains("field-not-found"), "{stderr}");
    assert!(!stderr.contains(CANARY), "{stderr}");
    assert!(!destination.exists());
}

#[test]
fn undefined_variable_and_missing_secret_are_errors() {
    let folder = tempfile::tempdir().unwrap();
    let missing = unique("render-absent");
    let cases = [
        ("{{ not_defined }}".to_owned(), 2),
        (format!("{{{{ secret('aws-sm://{missing}') }}}}"), 3),
        ("{{ secret('not a reference') }}".to_owned(), 2),
        ("{% if %}".to_owned(), 2),
    ];
    for (index, (text, code)) in cases.iter().enumerate() {
        let template = folder.path().join(format!("t{index}.j2"));
        std::fs::write(&template, text).unwrap();
        let destination = folder.path().join(format!("out{index}"));
        let flag = format!("{}:{}", template.display(), destination.display());
        let output = render(&["--once", "-t", &flag]).output().unwrap();
        assert_eq!(output.status.code(), Some(*code), "{text}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(!destination.exists(), "{text}");
    }
}

#[test]
fn filter_error_does_not_quote_the_value() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("render-filter");
    moto().create_secret(&name, CANARY);
    let template = folder.path().join("t.j2");
    std::fs::write(&template, format!("{{{{ secret('aws-sm://{name}') | int + undefined_thing }}}}")).unwrap();
    let flag = format!("{}:{}", template.display(), folder.path().join("out").display());

    let output = render(&["--once", "-t", &flag]).output().unwrap();

    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot render"), "{stderr}");
    assert!(!stderr.contains(CANARY), "{stderr}");
}

#[test]
fn template_error_withholds_transformed_values() {
    let folder = tempfile::tempdir().unwrap();
    let cases = [
        (
            "{% include secret('env://KS_RENDER_CANARY') | upper %}",
            "template not found at line 1",
        ),
        (
            "first\n{{ secret('env://KS_RENDER_CANARY')[7:19] | int }}",
            "invalid operation at line 2",
        ),
        (
            "{{ secret('env://KS_RENDER_CANARY')[::-1] + 1 }}",
            "invalid operation at line 1",
        ),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let template = folder.path().join(format!("t{index}.j2"));
        std::fs::write(&template, text).unwrap();
        let destination = folder.path().join(format!("out{index}"));
        let flag = format!("{}:{}", template.display(), destination.display());

        let output = render(&["--once", "-t", &flag]).env("KS_RENDER_CANARY", CANARY).output().unwrap();

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert_eq!(
            stderr.lines().last(),
            Some(
                format!(
                    "keystead: cannot render {}: {expected}; the details are withheld because they may contain secret values",
                    template.display()
                )
                .as_str()
            ),
            "{text}: {stderr}"
        );
        for fragment in [CANARY.to_uppercase(), CANARY[7..19].to_owned(), CANARY.chars().rev().collect()] {
            assert!(!stderr.contains(&fragment), "{text}: {stderr}");
        }
        assert!(!destination.exists(), "{text}");
    }
}

#[test]
fn destination_equal_to_source_is_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let template = folder.path().join("t.j2");
    std::fs::write(&template, "plain").unwrap();
    let dotted = folder.path().join("sub/../t.j2");
    std::fs::create_dir(folder.path().join("sub")).unwrap();
    let flag = format!("{}:{}", template.display(), dotted.display());

    let output = render(&["--once", "-t", &flag]).output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "keystead: template {}: the destination is the template itself; write the output to another file\n",
            template.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&template).unwrap(), "plain");
}

#[test]
fn shared_destination_is_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let first = folder.path().join("a.j2");
    let second = folder.path().join("b.j2");
    std::fs::write(&first, "a").unwrap();
    std::fs::write(&second, "b").unwrap();
    std::os::unix::fs::symlink(folder.path(), folder.path().join("link")).unwrap();
    let destination = folder.path().join("out.conf");
    let through_link = folder.path().join("link/out.conf");
    let first_flag = format!("{}:{}", first.display(), destination.display());
    let second_flag = format!("{}:{}", second.display(), through_link.display());

    let output = render(&["--once", "-t", &first_flag, "-t", &second_flag]).output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "keystead: templates {} and {} both write {}; give each template its own destination\n",
            first.display(),
            second.display(),
            through_link.display()
        )
    );
    assert!(!destination.exists());
}

#[test]
fn unsafe_modes_are_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let template = folder.path().join("t.j2");
    std::fs::write(&template, "plain").unwrap();
    let destination = folder.path().join("out");
    let flag = format!("{}:{}", template.display(), destination.display());

    for mode in ["4600", "2640", "1600", "0620", "0606"] {
        let output = render(&["--once", "--mode", mode, "-t", &flag]).output().unwrap();

        assert_eq!(output.status.code(), Some(2), "{mode}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "keystead: mode `{mode}` is not allowed for a file of secrets because it sets setuid, setgid or sticky bits, or lets group or others write; write for example \"0600\" or \"0640\"\n"
            ),
            "{mode}"
        );
        assert!(!destination.exists(), "{mode}");
    }
}

#[test]
fn rotation_rerenders_atomically_and_runs_command() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("render-rotate");
    moto().create_secret(&name, "v1");
    let config = folder.path().join("keystead.toml");
    std::fs::write(&config, "[cache]\nttl = \"1s\"\n").unwrap();
    let template = folder.path().join("t.j2");
    std::fs::write(&template, format!("value={{{{ secret('aws-sm://{name}') }}}}\n")).unwrap();
    let destination = folder.path().join("app.conf");
    let marker = folder.path().join("ran");
    let flag = format!(
        "{}:{}:cat {} >> {}",
        template.display(),
        destination.display(),
        destination.display(),
        marker.display()
    );
    let mut running = Running::spawn(render(&[
        "--config",
        config.to_str().unwrap(),
        "--debounce",
        "100ms",
        "-t",
        &flag,
    ]));
    assert!(eventually(|| std::fs::read_to_string(&marker).is_ok_and(|text| text == "value=v1\n")), "{}", running.stderr.text());
    let first_inode = std::fs::metadata(&destination).unwrap().ino();
    let mut reader = std::fs::File::open(&destination).unwrap();

    moto().put_secret(&name, "v2");

    assert!(
        eventually(|| std::fs::read_to_string(&marker).is_ok_and(|text| text == "value=v1\nvalue=v2\n")),
        "{}",
        running.stderr.text()
    );
    assert_eq!(std::fs::read_to_string(&destination).unwrap(), "value=v2\n");
    assert_eq!(mode_of(&destination), 0o600);
    assert_ne!(std::fs::metadata(&destination).unwrap().ino(), first_inode);
    let mut old = String::new();
    std::io::Read::read_to_string(&mut reader, &mut old).unwrap();
    assert_eq!(old, "value=v1\n");

    // A new version with the same value renders the same bytes: the file
    // and the command are left alone.
    moto().put_secret(&name, "v2");
    assert!(running.stderr.wait_for("changed=false", 1), "{}", running.stderr.text());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "value=v1\nvalue=v2\n");
    assert_eq!(file_names(folder.path()), ["app.conf", "keystead.toml", "ran", "t.j2"]);

    running.signal(libc::SIGTERM);
    assert_eq!(running.wait_exit(), Some(0));
}

#[test]
fn failing_command_is_retried_with_backoff() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("render-retry");
    moto().create_secret(&name, "x");
    let attempts = folder.path().join("attempts");
    let config = folder.path().join("keystead.toml");
    std::fs::write(
        &config,
        format!(
            "[[render.template]]\ncontents = \"{{{{ secret('aws-sm://{name}') }}}}\"\ndestination = \"out\"\n\
             command = \"echo try >> {attempts}; test $(wc -l < {attempts}) -ge 3\"\ncommand_backoff = \"10ms\"\n",
            attempts = attempts.display()
        ),
    )
    .unwrap();

    let output = render(&["--once", "--config", config.to_str().unwrap()]).output().unwrap();

    assert_eq!(output.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&attempts).unwrap(), "try\ntry\ntry\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("failed; retrying").count(), 2, "{stderr}");
}

#[test]
fn canary_never_in_render_logs() {
    let folder = tempfile::tempdir().unwrap();
    let name = unique("render-canary");
    moto().create_secret(&name, CANARY);
    let template = folder.path().join("t.j2");
    std::fs::write(&template, format!("{{{{ secret('aws-sm://{name}') }}}}")).unwrap();
    let destination = folder.path().join("out");
    let flag = format!("{}:{}", template.display(), destination.display());

    let mut command = render(&["--once", "-t", &flag]);
    command.env("KEYSTEAD_LOG", "trace");
    let output = command.output().unwrap();

    assert_eq!(output.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(destination).unwrap(), CANARY);
    assert!(!String::from_utf8_lossy(&output.stderr).contains(CANARY));
    assert!(output.stdout.is_empty());
}

#[test]
fn no_template_is_a_usage_error() {
    let output = render(&["--once"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no templates"));
}
