//! Writes ../include/keystead.h from this crate's `extern "C"` items.
//!
//! The header is checked in, so C and Go users need no cbindgen. It is only
//! rewritten when its text changes, which keeps its timestamp (and so the
//! builds of C programs that include it) stable.

use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/keystead.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|error| panic!("cannot read cbindgen.toml: {error}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|error| panic!("cbindgen cannot generate keystead.h: {error}"));

    let mut text = Vec::new();
    bindings.write(&mut text);
    let unchanged = std::fs::read(&header)
        .map(|old| old == text)
        .unwrap_or(false);
    if !unchanged {
        std::fs::write(&header, &text)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", header.display()));
    }
}
