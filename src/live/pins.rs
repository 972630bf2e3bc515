//! The namespace files of live groups, held open while the group lives.
//!
//! For each link of each NAMESPACES record the kernel looks up the namespace's nsfs dentry
//! (`ns_get_path`). With no file open on the namespace there is none to find: every record
//! allocates a dentry and an inode per link and frees them again through RCU, which is
//! what made a fork loop inside a container cost more under nswatch than on the host, where
//! nswatch holds its own namespaces ([`super::open::pin_own_namespaces`]). Holding the files
//! of every live group's own namespaces turns each link into a reference count.
//!
//! A held file keeps its namespace alive (a network namespace keeps its interfaces, a mount
//! namespace its mounts), so a group's files are closed as soon as the model declares the
//! group ended: its exit linger ([`crate::model::attributor::EXIT_LINGER_NS`]) after its last task left,
//! plus the time the reader takes to hand the end on. While held, the namespace's inode
//! number cannot be reused either, which is what Inspektor Gadget holds them for.
//!
//! At most [`Pins::budget`] files are held: half of the open-files limit (RLIMIT_NOFILE)
//! left when the session starts, so that the rings, the output and /proc reads always have
//! room. Past it a new group is not held (its records cost what they cost perf) and
//! [`Pins::skipped`] counts it; the limit is raised with `ulimit -n` or `LimitNOFILE=`.

use crate::model::{Attributor, Change, ChangeKind, GroupId};
use crate::record::NS_KINDS;
use hashbrown::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

/// Open namespace files, shared by the groups that hold them.
#[derive(Debug)]
pub struct Pins {
    /// By nsfs inode: the open file and how many live groups hold it.
    files: HashMap<u64, (OwnedFd, u32)>,
    /// The inodes each group holds.
    by_group: HashMap<GroupId, Vec<u64>>,
    budget: usize,
    skipped: u64,
    peak: usize,
}

impl Pins {
    /// Holds at most `budget` files.
    pub fn new(budget: usize) -> Pins {
        Pins {
            files: HashMap::new(),
            by_group: HashMap::new(),
            budget,
            skipped: 0,
            peak: 0,
        }
    }

    /// Half of the file descriptors the open-files limit leaves now.
    pub fn budget_from_limit() -> usize {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
            return 0;
        }
        let open = std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count());
        let limit = usize::try_from(rl.rlim_cur).unwrap_or(usize::MAX);
        limit.saturating_sub(open) / 2
    }

    /// Holds the namespaces of a group that started, closes those of one that ended.
    pub fn see(&mut self, model: &Attributor, change: &Change) {
        match change.kind {
            ChangeKind::Start => self.hold(model, change.group),
            ChangeKind::Exit => self.release(change.group),
            ChangeKind::Rename => {}
        }
    }

    /// Opens the files of `group`'s own namespaces (those that differ from the host's)
    /// through its first task, if it lives and still has them.
    pub fn hold(&mut self, model: &Attributor, group: GroupId) {
        let g = model.group(group);
        if g.differs == 0 || self.by_group.contains_key(&group) {
            return;
        }
        let set = model.sets().get(g.first_set);
        let mut held = Vec::new();
        for kind in NS_KINDS {
            if g.differs & (1 << kind as u32) == 0 {
                continue;
            }
            let Some(link) = set.get(kind) else { continue };
            if let Some((_, refs)) = self.files.get_mut(&link.ino) {
                *refs += 1;
                held.push(link.ino);
                continue;
            }
            if self.files.len() >= self.budget {
                self.skipped += 1;
                break;
            }
            let path = format!("/proc/{}/ns/{}", g.leader, kind.name());
            let Ok(f) = std::fs::File::open(path) else {
                continue;
            };
            // The task may have moved since: hold only the namespace the group is.
            if f.metadata().is_ok_and(|m| m.ino() == link.ino) {
                self.files.insert(link.ino, (OwnedFd::from(f), 1));
                held.push(link.ino);
            }
        }
        self.peak = self.peak.max(self.files.len());
        if !held.is_empty() {
            self.by_group.insert(group, held);
        }
    }

    /// Closes the files `group` held that no other live group holds.
    pub fn release(&mut self, group: GroupId) {
        for ino in self.by_group.remove(&group).unwrap_or_default() {
            if let Some((_, refs)) = self.files.get_mut(&ino) {
                *refs -= 1;
                if *refs == 0 {
                    self.files.remove(&ino);
                }
            }
        }
    }

    /// Files held now.
    pub fn held(&self) -> usize {
        self.files.len()
    }

    /// The most files held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The most files this holds.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Groups not held (or held in part) for want of room under the budget.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}
