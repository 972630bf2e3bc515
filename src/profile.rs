//! Samples counted per container (`nswatch report --by container`), per-container folded
//! stacks (`--folded`) and pprof profiles (`--format pprof`). Pure: the caller attributes
//! each sample with the model at the sample's time and names its frames; this module only
//! counts and encodes.

use crate::model::GroupId;
use crate::symbols::FrameNames;
use hashbrown::HashMap;

/// The samples of one group (or of no known group).
///
/// ```
/// use nswatch::model::GroupId;
/// use nswatch::profile::ContainerProfile;
///
/// let mut p = ContainerProfile::new();
/// p.add(Some(GroupId(1)), "sh", 1_000_000);
/// p.add(Some(GroupId(1)), "sh", 1_000_000);
/// p.add(Some(GroupId(1)), "awk", 1_000_000);
/// let rows = p.rows();
/// assert_eq!(rows[0].samples, 3);
/// assert_eq!(rows[0].top_comms(1), vec![("sh", 2)]);
/// ```
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

/// Samples per group and, when asked for, folded stacks or the stacks of a pprof profile.
///
/// ```
/// use nswatch::model::GroupId;
/// use nswatch::profile::ContainerProfile;
///
/// let mut p = ContainerProfile::new();
/// p.add(Some(GroupId(1)), "sh", 1_000_000);
/// p.add(Some(GroupId(1)), "sh", 1_000_000);
/// p.add(None, "kworker/0:1", 500); // a task the model never saw
/// assert_eq!((p.samples(), p.period()), (3, 2_000_500));
/// let row = p.rows().into_iter().find(|r| r.group == Some(GroupId(1))).unwrap();
/// assert_eq!(row.samples, 2);
/// ```
#[derive(Debug, Default)]
pub struct ContainerProfile {
    rows: HashMap<Option<GroupId>, Row>,
    /// [container, comm, frames leaf first] as name ids → samples, for the folded output.
    folded: HashMap<Box<[u32]>, u64>,
    /// [group (`NO_GROUP` for none), comm, frames leaf first] → (samples, period), for
    /// pprof.
    stacks: HashMap<Box<[u32]>, (u64, u64)>,
    /// The key being looked up, kept to look up without allocating.
    key: Vec<u32>,
    samples: u64,
    period: u64,
}

/// A pprof stack's group slot for samples of no known group.
const NO_GROUP: u32 = u32::MAX;

/// What a pprof profile's values measure: the second value of each sample, its period.
///
/// ```
/// use nswatch::model::GroupId;
/// use nswatch::profile::{ContainerProfile, Labels, PeriodUnit};
/// use nswatch::symbols::FrameNames;
///
/// let mut names = FrameNames::default();
/// let (comm, leaf, root) = (names.intern("sh"), names.intern("do_loop"), names.intern("main"));
/// let mut p = ContainerProfile::new();
/// p.add_pprof_stack(Some(GroupId(1)), comm, &[leaf, root], 1_003_009);
/// let labels = |g: Option<GroupId>| -> Labels {
///     vec![("container", g.map_or("-".to_string(), |g| format!("ct{}", g.0)))]
/// };
/// let mut out = Vec::new();
/// p.write_pprof(PeriodUnit::CpuNanoseconds, labels, &names, &mut out)?;
/// assert_eq!(out[..2], [0x1f, 0x8b]); // gzip
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    /// cpu-clock or task-clock samples: the period is CPU time.
    CpuNanoseconds,
    /// Any other event: the period counts events.
    Events,
}

