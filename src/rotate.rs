//! Size-based rotation of an output file (`record -o FILE --rotate-size SIZE`), with the
//! names log rotators give (logrotate's default, what Fluent Bit's and Vector's file inputs
//! expect): FILE is always the file being written, FILE.1 the newest rotated one, then
//! FILE.2…, FILE.N the oldest kept. [`crate::out_file::AppendFile`] rotates after a commit
//! that leaves the file at SIZE or more and ends on a whole line, so that no line is ever
//! split across files; see "Output files" in docs/DESIGN.md.
//!
//! A rotation only renames: FILE.N-1 → FILE.N (which removes the oldest), …, FILE.1 →
//! FILE.2, then FILE → FILE.1, and FILE is created anew as the first one was
//! ([`create_new`]: `O_EXCL|O_NOFOLLOW`, 0600, as every output file). A rename moves a name and
//! never follows a link, and at every moment each line is in exactly one file that
//! exists. The file being rotated is complete before it is renamed (nothing is written to
//! it after): a follower by name (`tail -F`) that notices the rename reads it to its end
//! and then follows the new FILE.

use std::fs::File;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates the regular file `path`, which must not exist: `O_CREAT|O_EXCL|O_NOFOLLOW`,
/// mode 0600 whatever the umask, read-write and close-on-exec. Something at the name (a
/// link or file planted by another user) makes it fail with `AlreadyExists`, said as such.
pub fn create_new(path: &Path) -> io::Result<File> {
    let show = path.display();
    let named = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{show}: {what}: {e}"));
    // Readable too: a direct write refused midway makes the writer read back the start of
    // the line it left unfinished (`AppendFile::go_buffered`).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                named(
                    "creating it: something appeared at that name after it was cleared \
                     (a link or file planted by another user?)",
                    e,
                )
            } else {
                named("creating it", e)
            }
        })?;
    // 0600 whatever the umask: the file holds every task of the machine.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| named("setting its mode to 0600", e))?;
    Ok(file)
}

/// How many rotated files are kept when not told (as Tetragon's JSON export keeps).
pub const DEFAULT_KEEP: u32 = 5;

/// Parses a size in bytes: a whole number with an optional suffix K, M, G or T (powers of
/// 1024, as logrotate's `size` and perf's `--mmap-pages` take them; `k`, `KiB`, `KB` and a
/// trailing `B` too). Zero is refused.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "not a size: {s:?} (a number of bytes, with K, M, G or T for KiB, MiB, GiB, TiB)"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (a whole number, e.g. 100M)"))?;
    if n == 0 {
        return Err(format!("{s:?}: a rotation size must be more than 0"));
    }
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// Where and when an output file rotates, and how many rotated files it keeps.
#[derive(Debug, Clone)]
pub struct Rotation {
    path: PathBuf,
    size: u64,
    keep: u32,
    rotations: u64,
}

impl Rotation {
    /// Rotates `path` once it holds `size` bytes or more, keeping `keep` rotated files
    /// (none: the full file is removed).
    pub fn new(path: &Path, size: u64, keep: u32) -> Rotation {
        Rotation {
            path: path.to_path_buf(),
            size,
            keep,
            rotations: 0,
        }
    }

