//! Which group a namespace set belongs to: a live group, an ended one started again, or a
//! new one, named after its key (and superseding a dead group whose numbers came back).

use super::*;

impl Attributor {
    /// The group of `set`, started now if there is none, or if the namespaces that make
    /// its key were just created (`created`, a link mask): a key's numbers seen again are
    /// the same namespaces unless a creation says they were reused. An ended group entered
    /// again starts again. Returns whether the group is new.
    pub(super) fn group_for(
        &mut self,
        set: SetId,
        time: u64,
        tid: u32,
        created: u32,
    ) -> (GroupId, bool) {
        if let Some(g) = live_group_of(&self.set_group, &self.groups, &self.slots, set) {
            return (g, false);
        }
        // Known and ended.
        if let Some(&Some(g)) = self.set_group.get(set.0 as usize) {
            if created & key_mask(&self.group(g).key) == 0 {
                self.restart(g, time);
                return (g, false);
            }
        }
        let s = *self.sets.get(set);
        if unreadable(&s) || !self.host_known {
            return (GroupId::HOST, false);
        }
        let (kind, key) = classify(&s, &self.host);
        let found = if kind == Kind::Host {
            Some(GroupId::HOST)
        } else {
            self.by_key.get(&key).copied()
        };
        if let Some(g) = found {
            let ended = self.group(g).ended_ns.is_some();
            if !ended || created & key_mask(&key) == 0 {
                if ended {
                    self.restart(g, time);
                }
                self.remember(set, g);
                return (g, false);
            }
            // Its namespaces are gone and new ones carry their numbers.
            self.supersede(g, time);
        }
        // The group whose label names a namespace just created with its number is dead
        // too: every kind of namespace takes its number from one allocator, so while one
        // lives no other has it (a dead mnt namespace's number may come back as a net
        // namespace's).
        let base = Group::label_for(kind, &key, 0);
        if let (Some(&h), Some((i, _))) = (self.labels.get(&base), Group::primary(kind, &key)) {
            if created & (1 << i) != 0 && self.group(h).ended_ns.is_some() {
                self.supersede(h, time);
            }
        }
        // Groups that share their first one's namespace at once are named after it.
        let mut label = base.clone();
        let mut n = 0;
        while self.labels.contains_key(&label) {
            n += 1;
            label = Group::label_for(kind, &key, n);
        }
        let gen = self.generations.entry(base).or_insert(0);
        let generation = *gen;
        *gen += 1;
        let id = GroupId(self.next_group);
        self.next_group += 1;
        if id.0 as usize != self.groups.len() {
            self.slots.insert(id, self.groups.len() as u32);
        }
        self.labels.insert(label.clone(), id);
        self.groups.push(Group {
            id,
            kind,
            key,
            generation,
            first_set: set,
            differs: differs_from_host(&s, &self.host),
            label,
            started_ns: time,
            ended_ns: None,
            live_tasks: 0,
            leader: tid,
            // The task itself when it unshared; its parent's name when it was just forked
            // (a child carries its parent's comm until it execs).
            creator: self.live.get(&tid).map(|t| t.comm().to_string()),
            naming: Naming::default(),
            // Until a task that is no kernel thread enters it.
            kernel_threads: true,
        });
        self.by_key.insert(key, id);
        self.note_live(id, true);
        self.remember(set, id);
        self.changes.push(Change {
            time_ns: time,
            kind: ChangeKind::Start,
            group: id,
        });
        (id, true)
    }

    /// Forgets ended group `g` as a place to go: its namespaces are gone (new ones carry
    /// their numbers), so its key, label and sets lead elsewhere from now on. An end not
    /// declared yet is declared now, before the start of the group that replaces it.
    pub(super) fn supersede(&mut self, g: GroupId, time: u64) {
        let group = &self.groups[self.slot(g).expect("a group the model has")];
        if self.labels.get(&group.label) == Some(&g) {
            self.labels.remove(&group.label);
        }
        if self.by_key.get(&group.key) == Some(&g) {
            self.by_key.remove(&group.key);
        }
        for slot in self.set_group.iter_mut().filter(|s| **s == Some(g)) {
            *slot = None;
        }
        if let Some(i) = self.exiting.iter().position(|(x, _)| *x == g) {
            let (_, left) = self.exiting.remove(i).expect("found above");
            self.changes.push(Change {
                time_ns: time.saturating_sub(1).max(left),
                kind: ChangeKind::Exit,
                group: g,
            });
            self.declared(g, left);
        }
    }

    /// An ended group that a task entered again (its namespaces lived on, held by a file
    /// or a mount): the same group, live again. Within [`EXIT_LINGER_NS`] of its last
    /// task's leaving its end was never declared, and nothing is; after, it starts again.
    pub(super) fn restart(&mut self, g: GroupId, time: u64) {
        self.group_mut(g).ended_ns = None;
        self.note_live(g, true);
        if let Some(i) = self.exiting.iter().rposition(|(x, _)| *x == g) {
            self.exiting.remove(i);
            return;
        }
        self.changes.push(Change {
            time_ns: time,
            kind: ChangeKind::Start,
            group: g,
        });
    }

    /// For a group just started with a pid namespace never seen before, the pid namespace
    /// it was created in: that of the task it came from (`from`, the parent's set for a
    /// new task). Unshare and setns of the pid namespace move only children, so a new pid
    /// link always comes with a new task. What NS_GET_PARENT said at start is kept.
    pub(super) fn note_pid_parent(&mut self, g: GroupId, from: Option<&NsSet>) {
        let Some(parent) = from.and_then(|f| f.get(NsKind::Pid)).filter(|l| l.ino != 0) else {
            return;
        };
        let group = &self.groups[self.slot(g).expect("a group the model has")];
        if let Some(pid) = group.key.get(NsKind::Pid).filter(|l| l.ino != 0) {
            if pid != parent {
                self.pid_parents.entry(pid).or_insert(parent);
            }
        }
    }

    pub(super) fn remember(&mut self, set: SetId, g: GroupId) {
        let i = set.0 as usize;
        if self.set_group.len() <= i {
            self.set_group.resize(i + 1, None);
        }
        self.set_group[i] = Some(g);
    }
}
