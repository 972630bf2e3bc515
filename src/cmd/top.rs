//! `nswatch top`: runs `nswatch-top`, the terminal UI's binary (the `nswatch-tui` crate of
//! the workspace), as git and cargo run their external subcommands.
//!
//! The UI is a consumer of the library, so it cannot be linked into the binary of the
//! package whose library it uses (Cargo forbids the cycle); the CLI keeps `top` in its help
//! and hands every argument over unread.

use anyhow::{anyhow, Result};
use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The UI's executable.
pub const TOP_BIN: &str = "nswatch-top";

/// Arguments of `nswatch top`: all of them are `nswatch-top`'s (`nswatch top --help` shows
/// its help).
#[derive(clap::Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
pub struct TopArgs {
    /// The arguments of `nswatch-top` (see `nswatch top --help`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// Where `nswatch-top` is: beside this executable first (a build or an install puts both
/// binaries in one directory), then on PATH.
pub fn find_top(own_exe: Option<&Path>, path: Option<&OsStr>) -> Option<PathBuf> {
    let beside = own_exe
        .and_then(Path::parent)
        .map(|dir| dir.join(TOP_BIN))
        .filter(|p| is_executable(p));
    beside.or_else(|| {
        std::env::split_paths(path?)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(TOP_BIN))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `nswatch top`: replaces this process with `nswatch-top ARGS…` (the terminal, the
/// signals and the exit status are the UI's own), or says where it looked.
pub fn run(args: &TopArgs) -> Result<()> {
    let own = std::env::current_exe().ok();
    let path = std::env::var_os("PATH");
    let Some(top) = find_top(own.as_deref(), path.as_deref()) else {
        let beside = own.as_deref().and_then(Path::parent).map_or_else(
            || "(this executable's directory is unknown)".into(),
            |d| d.join(TOP_BIN).display().to_string(),
        );
        return Err(anyhow!(
            "top: {TOP_BIN} not found, neither at {beside} nor on PATH; it is the workspace's \
             tui crate: build it with `cargo build --release --workspace` (beside nswatch), \
             or install it with `cargo install --path tui`"
        ));
    };
    // argv[0] names the subcommand, so that the UI's usage and errors say `nswatch top`.
    let err = Command::new(&top)
        .arg0("nswatch top")
        .args(&args.args)
        .exec();
    Err(anyhow!(err).context(format!("top: running {}", top.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn place(dir: &Path, mode: u32) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(TOP_BIN);
        std::fs::write(&p, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn beside_first_then_path_in_order_executables_only() {
        let t = tempfile::tempdir().unwrap();
        let (own, a, b, c) = (
            t.path().join("bin"),
            t.path().join("a"),
            t.path().join("b"),
            t.path().join("c"),
        );
        let exe = own.join("nswatch");
        std::fs::create_dir_all(&own).unwrap();
        place(&a, 0o644);
        let in_b = place(&b, 0o755);
        place(&c, 0o755);
        let path = std::env::join_paths([&a, &b, &c]).unwrap();
        // Not beside: the first executable one on PATH (a's is not executable).
        assert_eq!(find_top(Some(&exe), Some(&path)), Some(in_b.clone()));
        assert_eq!(find_top(None, Some(&path)), Some(in_b));
        // Beside it wins over PATH.
        let beside = place(&own, 0o755);
        assert_eq!(find_top(Some(&exe), Some(&path)), Some(beside));
        // Nowhere.
        assert_eq!(find_top(Some(&a.join("nswatch")), None), None);
        let empty = std::env::join_paths([&a]).unwrap();
        assert_eq!(find_top(Some(&a.join("nswatch")), Some(&empty)), None);
    }
}
