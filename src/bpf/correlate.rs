//! One namespace change, one event: a successful call's [`Cause`] waits for the perf
//! NAMESPACES record it makes, and travels in that record's event.
//!
//! The merge orders a cause by its entry time, and the kernel writes the record between
//! entry and exit, so the cause always comes first: it waits here, keyed by the caller's
//! tid (setns, unshare) or by the child's (clone, clone3: learned from the FORK record
//! that perf writes just before the child's NAMESPACES record, since clone's return value
//! is the child's pid in the caller's pid namespace, not the host's). Once the merged
//! stream has passed a call's exit time, no record of it can come: the cause is handed
//! back to be written on its own.

use super::event::Cause;

/// Causes waiting for their NAMESPACES record.
#[derive(Debug, Default)]
pub struct Correlator {
    // Boxed: a cause travels from the ring buffer through the merge heap to here and on to
    // its event, and a ~250-byte struct moved at every step showed at the top of profiles.
    #[allow(clippy::vec_box)]
    pending: Vec<Box<Cause>>,
}

impl Correlator {
    /// An empty correlator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a cause from the merge. Returns it when no perf record will follow (the call
    /// failed, so it changed nothing; or it was an exec, for which perf writes none), to be
    /// written as an "ns_syscall" event now.
    pub fn syscall(&mut self, c: Box<Cause>) -> Option<Box<Cause>> {
        if c.ok() && c.syscall.makes_record() {
            self.pending.push(c);
            None
        } else {
            Some(c)
        }
    }

    /// A FORK record: `tid` was created by `ptid` at `time`.
    pub fn fork(&mut self, ptid: u32, tid: u32, time: u64) {
        if let Some(p) = self.pending.iter_mut().find(|p| {
            p.syscall.creates_task()
                && p.tid == ptid
                && p.child_tid.is_none()
                && (p.enter_ns..=p.exit_ns).contains(&time)
        }) {
            p.child_tid = Some(tid);
        }
    }

    /// A NAMESPACES record of `tid` at `time`: the cause of that change, if one waits.
    pub fn namespaces(&mut self, tid: u32, time: u64) -> Option<Box<Cause>> {
        if self.pending.is_empty() {
            return None;
        }
        let i = self.pending.iter().position(|p| {
            let who = if p.syscall.creates_task() {
                p.child_tid
            } else {
                Some(p.tid)
            };
            who == Some(tid) && (p.enter_ns..=p.exit_ns).contains(&time)
        })?;
        Some(self.pending.swap_remove(i))
    }

    /// The merged stream reached `time`: hands back the causes of calls that ended before
    /// it, whose record will not come.
    pub fn expire(&mut self, time: u64, out: &mut Vec<Box<Cause>>) {
        if self.pending.iter().any(|p| p.exit_ns < time) {
            let (gone, keep): (Vec<_>, Vec<_>) =
                self.pending.drain(..).partition(|p| p.exit_ns < time);
            self.pending = keep;
            out.extend(gone);
        }
    }

    /// Hands back everything still waiting (at the end of a capture).
    pub fn finish(&mut self) -> Vec<Box<Cause>> {
        std::mem::take(&mut self.pending)
    }

    /// How many causes wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::event::Syscall;

    fn cause(syscall: Syscall, tid: u32, enter: u64, exit: u64, ret: i64) -> Box<Cause> {
        Box::new(Cause {
            syscall,
            ret,
            enter_ns: enter,
            exit_ns: exit,
            pid: tid,
            tid,
            comm: "t".into(),
            dev: 4,
            ..Cause::blank()
        })
    }

    #[test]
    fn setns_matches_its_record_in_time() {
        let mut c = Correlator::new();
        assert!(c.syscall(cause(Syscall::Setns, 10, 100, 200, 0)).is_none());
        assert!(c.namespaces(11, 150).is_none(), "another tid");
        assert!(c.namespaces(10, 250).is_none(), "after the exit");
        assert_eq!(c.namespaces(10, 150).unwrap().tid, 10);
        assert!(c.is_empty());
    }

    #[test]
    fn clone_matches_the_child_learned_from_fork() {
        let mut c = Correlator::new();
        assert!(c.syscall(cause(Syscall::Clone3, 10, 100, 200, 5)).is_none());
        assert!(c.namespaces(77, 150).is_none(), "child not known yet");
        c.fork(10, 77, 140);
        let m = c.namespaces(77, 150).unwrap();
        assert_eq!(m.child_tid, Some(77));
    }

    #[test]
    fn failures_pass_and_unmatched_expire() {
        let mut c = Correlator::new();
        let failed = cause(Syscall::Setns, 10, 100, 200, -(libc::EINVAL as i64));
        assert_eq!(c.syscall(failed.clone()), Some(failed));
        c.syscall(cause(Syscall::Unshare, 10, 100, 200, 0));
        c.syscall(cause(Syscall::Unshare, 12, 100, 400, 0));
        let mut out = Vec::new();
        c.expire(200, &mut out);
        assert!(out.is_empty(), "a record at the exit time may still come");
        c.expire(201, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.finish().len(), 1);
    }

    #[test]
    fn an_exec_into_a_time_namespace_passes_at_once() {
        let mut c = Correlator::new();
        let exec = cause(Syscall::Execve, 10, 100, 200, 0);
        assert_eq!(
            c.syscall(exec.clone()),
            Some(exec),
            "perf writes no record for it"
        );
        assert!(c.is_empty());
    }
}
