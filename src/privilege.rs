//! The privileges nswatch runs with, kept to tracing. nswatch opens files its user names
//! (`report FILE`, `export -o FILE`, `record -o FILE`, `top --replay FILE`), so that no
//! privilege beyond the user's may reach them: a set-user-ID or set-group-ID run is
//! refused ([`refuse_set_id`]), and for a user who is not root the capabilities that
//! bypass file permission checks are taken out of the effective set at start
//! ([`drop_file_overrides`]), raised again only around the one open that needs one
//! ([`with_capability`]). See docs/DESIGN.md, "Privileges".

use std::fmt;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// Capabilities that let a process open, create or change files its user could not:
/// CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID.
pub const FILE_OVERRIDES: [u32; 5] = [0, 1, 2, 3, 4];
/// CAP_DAC_READ_SEARCH, which `open_by_handle_at` asks for ([`crate::census::cgroup_path`]).
pub const CAP_DAC_READ_SEARCH: u32 = 2;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's capability sets (capget), as 64-bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
}

impl Caps {
    /// The calling thread's sets.
    pub fn current() -> std::io::Result<Caps> {
        let mut header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: a version 3 header and the two data words it asks for.
        let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let join = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32;
        Ok(Caps {
            effective: join(|d| d.effective),
            permitted: join(|d| d.permitted),
            inheritable: join(|d| d.inheritable),
        })
    }

    /// Makes these the calling thread's sets (capset): raising needs the capability
    /// permitted, lowering always succeeds.
    pub fn apply(&self) -> std::io::Result<()> {
        let mut header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let split = |m: u64| [m as u32, (m >> 32) as u32];
        let (e, p, i) = (
            split(self.effective),
            split(self.permitted),
            split(self.inheritable),
        );
        let data: [CapData; 2] = std::array::from_fn(|w| CapData {
            effective: e[w],
            permitted: p[w],
            inheritable: i[w],
        });
        // SAFETY: a version 3 header and the two data words it reads.
        let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether capability `cap` is effective.
    pub fn has(&self, cap: u32) -> bool {
        self.effective & (1 << cap) != 0
    }
}

/// A run set-user-ID or set-group-ID: the real and effective ids differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetId {
    /// Real and effective user ids.
    pub uid: (u32, u32),
    /// Real and effective group ids.
    pub gid: (u32, u32),
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing to run set-user-ID or set-group-ID (real uid {}, effective uid {}; real \
             gid {}, effective gid {}): nswatch opens the files its user names and would read \
             or write them with the owner's rights. To let users trace, give the binary \
             capabilities instead, which leave file access to the user: \
             setcap cap_perfmon,cap_bpf+ep PATH (see the README, \"Security\")",
            self.uid.0, self.uid.1, self.gid.0, self.gid.1
        )
    }
}

impl std::error::Error for SetId {}

/// Refuses a set-user-ID or set-group-ID run (real ≠ effective uid or gid). There is no
/// switch to allow it: a flag or an environment variable would be the invoking user's to
/// set, and file capabilities give the tracing rights without file access.
pub fn refuse_set_id() -> Result<(), SetId> {
    // SAFETY: these getters cannot fail.
    let (ruid, euid, rgid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if ruid != euid || rgid != egid {
        return Err(SetId {
            uid: (ruid, euid),
            gid: (rgid, egid),
        });
    }
    Ok(())
}

/// For a user who is not root (real uid ≠ 0), takes [`FILE_OVERRIDES`] out of the
/// effective set (they stay permitted, for [`with_capability`]); returns those taken out.
/// Threads started later inherit the sets, so this runs first. Root keeps its rights:
/// they are its own.
pub fn drop_file_overrides() -> std::io::Result<u64> {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        return Ok(0);
    }
    let mut caps = Caps::current()?;
    let mask = FILE_OVERRIDES.iter().fold(0u64, |m, c| m | 1 << c);
    let dropped = caps.effective & mask;
    if dropped != 0 {
        caps.effective &= !mask;
        caps.apply()?;
    }
    Ok(dropped)
}

/// Runs `f` with capability `cap` effective when it is permitted but was taken out by
/// [`drop_file_overrides`], and takes it out again after: for opens whose target nswatch
/// chooses, never one its user names. Capabilities are per thread: only this thread's
/// opens in `f` have it.
pub fn with_capability<T>(cap: u32, f: impl FnOnce() -> T) -> T {
    let raised = Caps::current().ok().filter(|c| {
        c.permitted & (1 << cap) != 0
            && !c.has(cap)
            && Caps {
                effective: c.effective | 1 << cap,
                ..*c
            }
            .apply()
            .is_ok()
    });
    let out = f();
    if let Some(before) = raised {
        // Back to the sets before; a failure here would leave the capability raised,
        // which nothing after may risk.
        if let Err(e) = before.apply() {
            panic!("lowering capability {cap} again: {e}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_read_back_as_applied() {
        let now = Caps::current().unwrap();
        now.apply().unwrap();
        assert_eq!(Caps::current().unwrap(), now);
        // Nothing permitted beyond what is: raising is a no-op then.
        let v = with_capability(63, || 7);
        assert_eq!(v, 7);
        assert_eq!(Caps::current().unwrap(), now);
    }

    #[test]
    fn this_run_is_not_set_id() {
        assert_eq!(refuse_set_id(), Ok(()));
        let e = SetId {
            uid: (65534, 0),
            gid: (65534, 65534),
        };
        assert!(e.to_string().contains("real uid 65534, effective uid 0"));
    }
}
