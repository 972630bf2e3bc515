//! A busybox-static root filesystem for the real-runtime tests: no image pull, no network,
//! only Debian's busybox-static binary and its applet links.
//!
//! Built once and kept in cargo's per-target temporary directory: the runtimes only read it
//! (runc and nspawn mount it read-only, bwrap binds it read-only, LXC mounts tmpfs over /dev),
//! so one copy serves every test binary and every run.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where busybox-static installs itself on Debian.
pub const BUSYBOX: &str = "/bin/busybox";

/// Why the rootfs cannot be built here, if it cannot (busybox missing or not static).
pub fn unavailable() -> Option<String> {
    let Ok(elf) = std::fs::read(BUSYBOX) else {
        return Some(format!(
            "{BUSYBOX} is missing (apt-get install busybox-static)"
        ));
    };
    // A dynamically linked busybox would fail inside a root without a libc, with an error
    // that names neither busybox nor the cause.
    if has_interpreter(&elf) {
        return Some(format!(
            "{BUSYBOX} is dynamically linked (apt-get install busybox-static)"
        ));
    }
    None
}

/// Whether an ELF64 little-endian file asks for a program interpreter (PT_INTERP).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        // Not an ELF64 we can read: let the runtime report what it finds.
        return false;
    }
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= elf.len() && u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3
    })
}

/// The rootfs: bin/busybox with every applet linked next to it (sh, sleep, true, ps, cat…),
/// empty dev, proc, sys, run, tmp, usr (systemd-nspawn refuses a tree without /usr) and a
/// minimal etc. Panics if it cannot be built (callers check [`unavailable`] first).
pub fn busybox_rootfs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let parent = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let elf = std::fs::read(BUSYBOX).expect("busybox-static");
        // Named by the binary's size and mtime, so an upgraded busybox gets a fresh tree.
        let meta = std::fs::metadata(BUSYBOX).unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let root = parent.join(format!("busybox-rootfs-{}-{mtime}", elf.len()));
        if root.join("bin/busybox").exists() {
            return root;
        }
        // Test binaries run at the same time: each builds its own copy and renames it into
        // place; the rename is atomic, and whoever loses uses the winner's complete tree.
        let tmp = parent.join(format!("busybox-rootfs-build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        build(&tmp, &elf).unwrap_or_else(|e| panic!("building {}: {e}", tmp.display()));
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        assert!(root.join("bin/busybox").exists(), "{}", root.display());
        root
    })
}

fn build(root: &Path, elf: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for d in [
        "bin", "sbin", "dev", "proc", "sys", "etc", "tmp", "run", "root", "usr", "var",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    let bin = root.join("bin/busybox");
    std::fs::write(&bin, elf)?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    super::runnable(&bin, &["--list"]);
    let list = std::process::Command::new(&bin).arg("--list").output()?;
    let applets = String::from_utf8_lossy(&list.stdout);
    for applet in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        symlink("busybox", root.join("bin").join(applet))?;
    }
    for applet in ["init", "sh"] {
        symlink("../bin/busybox", root.join("sbin").join(applet))?;
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n")?;
    std::fs::write(root.join("etc/hostname"), "busybox\n")?;
    std::fs::write(
        root.join("etc/os-release"),
        "ID=busybox\nNAME=\"nswatch test rootfs\"\n",
    )?;
    Ok(())
}