/// The labels a pprof sample of a group carries: (key, value) pairs, `container` first.
///
/// ```
/// use nswatch::model::GroupId;
/// use nswatch::profile::{ContainerProfile, Labels, PeriodUnit};
/// use nswatch::symbols::FrameNames;
///
/// let mut names = FrameNames::default();
/// let (comm, leaf, root) = (names.intern("sh"), names.intern("do_loop"), names.intern("main"));
/// let mut p = ContainerProfile::new();
/// p.add_pprof_stack(Some(GroupId(1)), comm, &[leaf, root], 1_003_009);
/// let labels = |g: Option<GroupId>| -> Labels {
///     vec![("container", g.map_or("-".to_string(), |g| format!("ct{}", g.0)))]
/// };
/// let mut out = Vec::new();
/// p.write_pprof(PeriodUnit::CpuNanoseconds, labels, &names, &mut out)?;
/// assert_eq!(out[..2], [0x1f, 0x8b]); // gzip
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Labels = Vec<(&'static str, String)>;

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

/// Adds to `key`'s value with `add`, or inserts `first`: the key is copied only when new.
fn count<V>(map: &mut HashMap<Box<[u32]>, V>, key: &[u32], add: impl FnOnce(&mut V), first: V) {
    match map.get_mut(key) {
        Some(v) => add(v),
        None => {
            map.insert(key.into(), first);
        }
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
    /// given leaf first as perf records them; every part is an id of one [`FrameNames`]
    /// (the symbolizer's), which [`ContainerProfile::folded`] is given.
    pub fn add_stack(&mut self, container: u32, comm: u32, frames_leaf_first: &[u32]) {
        self.key.clear();
        self.key.extend([container, comm]);
        self.key.extend_from_slice(frames_leaf_first);
        count(&mut self.folded, &self.key, |n| *n += 1, 1);
    }

    /// Counts one stack for a pprof profile (see [`ContainerProfile::write_pprof`]), from
    /// frames given leaf first as perf records them (ids of one [`FrameNames`], as `comm`).
    pub fn add_pprof_stack(
        &mut self,
        group: Option<GroupId>,
        comm: u32,
        frames_leaf_first: &[u32],
        period: u64,
    ) {
        self.key.clear();
        self.key.extend([group.map_or(NO_GROUP, |g| g.0), comm]);
        self.key.extend_from_slice(frames_leaf_first);
        let add = |v: &mut (u64, u64)| {
            v.0 += 1;
            v.1 = v.1.saturating_add(period);
        };
        count(&mut self.stacks, &self.key, add, (1, period));
    }

    /// Writes the stacks given to [`ContainerProfile::add_pprof_stack`] as a gzipped
    /// `profile.proto` (the format of `go tool pprof`, Pyroscope, Parca and Grafana): two
    /// values per sample, `samples/count` and the period (`cpu/nanoseconds` or
    /// `events/count`), and on every sample the labels `labels(group)` gives (`container`,
    /// `runtime`…) and `comm`. Functions are the frames' names; locations carry no address.
    pub fn write_pprof(
        &self,
        unit: PeriodUnit,
        labels: impl Fn(Option<GroupId>) -> Labels,
        names: &FrameNames,
        out: impl std::io::Write,
    ) -> std::io::Result<()> {
        use prost::Message;
        use std::io::Write;
        let mut b = pprof::Builder::default();
        let (period_type, period_unit) = match unit {
            PeriodUnit::CpuNanoseconds => ("cpu", "nanoseconds"),
            PeriodUnit::Events => ("events", "count"),
        };
        let samples = b.value_type("samples", "count");
        let period = b.value_type(period_type, period_unit);
        let mut p = pprof::Profile {
            sample_type: vec![samples, period],
            period_type: Some(period),
            ..Default::default()
        };
        // Sorted, so that one input gives one file.
        let mut stacks: Vec<_> = self.stacks.iter().collect();
        stacks.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut group_labels: HashMap<Option<GroupId>, Vec<pprof::Label>> = HashMap::new();
        for (key, (n, sum)) in stacks {
            let group = (key[0] != NO_GROUP).then_some(GroupId(key[0]));
            let (comm, frames) = (names.name(key[1]), &key[2..]);
            let mut label = group_labels
                .entry(group)
                .or_insert_with(|| {
                    labels(group)
                        .into_iter()
                        .map(|(k, v)| b.label(k, &v))
                        .collect()
                })
                .clone();
            label.push(b.label("comm", comm));
            p.sample.push(pprof::Sample {
                location_id: frames.iter().map(|&f| b.location(names.name(f))).collect(),
                value: vec![*n as i64, (*sum).min(i64::MAX as u64) as i64],
                label,
            });
        }
        b.finish(&mut p);
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        gz.write_all(&p.encode_to_vec())?;
        gz.finish()?.flush()
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

    /// Folded stacks and their counts, sorted by stack (as stackcollapse tools write them),
    /// their ids named by `names`.
    pub fn folded(&self, names: &FrameNames) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .folded
            .iter()
            .map(|(key, n)| {
                let mut line = String::with_capacity(16 * key.len());
                push_frame(&mut line, names.name(key[0]));
                push_frame(&mut line, names.name(key[1]));
                for &f in key[2..].iter().rev() {
                    push_frame(&mut line, names.name(f));
                }
                line.remove(0);
                (line, *n)
            })
            .collect();
        v.sort_unstable();
        // Two stacks of ids can have one name (kernel addresses named late).
        v.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 += b.1;
            }
            same
        });
        v
    }
}

