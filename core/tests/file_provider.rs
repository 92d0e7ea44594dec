//! The file provider through the client: re-reads on the refresh schedule,
//! including the symlink swap Kubernetes uses to update mounted secrets.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use keystead::{Client, Config, ErrorClass};

fn client(ttl: Duration) -> Client {
    let mut config = Config::default();
    config.file.ttl = Some(ttl);
    Client::builder().config(config).build().unwrap()
}

/// Lays out a folder the way the kubelet does: `..data` points at a
/// timestamped folder, and each key is a symlink through `..data`.
fn project(root: &Path, generation: &str, value: &str) {
    let folder = root.join(generation);
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("password"), value).unwrap();
    let staging = root.join("..data_tmp");
    symlink(generation, &staging).unwrap();
    // rename(2) replaces the old `..data` link atomically, as the kubelet's
    // atomic writer does.
    std::fs::rename(&staging, root.join("..data")).unwrap();
    let key = root.join("password");
    if std::fs::symlink_metadata(&key).is_err() {
        symlink("..data/password", &key).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn symlink_swap_is_picked_up_after_ttl() {
    let root = tempfile::tempdir().unwrap();
    project(root.path(), "..2026_12_04_01", "first");
    let client = client(Duration::from_secs(5));
    let reference = format!("file://{}/password", root.path().display());
    let (sender, receiver) = std::sync::mpsc::channel();
    let _subscription = client
        .subscribe(&reference, move |event| {
            let text = event.secret.as_ref().unwrap().expose_str().unwrap().to_owned();
            let _ = sender.send(text);
        })
        .unwrap();

    assert_eq!(client.get(&reference).await.unwrap().expose_str().unwrap(), "first");
    project(root.path(), "..2026_12_04_02", "second");
    assert_eq!(client.get(&reference).await.unwrap().expose_str().unwrap(), "first");

    // The refresh falls due within the 5 s TTL. The file is read on a
    // blocking thread in real time, so wait for the rotation notice with a
    // bound on wall time rather than on the paused clock.
    tokio::time::advance(Duration::from_secs(6)).await;
    let started = std::time::Instant::now();
    let rotated = loop {
        if let Ok(text) = receiver.try_recv() {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the swap was not picked up");
        tokio::task::yield_now().await;
    };
    assert_eq!(rotated, "second");
    assert_eq!(client.get(&reference).await.unwrap().expose_str().unwrap(), "second");
}

#[tokio::test]
async fn in_place_rewrite_is_seen_by_refresh() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("token");
    std::fs::write(&path, "v1").unwrap();
    let client = client(Duration::from_secs(300));
    let reference = format!("file://{}", path.display());

    assert_eq!(client.get(&reference).await.unwrap().expose_str().unwrap(), "v1");
    std::fs::write(&path, "v2").unwrap();
    assert_eq!(client.refresh(&reference).await.unwrap().expose_str().unwrap(), "v2");
    assert_eq!(client.metrics().rotations, 1);
}

#[tokio::test]
async fn removed_file_drops_the_value() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("token");
    std::fs::write(&path, "short-lived").unwrap();
    let client = client(Duration::from_secs(300));
    let reference = format!("file://{}", path.display());
    client.get(&reference).await.unwrap();

    std::fs::remove_file(&path).unwrap();
    let error = client.refresh(&reference).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::NotFound);
    assert!(client.get_cached(&reference).is_none());
}

#[tokio::test]
async fn directory_is_not_a_secret() {
    let root = tempfile::tempdir().unwrap();
    let client = client(Duration::from_secs(300));
    let error = client.get(&format!("file://{}", root.path().display())).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::NotFound);
    assert!(error.to_string().contains("directory"), "{error}");
}

#[tokio::test]
async fn non_utf8_file_is_binary() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("key.der");
    std::fs::write(&path, [0x30, 0x82, 0xff, 0x00]).unwrap();
    let client = client(Duration::from_secs(300));
    let secret = client.get(&format!("file://{}", path.display())).await.unwrap();
    assert!(secret.is_binary());
    assert_eq!(secret.expose_bytes(), &[0x30, 0x82, 0xff, 0x00]);
    assert_eq!(secret.expose_str().unwrap_err().class(), ErrorClass::NotText);
}

#[tokio::test]
async fn fifo_is_rejected_without_blocking() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("pipe");
    let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    let client = client(Duration::from_secs(300));
    let error = client.get(&format!("file://{}", path.display())).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

#[tokio::test]
async fn device_is_rejected() {
    let client = client(Duration::from_secs(300));
    let error = client.get("file:///dev/zero").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
}

#[tokio::test]
async fn overlong_name_is_an_invalid_reference() {
    let client = client(Duration::from_secs(300));
    let name = "n".repeat(5000);
    let error = client.get(&format!("file:///tmp/{name}")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidReference);
}
