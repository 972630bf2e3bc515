//! The model's clock and its history window: time moving on ends the tasks whose grace
//! period is over and declares the groups left without a task, and what ended before the
//! window is given back (`--history`).

use super::*;

impl Attributor {
    /// Moves the model's clock to `time_ns` (event time) if that is later, forgetting the
    /// ended tasks whose grace period is over: what [`Attributor::observe`] does first,
    /// for a caller that only asks ([`Attributor::task_at`]) about a time.
    #[inline]
    pub fn advance(&mut self, time_ns: u64) {
        if time_ns <= self.now_ns {
            return;
        }
        self.now_ns = time_ns;
        // Inline, only whether anything is due: every event of a storm moves the clock,
        // and a call to do nothing cost it ~40 instructions.
        if self.dead_due(time_ns) || self.exit_due(time_ns) || self.history_ns.is_some() {
            self.catch_up(time_ns);
        }
    }

    /// True when the oldest ended task's grace period is over at `now`.
    #[inline(always)]
    pub(super) fn dead_due(&self, now: u64) -> bool {
        self.dead
            .front()
            .is_some_and(|t| t.ended_ns.saturating_add(self.grace_ns) < now)
    }

    /// True when the oldest group left without a task has lingered its
    /// [`EXIT_LINGER_NS`] at `now`.
    #[inline(always)]
    pub(super) fn exit_due(&self, now: u64) -> bool {
        self.exiting
            .front()
            .is_some_and(|&(_, t)| t.saturating_add(EXIT_LINGER_NS) <= now)
    }

    /// What [`Attributor::advance`] found due at `now`.
    #[inline(never)]
    pub(super) fn catch_up(&mut self, now: u64) {
        self.prune();
        self.declare_ended(now);
        if let Some(h) = self.history_ns {
            self.forget_groups(h);
        }
    }

    /// The input ended: declares the end of every group left without a task, whatever
    /// time it has been so (at the latest event time, or when the linger would have ended
    /// if that is earlier). Call it before taking the last changes.
    pub fn finish(&mut self) {
        while let Some((g, t)) = self.exiting.pop_front() {
            self.changes.push(Change {
                time_ns: t.saturating_add(EXIT_LINGER_NS).min(self.now_ns.max(t)),
                kind: ChangeKind::Exit,
                group: g,
            });
            self.declared(g, t);
        }
    }

    /// Declares ended the groups that have been without a task for [`EXIT_LINGER_NS`] at
    /// `now`, stamped with the time that became so.
    pub(super) fn declare_ended(&mut self, now: u64) {
        while self.exit_due(now) {
            let Some((g, t)) = self.exiting.pop_front() else {
                break;
            };
            let at = t.saturating_add(EXIT_LINGER_NS);
            self.changes.push(Change {
                time_ns: at,
                kind: ChangeKind::Exit,
                group: g,
            });
            self.declared(g, t);
        }
    }

    /// Notes that the end of `g`, whose last task left at `left`, was declared: with a
    /// history window, it is given back once that is older than the window.
    pub(super) fn declared(&mut self, g: GroupId, left: u64) {
        if self.history_ns.is_some() {
            self.ended_groups.push_back((g, left));
        }
    }

    /// Takes the ended groups whose last task left more than `history` ago, and gives
    /// them back once enough wait (a [`COMPACT_EVERY`]-th of the table, at least
    /// [`COMPACT_MIN`]): giving back moves the table, so a group's share of it stays
    /// constant however fast the churn. Fewer are given back once they have waited a
    /// window: at most once a window, whatever the number of tasks walked.
    pub(super) fn forget_groups(&mut self, history: u64) {
        let now = self.now_ns;
        while let Some(&(g, left)) = self.ended_groups.front() {
            let Some(group) = self.find_group(g) else {
                self.ended_groups.pop_front();
                continue;
            };
            if group.ended_ns != Some(left) {
                // Started again since (and, if it ended again, queued again).
                self.ended_groups.pop_front();
                continue;
            }
            if left.saturating_add(history) >= now {
                break;
            }
            self.ended_groups.pop_front();
            if self.doomed.is_empty() {
                self.doomed_since = now;
            }
            self.doomed.push(g);
        }
        if !self.doomed.is_empty()
            && (self.doomed.len() >= COMPACT_MIN.max(self.groups.len() / COMPACT_EVERY)
                || now.saturating_sub(self.doomed_since) > history)
        {
            self.compact(history);
        }
    }