/// The messages of pprof's `profile.proto` that nswatch writes (field numbers as in
/// github.com/google/pprof/proto/profile.proto), and the string and id tables.
mod pprof {
    use hashbrown::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(int64, tag = "1")]
        pub key: i64,
        #[prost(int64, tag = "2")]
        pub str: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
    }

    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
    }

    /// The string table (index 0 is "", as the format requires) and one location and
    /// function per distinct frame name.
    pub struct Builder {
        strings: Vec<String>,
        index: HashMap<String, i64>,
        locations: HashMap<String, u64>,
        functions: Vec<Function>,
    }

    impl Default for Builder {
        fn default() -> Self {
            Builder {
                strings: vec![String::new()],
                index: HashMap::from([(String::new(), 0)]),
                locations: HashMap::new(),
                functions: Vec::new(),
            }
        }
    }

    impl Builder {
        pub fn string(&mut self, s: &str) -> i64 {
            if let Some(&i) = self.index.get(s) {
                return i;
            }
            let i = self.strings.len() as i64;
            self.strings.push(s.to_string());
            self.index.insert(s.to_string(), i);
            i
        }

        pub fn value_type(&mut self, ty: &str, unit: &str) -> ValueType {
            ValueType {
                r#type: self.string(ty),
                unit: self.string(unit),
            }
        }

        pub fn label(&mut self, key: &str, value: &str) -> Label {
            Label {
                key: self.string(key),
                str: self.string(value),
            }
        }

        /// The location of frame `name` (ids count from 1: 0 means none in the format).
        pub fn location(&mut self, name: &str) -> u64 {
            if let Some(&id) = self.locations.get(name) {
                return id;
            }
            let id = self.functions.len() as u64 + 1;
            let s = self.string(name);
            self.functions.push(Function {
                id,
                name: s,
                system_name: s,
            });
            self.locations.insert(name.to_string(), id);
            id
        }

        pub fn finish(self, p: &mut Profile) {
            p.location = self
                .functions
                .iter()
                .map(|f| Location {
                    id: f.id,
                    line: vec![Line { function_id: f.id }],
                })
                .collect();
            p.function = self.functions;
            p.string_table = self.strings;
        }
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
    fn a_pprof_profile_decodes_with_every_sample_labelled() {
        use prost::Message;
        use std::io::Read;
        let mut p = ContainerProfile::new();
        let mut names = FrameNames::default();
        let mut stack = |f: &[&str]| f.iter().map(|s| names.intern(s)).collect::<Vec<_>>();
        let (sh, q) = (stack(&["sh"])[0], stack(&["?"])[0]);
        p.add_pprof_stack(Some(GroupId(3)), sh, &stack(&["leaf", "main"]), 10);
        p.add_pprof_stack(Some(GroupId(3)), sh, &stack(&["leaf", "main"]), 5);
        p.add_pprof_stack(None, q, &stack(&["main"]), 1);
        let labels = |g: Option<GroupId>| match g {
            Some(_) => vec![
                ("container", "ct-3".to_string()),
                ("runtime", "runc".into()),
            ],
            None => vec![("container", "[unknown]".to_string())],
        };
        let mut gz = Vec::new();
        p.write_pprof(PeriodUnit::CpuNanoseconds, labels, &names, &mut gz)
            .unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        let prof = pprof::Profile::decode(&raw[..]).unwrap();
        let st = |i: i64| prof.string_table[i as usize].as_str();
        assert_eq!(st(0), "");
        let types: Vec<(&str, &str)> = prof
            .sample_type
            .iter()
            .map(|v| (st(v.r#type), st(v.unit)))
            .collect();
        assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
        assert_eq!(prof.sample.len(), 2);
        let name_of = |loc: u64| {
            let l = prof.location.iter().find(|l| l.id == loc).unwrap();
            let f = prof
                .function
                .iter()
                .find(|f| f.id == l.line[0].function_id)
                .unwrap();
            st(f.name)
        };
        for s in &prof.sample {
            let labels: Vec<(&str, &str)> =
                s.label.iter().map(|l| (st(l.key), st(l.str))).collect();
            let frames: Vec<&str> = s.location_id.iter().map(|&l| name_of(l)).collect();
            match labels[0].1 {
                "ct-3" => {
                    assert_eq!(s.value, [2, 15]);
                    assert_eq!(labels[1..], [("runtime", "runc"), ("comm", "sh")]);
                    assert_eq!(frames, ["leaf", "main"]);
                }
                other => {
                    assert_eq!(other, "[unknown]");
                    assert_eq!(s.value, [1, 1]);
                    assert_eq!(frames, ["main"]);
                }
            }
        }
    }

    #[test]
    fn folded_stacks_are_root_first_and_escaped() {
        let mut p = ContainerProfile::new();
        let mut names = FrameNames::default();
        let leaf_first = ["leaf", "mid;dle", "main"].map(|f| names.intern(f));
        let [ct, sh, host, bash] = ["ct-1", "sh", "host", "bash"].map(|f| names.intern(f));
        p.add_stack(ct, sh, &leaf_first);
        p.add_stack(ct, sh, &leaf_first);
        p.add_stack(host, bash, &[]);
        assert_eq!(
            p.folded(&names),
            [
                ("ct-1;sh;main;mid:dle;leaf".to_string(), 2),
                ("host;bash".to_string(), 1)
            ]
        );
    }
}
