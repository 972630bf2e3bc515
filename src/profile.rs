//! Samples counted per container (`nswatch report --by container`) and per-container folded
//! stacks (`--folded`). Pure: the caller attributes each sample with the model at the
//! sample's time and names its frames; this module only counts.

use crate::model::GroupId;
use hashbrown::HashMap;

/// The samples of one group (or of no known group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// The group, `None` for samples of tasks the model never saw.
    pub group: Option<GroupId>,
    /// Samples.
    pub samples: u64,
    /// Sum of the samples' periods (ns for cpu-clock, events for hardware counters).
    pub period: u64,
    /// Samples per command name.
    pub comms: HashMap<Box<str>, u64>,
}

impl Row {
    /// The `n` command names with the most samples, most first (ties by name).
    pub fn top_comms(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.comms.iter().map(|(c, n)| (&**c, *n)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

/// Samples per group and, when asked for, folded stacks.
#[derive(Debug, Default)]
pub struct ContainerProfile {
    rows: HashMap<Option<GroupId>, Row>,
    folded: HashMap<String, u64>,
    samples: u64,
    period: u64,
}

/// Characters that would break a folded line: `;` separates frames and a newline ends the
/// line (the count is the text after the last space, so spaces are fine).
fn push_frame(out: &mut String, frame: &str) {
    out.push(';');
    if frame.contains([';', '\n', '\r']) {
        out.extend(frame.chars().map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        }));
    } else {
        out.push_str(frame);
    }
}

impl ContainerProfile {
    /// An empty profile.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one sample of `comm` in `group` (`period` 0 when the sample has none).
    pub fn add(&mut self, group: Option<GroupId>, comm: &str, period: u64) {
        self.samples += 1;
        self.period = self.period.saturating_add(period);
        let row = self.rows.entry(group).or_insert_with(|| Row {
            group,
            ..Row::default()
        });
        row.samples += 1;
        row.period = row.period.saturating_add(period);
        match row.comms.get_mut(comm) {
            Some(n) => *n += 1,
            None => {
                row.comms.insert(comm.into(), 1);
            }
        }
    }

    /// Counts one stack for the folded output: `container;comm;root…leaf`, from frames
    /// given leaf first as perf records them.
    pub fn add_stack(&mut self, container: &str, comm: &str, frames_leaf_first: &[String]) {
        let mut key = String::with_capacity(64);
        push_frame(&mut key, container);
        push_frame(&mut key, comm);
        for f in frames_leaf_first.iter().rev() {
            push_frame(&mut key, f);
        }
        key.remove(0);
        *self.folded.entry(key).or_default() += 1;
    }

    /// Every sample counted.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The sum of every sample's period.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The rows, most samples first (ties: larger period, then group id; unknown last).
    pub fn rows(&self) -> Vec<&Row> {
        let mut v: Vec<&Row> = self.rows.values().collect();
        v.sort_unstable_by(|a, b| {
            b.samples
                .cmp(&a.samples)
                .then(b.period.cmp(&a.period))
                .then(a.group.is_none().cmp(&b.group.is_none()))
                .then(a.group.cmp(&b.group))
        });
        v
    }

    /// Folded stacks and their counts, sorted by stack (as stackcollapse tools write them).
    pub fn folded(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.folded.iter().map(|(k, n)| (&**k, *n)).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_the_samples_and_sort_by_count() {
        let mut p = ContainerProfile::new();
        p.add(Some(GroupId(0)), "sh", 10);
        p.add(Some(GroupId(3)), "sh", 10);
        p.add(Some(GroupId(3)), "sleep", 5);
        p.add(None, "?", 1);
        let rows = p.rows();
        assert_eq!(rows[0].group, Some(GroupId(3)));
        assert_eq!((rows[0].samples, rows[0].period), (2, 15));
        assert_eq!(rows[0].top_comms(1), [("sh", 1)]);
        assert_eq!(rows.last().unwrap().group, None);
        assert_eq!(rows.iter().map(|r| r.samples).sum::<u64>(), p.samples());
        assert_eq!(p.period(), 26);
    }

    #[test]
    fn folded_stacks_are_root_first_and_escaped() {
        let mut p = ContainerProfile::new();
        let leaf_first = [
            "leaf".to_string(),
            "mid;dle".to_string(),
            "main".to_string(),
        ];
        p.add_stack("ct-1", "sh", &leaf_first);
        p.add_stack("ct-1", "sh", &leaf_first);
        p.add_stack("host", "bash", &[]);
        assert_eq!(
            p.folded(),
            [("ct-1;sh;main;mid:dle;leaf", 2), ("host;bash", 1)]
        );
    }
}