    /// The size from which the file rotates.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many rotated files are kept.
    pub fn keep(&self) -> u32 {
        self.keep
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rotations made so far, the one at start included.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// `FILE.n`.
    pub fn name(&self, n: u32) -> PathBuf {
        let mut s = self.path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    /// Refuses a FILE that rotation cannot take (anything there but a regular file: a
    /// link, a FIFO, a device), before anything starts. [`Rotation::open_first`] looks
    /// again.
    pub fn check(&self) -> io::Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_file() => Ok(()),
            Ok(m) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: is {}; --rotate-size needs a regular file (a new name, or a file \
                     there, which is rotated first)",
                    self.path.display(),
                    kind(&m)
                ),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("{}: cannot look at it: {e}", self.path.display()),
            )),
        }
    }

    /// Creates FILE: a regular file already there with something in it is rotated first
    /// (so that a restarted recorder keeps what the last one wrote among the rotated
    /// files, where FILE.old would be overwritten at the next restart); an empty one is
    /// removed; anything else is refused.
    pub fn open_first(&mut self) -> io::Result<File> {
        self.check()?;
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.len() > 0 => return self.rotate(),
            Ok(_) => std::fs::remove_file(&self.path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{}: removing the empty file there: {e}",
                        self.path.display()
                    ),
                )
            })?,
            Err(_) => {}
        }
        create_new(&self.path)
    }

    /// Renames FILE and its rotated files one step older, the oldest beyond the number
    /// kept removed, and creates a new FILE. The file at FILE must be complete: nothing
    /// is written to it after.
    pub fn rotate(&mut self) -> io::Result<File> {
        let failed = |what: String, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("rotating {}: {what}: {e}", self.path.display()),
            )
        };
        if self.keep == 0 {
            match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(failed("removing it".into(), e))
                }
                _ => {}
            }
        } else {
            // From the oldest: renaming FILE.keep-1 over FILE.keep removes the oldest.
            for n in (1..self.keep).rev() {
                let (from, to) = (self.name(n), self.name(n + 1));
                match std::fs::rename(&from, &to) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(failed(
                            format!("renaming {} to {}", from.display(), to.display()),
                            e,
                        ))
                    }
                    _ => {}
                }
            }
            let first = self.name(1);
            std::fs::rename(&self.path, &first)
                .map_err(|e| failed(format!("renaming it to {}", first.display()), e))?;
        }
        self.rotations += 1;
        create_new(&self.path)
            .map_err(|e| io::Error::new(e.kind(), format!("rotating {}: {e}", self.path.display())))
    }
}

/// What a non-regular file is, for an error.
fn kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_the_usual_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert!(parse_size("0").unwrap_err().contains("more than 0"));
        assert!(parse_size("0M").unwrap_err().contains("more than 0"));
        for bad in ["", "M", "10X", "1.5G", "-1", "10 M M"] {
            assert!(parse_size(bad).unwrap_err().contains("not a size"), "{bad}");
        }
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
    }

    /// Names shift one step at each rotation, the oldest beyond the number kept goes, and
    /// every byte written is in exactly one file.
    #[test]
    fn rotations_shift_the_names_and_keep_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let mut r = Rotation::new(&path, 1, 3);
        let mut f = r.open_first().unwrap();
        for i in 0..6 {
            use std::io::Write;
            writeln!(f, "{i}").unwrap();
            f = r.rotate().unwrap();
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(path.clone()), "");
        assert_eq!(read(r.name(1)), "5\n");
        assert_eq!(read(r.name(2)), "4\n");
        assert_eq!(read(r.name(3)), "3\n");
        assert!(!r.name(4).exists());
        assert_eq!(r.rotations(), 6);
    }

    /// A file left by an earlier run is rotated, not overwritten nor moved to FILE.old;
    /// an empty one is removed; a link or a FIFO is refused and left alone.
    #[test]
    fn the_first_file_rotates_what_was_there_and_refuses_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        std::fs::write(&path, b"earlier\n").unwrap();
        let mut r = Rotation::new(&path, 1 << 20, 2);
        drop(r.open_first().unwrap());
        assert_eq!(std::fs::read(r.name(1)).unwrap(), b"earlier\n");
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!((m.len(), m.permissions().mode() & 0o777), (0, 0o600));
        // Empty: removed and made again, FILE.1 left as it was.
        drop(Rotation::new(&path, 1 << 20, 2).open_first().unwrap());
        assert_eq!(std::fs::read(r.name(1)).unwrap(), b"earlier\n");

        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious\n").unwrap();
        let link = dir.path().join("link.ndjson");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let mut r = Rotation::new(&link, 1 << 20, 2);
        let e = r.open_first().unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert!(e.contains("--rotate-size needs a regular file"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(!r.name(1).exists());
    }

    /// Renames replace names and never follow links: a link planted at FILE.2 is
    /// replaced, its target untouched; one planted at FILE between the rename and the
    /// creation makes the rotation fail.
    #[test]
    fn links_planted_at_the_names_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious\n").unwrap();
        let mut r = Rotation::new(&path, 1, 2);
        let mut f = r.open_first().unwrap();
        for i in 0..2 {
            use std::io::Write;
            writeln!(f, "{i}").unwrap();
            if i == 0 {
                f = r.rotate().unwrap();
                std::os::unix::fs::symlink(&victim, r.name(2)).unwrap();
            }
        }
        drop(r.rotate().unwrap());
        assert_eq!(std::fs::read(r.name(2)).unwrap(), b"0\n");
        assert_eq!(std::fs::read(r.name(1)).unwrap(), b"1\n");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
        // As if planted right after FILE was renamed.
        std::fs::rename(&path, r.name(1)).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = create_new(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    }
}
