//! Tasks entering, moving between and leaving groups: a NAMESPACES event's set, a fork, an
//! exit, and the count of live tasks that starts and ends a group.

use super::*;

impl Attributor {
    /// Moves `tid` to the set `ns` (its id and its links; adding the task when new) and
    /// takes its command name when known.
    /// `created` has the bits of the namespaces its cause created (see [`created_by`]);
    /// `ppid`, the parent of a task read from /proc (an event's task has it from its FORK).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn set_namespaces(
        &mut self,
        pid: u32,
        tid: u32,
        time: u64,
        born: u64,
        (set, ns): (SetId, &NsSet),
        comm: Option<&str>,
        mut created: u32,
        ppid: Option<u32>,
    ) -> GroupId {
        let forget_before = if self.keep_past {
            self.now_ns.saturating_sub(self.grace_ns)
        } else {
            FORGET_ALL
        };
        let (old, first_own, kernel) = match self.live.get_mut(&tid) {
            Some(t) => {
                if let Some(c) = comm {
                    t.set_comm(c);
                }
                let first_own = std::mem::take(&mut t.awaits_own_ns);
                if t.current.set == set {
                    return t.current.group;
                }
                let kernel = is_kernel_thread(pid, ppid.unwrap_or(t.ppid));
                // A set whose group is known and live is placed without the task's past
                // (what a new group's making reads): the task is then changed in the one
                // lookup that found it. A thread of a setns storm moves so on every record.
                if let Some(g) = live_group_of(&self.set_group, &self.groups, &self.slots, set) {
                    let old = t.current.group;
                    t.move_to(time, set, g, false, forget_before);
                    self.moved(g, Some(old), kernel, time);
                    return g;
                }
                (Some((t.current.group, t.current.set)), first_own, kernel)
            }
            None => (None, false, is_kernel_thread(pid, ppid.unwrap_or(0))),
        };
        // The set it comes from, read only where needed.
        let from = |m: &Self| old.map(|(_, s)| *m.sets.get(s));
        if first_own && born != 0 {
            if let Some(from) = from(self).filter(|f| !unreadable(f)) {
                // A new task's own record, right after its FORK (which gave it its
                // parent's set): what differs from the parent's set is new, made by clone's
                // flags or by the parent's unshare(CLONE_NEWPID) before. (A pid namespace
                // joined through pid_for_children is a live container's, whose group is
                // live.)
                created |= differs_from_host(ns, &from);
            }
        }
        let (g, new) = self.group_for(set, time, tid, created);
        if new {
            self.note_pid_parent(g, from(self).as_ref());
        }
        let old = old.map(|(g, _)| g);
        match old {
            Some(_) => {
                let t = self.live.get_mut(&tid).expect("looked up above");
                t.move_to(time, set, g, new, forget_before);
            }
            None => {
                let mut t = Task::new(pid, tid, born, set, g);
                if let Some(c) = comm {
                    t.set_comm(c);
                }
                if born == 0 {
                    t.current.start_ns = 0;
                }
                self.live.insert(tid, t);
            }
        }
        self.moved(g, old, kernel, time);
        g
    }

    /// The groups' side of a task moving from `old` (none for a new task) to `g`.
    #[inline]
    fn moved(&mut self, g: GroupId, old: Option<GroupId>, kernel: bool, time: u64) {
        let group = self.group_mut(g);
        if !kernel {
            group.kernel_threads = false;
        }
        if old == Some(g) {
            return;
        }
        // Entered: `enter`, with the group already at hand.
        group.live_tasks += 1;
        if let Some(old) = old {
            self.leave(old, time);
        }
    }

    pub(super) fn fork(&mut self, pid: u32, tid: u32, ppid: u32, ptid: u32, time: u64) -> GroupId {
        let mut t = match self.live.get(&ptid) {
            Some(p) => {
                let mut t = Task::new(pid, tid, time, p.current.set, p.current.group);
                t.copy_comm(p);
                t.awaits_own_ns = true;
                t
            }
            // Unknown parent: the child's own NAMESPACES record (same timestamp) says.
            None => Task::new(
                pid,
                tid,
                time,
                self.sets.intern(&NsSet::default()),
                GroupId::HOST,
            ),
        };
        let g = t.current.group;
        t.ppid = ppid;
        if !is_kernel_thread(pid, ppid) {
            self.group_mut(g).kernel_threads = false;
        }
        if let Some(old) = self.live.insert(tid, t) {
            // The EXIT of the tid's previous owner was lost: never merge the two tasks.
            self.retire(old, time);
        }
        self.enter(g);
        g
    }

    pub(super) fn exit(&mut self, tid: u32, time: u64) -> Option<GroupId> {
        match self.live.remove(&tid) {
            Some(t) => Some(self.retire(t, time)),
            None => self.ended_unseen(tid, time),
        }
    }

    /// The group of `tid` that ended without its EXIT: a scan of the machine
    /// ([`Attributor::end_missing`]) ends the tasks it finds gone, and the EXIT of one that
    /// exited after the scan started is read after the scan, from a ring. That EXIT still
    /// belongs to the task's group, whatever the grace period kept of the task.
    pub(super) fn ended_unseen(&mut self, tid: u32, time: u64) -> Option<GroupId> {
        if self.unseen.is_empty() {
            return None;
        }
        self.unseen.retain(|u| u.until_ns >= time);
        let i = self.unseen.iter().position(|u| u.tid == tid)?;
        Some(self.unseen.swap_remove(i).group)
    }

    /// Ends a task taken out of the live table; it stays findable for the grace period.
    pub(super) fn retire(&mut self, mut t: Task, time: u64) -> GroupId {
        t.ended_ns = time.max(t.current.start_ns);
        let (g, tid) = (t.current.group, t.tid);
        self.leave(g, time);
        // Ends come in time order but for a record later than the reorder window (or a
        // task born after its reused tid's lost EXIT): those few are put in their place.
        // One that ended before thousands of others (input whose times go back, such as a
        // capture repeated) is not kept: a place deep in the list costs a shift of what
        // follows, and a stream of them would cost quadratic time.
        match self.dead.back() {
            Some(last) if last.ended_ns > t.ended_ns => {
                let at = self.dead.partition_point(|d| d.ended_ns <= t.ended_ns);
                if self.dead.len() - at > LATE_END_PLACES {
                    return g;
                }
                self.dead.insert(at, t);
            }
            _ => self.dead.push_back(t),
        }
        self.ended_slots[ended_slot(tid)] += 1;
        g
    }

    pub(super) fn prune(&mut self) {
        while self.dead_due(self.now_ns) {
            let Some(t) = self.dead.pop_front() else {
                break;
            };
            self.ended_slots[ended_slot(t.tid)] -= 1;
        }
    }

    #[inline]
    pub(super) fn enter(&mut self, g: GroupId) {
        self.group_mut(g).live_tasks += 1;
    }

    #[inline]
    pub(super) fn leave(&mut self, g: GroupId, time: u64) {
        let group = self.group_mut(g);
        group.live_tasks = group.live_tasks.saturating_sub(1);
        if group.live_tasks == 0 && g != GroupId::HOST {
            group.ended_ns = Some(time);
            self.exiting.push_back((g, time));
            self.note_live(g, false);
        }
    }

    /// Keeps [`Attributor::live_by_pid`] for a container that started or ended.
    pub(super) fn note_live(&mut self, g: GroupId, live: bool) {
        let group = &self.groups[self.slot(g).expect("a group the model has")];
        let Some(pid) = group
            .key
            .get(NsKind::Pid)
            .filter(|_| group.kind == Kind::Container)
        else {
            return;
        };
        let list = self.live_by_pid.entry(pid).or_default();
        if live {
            list.push(g);
        } else {
            list.retain(|&x| x != g);
            if list.is_empty() {
                self.live_by_pid.remove(&pid);
            }
        }
    }
}
