//! Builds the example and fixture plugins from source for `wasm32-wasip2` (once per test binary)
//! and hands out their bytes. They are the guest workspace `plugins/Cargo.toml`, built into
//! `target/plugins` of the root workspace.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The packages built for the tests, and the `.wasm` file each becomes.
pub const PLUGINS: &[(&str, &str)] = &[
    ("tandem-example-http-json", "tandem_example_http_json.wasm"),
    ("tandem-example-chat-notify", "tandem_example_chat_notify.wasm"),
    ("tandem-example-issue-poll", "tandem_example_issue_poll.wasm"),
    ("tandem-example-transform", "tandem_example_transform.wasm"),
    ("tandem-fixture-misbehave", "tandem_fixture_misbehave.wasm"),
];

/// The root of the Tandem workspace (the first directory above the crate holding
/// `plugins/Cargo.toml`, so that other crates' tests can use this module too).
pub fn workspace() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .find(|dir| dir.join("plugins/Cargo.toml").is_file())
        .expect("the crate lives in the Tandem workspace")
        .to_path_buf()
}

/// The guest workspace (`plugins/`).
pub fn guests() -> PathBuf {
    workspace().join("plugins")
}

fn target_installed() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2").is_dir()
}

/// The directory holding the built `.wasm` files, or `None` (with the reason printed) when the
/// `wasm32-wasip2` target is missing outside CI. Under `CI=true` a missing target fails.
pub fn built() -> Option<&'static Path> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        if !target_installed() {
            return Err("the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)".into());
        }
        let target_dir = workspace().join("target/plugins");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(guests())
            .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
            .arg(&target_dir)
            // Flags meant for the host build do not apply to the guests.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        for (package, _) in PLUGINS {
            cmd.args(["-p", package]);
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            panic!("building the plugins failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(target_dir.join("wasm32-wasip2/release"))
    });
    match result {
        Ok(dir) => Some(dir.as_path()),
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and the plugins cannot be built: {reason}");
            }
            eprintln!("skipping: {reason}");
            None
        }
    }
}

/// The bytes of one built plugin (`None`: skipped, see [`built`]).
pub fn wasm(package: &str) -> Option<Vec<u8>> {
    let dir = built()?;
    let file = PLUGINS.iter().find(|(p, _)| *p == package).map(|(_, f)| f).expect("a known plugin package");
    Some(std::fs::read(dir.join(file)).expect("the built plugin"))
}
