//! Links planted in a shared directory by another user, for the tests that an output file
//! is never written through one.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A uid that owns nothing here: the other user who plants links.
pub const OTHER_UID: u32 = 4321;

/// True when the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A directory another user may write into, as /tmp or a home directory shared with its
/// owner: sticky, world-writable, owned by [`OTHER_UID`] when root (so that the kernel's
/// `protected_symlinks` lets root follow that user's links there), with a victim file
/// outside it.
pub struct Planted {
    /// The shared directory.
    pub dir: tempfile::TempDir,
    /// Outside it: the file that links point at.
    pub victims: tempfile::TempDir,
}

impl Planted {
    /// The directories, with the victim.
    pub fn new() -> Planted {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(dir.path(), Some(OTHER_UID), Some(OTHER_UID)).unwrap();
        }
        let victims = tempfile::tempdir().unwrap();
        std::fs::write(victims.path().join("victim"), b"precious\n").unwrap();
        Planted { dir, victims }
    }

    /// A link named `name` in the shared directory to `target` in the victims' one, owned
    /// by the other user when root.
    pub fn link(&self, name: &str, target: &str) -> PathBuf {
        let at = self.dir.path().join(name);
        std::os::unix::fs::symlink(self.victims.path().join(target), &at).unwrap();
        if is_root() {
            std::os::unix::fs::lchown(&at, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
        }
        at
    }

    /// The victim is as it was, and nothing was made beside it.
    pub fn assert_untouched(&self) {
        let victim = self.victims.path().join("victim");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
        let names: Vec<_> = std::fs::read_dir(self.victims.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"], "a file was created through a link");
    }
}
