//! Per-group event rates: what happened in the last whole second, and a minute of history
//! for the sparklines.

use hashbrown::HashMap;
use nswatch::model::GroupId;

/// Seconds of history kept per group (the widest sparkline drawn).
pub const HISTORY: usize = 60;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A new task (process or thread).
    Fork,
    /// An exec().
    Exec,
    /// A task ended.
    Exit,
    /// A task changed namespaces (setns, unshare, or was born into new ones).
    Ns,
}

/// Counts of one second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Forks.
    pub forks: u32,
    /// Execs.
    pub execs: u32,
    /// Exits.
    pub exits: u32,
    /// Namespace changes.
    pub ns: u32,
}

impl Counts {
    fn add(&mut self, m: Metric) {
        let c = match m {
            Metric::Fork => &mut self.forks,
            Metric::Exec => &mut self.execs,
            Metric::Exit => &mut self.exits,
            Metric::Ns => &mut self.ns,
        };
        *c = c.saturating_add(1);
    }

    /// Everything counted, for the activity sparkline.
    pub fn sum(&self) -> u32 {
        self.forks
            .saturating_add(self.execs)
            .saturating_add(self.exits)
            .saturating_add(self.ns)
    }
}

/// One group's rates.
#[derive(Debug, Clone)]
pub struct Rate {
    current: Counts,
    /// The last whole second: the rates per second shown.
    pub last: Counts,
    /// Activity ([`Counts::sum`]) per second, oldest first, at most [`HISTORY`].
    history: [u32; HISTORY],
    /// Seconds of history filled so far.
    filled: usize,
    /// Next slot of `history` to write.
    head: usize,
}

impl Default for Rate {
    fn default() -> Rate {
        Rate {
            current: Counts::default(),
            last: Counts::default(),
            history: [0; HISTORY],
            filled: 0,
            head: 0,
        }
    }
}

impl Rate {
    fn roll(&mut self) {
        self.last = std::mem::take(&mut self.current);
        self.history[self.head] = self.last.sum();
        self.head = (self.head + 1) % HISTORY;
        self.filled = (self.filled + 1).min(HISTORY);
    }

    /// The newest `n` seconds of activity, oldest first (fewer while less is known).
    pub fn history(&self, n: usize) -> impl Iterator<Item = u32> + '_ {
        let n = n.min(self.filled);
        (0..n).map(move |i| self.history[(self.head + HISTORY - n + i) % HISTORY])
    }

    /// True when nothing happened in the whole history.
    fn is_quiet(&self) -> bool {
        self.current == Counts::default() && self.history.iter().all(|&v| v == 0)
    }
}

/// Rates of every group, and of the whole machine.
#[derive(Debug, Default, Clone)]
pub struct Rates {
    by_group: HashMap<GroupId, Rate>,
    /// The whole machine.
    pub total: Rate,
    /// Start of the second being counted, ns (event clock); 0 before the first event.
    second_ns: u64,
}

const SECOND: u64 = 1_000_000_000;

impl Rates {
    /// Counts `m` for `group` (and the machine).
    pub fn add(&mut self, group: Option<GroupId>, m: Metric) {
        self.total.current.add(m);
        if let Some(g) = group {
            self.by_group.entry(g).or_default().current.add(m);
        }
    }

    /// Closes every whole second up to `now_ns` (event clock). Returns true when one
    /// closed, so the caller knows the rates changed. Groups that stayed quiet for a whole
    /// history are forgotten: a machine that ran many short containers keeps no trace.
    pub fn advance(&mut self, now_ns: u64) -> bool {
        if self.second_ns == 0 {
            self.second_ns = now_ns;
            return false;
        }
        // Subtracted, not added: a recording's time can be anything up to u64::MAX.
        let elapsed = now_ns.saturating_sub(self.second_ns);
        if elapsed < SECOND {
            return false;
        }
        let seconds = elapsed / SECOND;
        // A long gap (replay of a sparse file, a paused clock) is at most a history of
        // zeros; rolling more changes nothing.
        for _ in 0..seconds.min(HISTORY as u64 + 1) {
            self.total.roll();
            for r in self.by_group.values_mut() {
                r.roll();
            }
        }
        self.by_group.retain(|_, r| !r.is_quiet());
        self.second_ns += seconds * SECOND;
        true
    }

    /// A group's rates (zero when it had no activity).
    pub fn get(&self, group: GroupId) -> Option<&Rate> {
        self.by_group.get(&group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_up_to_the_largest_close_seconds_without_overflow() {
        let mut r = Rates::default();
        r.advance(u64::MAX - SECOND / 2);
        r.add(None, Metric::Fork);
        assert!(!r.advance(u64::MAX));
        let mut r = Rates::default();
        r.advance(1);
        assert!(r.advance(u64::MAX));
        assert!(!r.advance(u64::MAX));
    }

    #[test]
    fn seconds_close_into_rates_and_history() {
        let mut r = Rates::default();
        let g = Some(GroupId(3));
        assert!(!r.advance(10 * SECOND));
        r.add(g, Metric::Fork);
        r.add(g, Metric::Fork);
        r.add(g, Metric::Ns);
        r.add(None, Metric::Exit);
        assert!(!r.advance(10 * SECOND + SECOND / 2));
        assert!(r.advance(11 * SECOND));
        let gr = r.get(GroupId(3)).unwrap();
        assert_eq!(
            gr.last,
            Counts {
                forks: 2,
                execs: 0,
                exits: 0,
                ns: 1
            }
        );
        assert_eq!(r.total.last.sum(), 4);
        r.add(g, Metric::Exec);
        assert!(r.advance(13 * SECOND + 1));
        // Two seconds closed: the exec's, then an empty one.
        let h: Vec<u32> = r.get(GroupId(3)).unwrap().history(10).collect();
        assert_eq!(h, vec![3, 1, 0]);
        assert_eq!(r.get(GroupId(3)).unwrap().last, Counts::default());
    }

    #[test]
    fn quiet_groups_are_forgotten_after_a_history() {
        let mut r = Rates::default();
        r.advance(SECOND);
        r.add(Some(GroupId(1)), Metric::Exit);
        r.advance(2 * SECOND);
        assert!(r.get(GroupId(1)).is_some());
        r.advance((HISTORY as u64 + 3) * SECOND);
        assert!(r.get(GroupId(1)).is_none());
        assert_eq!(r.total.history(HISTORY).count(), HISTORY);
    }
}