    /// Gives back the doomed groups still ended before the window (one entered again since
    /// lives on; one whose end is among the changes not taken yet waits for the next
    /// time), and what only they held: their entries in the key, label, generation,
    /// set and pid-parent tables, the task intervals older than the window, the sets no
    /// one holds. O(groups + tasks + sets), once per many groups given back.
    pub(super) fn compact(&mut self, history: u64) {
        let now = self.now_ns;
        let changed: hashbrown::HashSet<GroupId> = self.changes.iter().map(|c| c.group).collect();
        let mut gone: hashbrown::HashSet<GroupId> = hashbrown::HashSet::new();
        let mut wait = Vec::new();
        for g in std::mem::take(&mut self.doomed) {
            let Some(group) = self.find_group(g) else {
                continue;
            };
            match group.ended_ns {
                Some(e) if e.saturating_add(history) < now => {}
                // Entered again: if it ends again, it is queued again.
                _ => continue,
            }
            if changed.contains(&g) {
                wait.push(g);
            } else {
                gone.insert(g);
            }
        }
        self.doomed = wait;
        self.doomed_since = now;
        if gone.is_empty() {
            return;
        }
        // No interval older than the window is kept (the grace period is within it), so
        // no task answers with a group given back; a group a task still holds (counts gone
        // wrong) is kept rather than left dangling.
        let horizon = now.saturating_sub(self.grace_ns);
        for t in self.live.values_mut().chain(self.dead.iter_mut()) {
            t.forget_before(horizon, true);
            for iv in t.intervals() {
                gone.remove(&iv.group);
            }
        }
        self.forgotten += gone.len() as u64;
        self.groups.retain(|g| !gone.contains(&g.id));
        self.slots.clear();
        for (i, g) in self.groups.iter().enumerate() {
            if g.id.0 as usize != i {
                self.slots.insert(g.id, i as u32);
            }
        }
        self.by_key.retain(|_, g| !gone.contains(g));
        self.labels.retain(|_, g| !gone.contains(g));
        for slot in self.set_group.iter_mut() {
            if slot.is_some_and(|g| gone.contains(&g)) {
                *slot = None;
            }
        }
        // A later group with a forgotten one's label counts its generation from 0.
        let bases: hashbrown::HashSet<String> = self
            .groups
            .iter()
            .map(|g| Group::label_for(g.kind, &g.key, 0))
            .collect();
        self.generations.retain(|base, _| bases.contains(base));
        let pids: hashbrown::HashSet<NsLink> = self
            .groups
            .iter()
            .filter_map(|g| g.key.get(NsKind::Pid).filter(|l| l.ino != 0))
            .collect();
        self.pid_parents.retain(|child, _| pids.contains(child));
        // The sets still held: the groups' first ones, the tasks' intervals, the host's.
        let host = self.sets.intern(&self.host);
        let mut held = vec![false; self.sets.id_bound()];
        held[host.0 as usize] = true;
        for s in self.groups.iter().map(|g| g.first_set).chain(
            self.live
                .values()
                .chain(self.dead.iter())
                .flat_map(Task::sets),
        ) {
            held[s.0 as usize] = true;
        }
        self.sets.retain(|id| held[id.0 as usize]);
        for (i, slot) in self.set_group.iter_mut().enumerate() {
            if !held.get(i).copied().unwrap_or(false) {
                *slot = None;
            }
        }
        self.set_group.truncate(self.sets.id_bound());
        self.shrink();
    }

    /// Gives back the slack of the tables a burst of groups grew ([`GiveBackSlack`]).
    pub(super) fn shrink(&mut self) {
        self.groups.give_back_slack();
        self.slots.give_back_slack();
        self.by_key.give_back_slack();
        self.labels.give_back_slack();
        self.generations.give_back_slack();
        self.pid_parents.give_back_slack();
        self.live_by_pid.give_back_slack();
        self.exiting.give_back_slack();
        self.ended_groups.give_back_slack();
        self.doomed.give_back_slack();
        self.set_group.give_back_slack();
        self.sets.shrink();
    }
}
