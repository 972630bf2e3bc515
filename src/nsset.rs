//! Namespace sets: the links of one task, compared and interned.

use crate::record::{Namespaces, NsKind, NsLink, NS_KINDS};
use hashbrown::HashMap;

/// Most links a set keeps: the 7 kinds perf reports today and room for one more, should a
/// kernel add one (records with more keep their first [`MAX_LINKS`]).
pub const MAX_LINKS: usize = 8;

/// A task's namespace links in kernel index order (net, uts, ipc, pid, user, mnt, cgroup).
///
/// ```
/// use nswatch::nsset::NsSet;
/// use nswatch::record::{NsKind, NsLink};
///
/// let set = NsSet::from_links((1..=7).map(|ino| NsLink { dev: 4, ino }));
/// assert_eq!(set.get(NsKind::Pid), Some(NsLink { dev: 4, ino: 4 }));
/// assert_eq!(set.links().len(), 7);
/// ```
// `==` (below) compares every field, as the derived Hash and Ord see them.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Debug, Clone, Copy, Eq, Hash, Default, PartialOrd, Ord)]
pub struct NsSet {
    len: u8,
    links: [NsLink; MAX_LINKS],
}

// Every slot, as the derived Hash and Ord see them, without a branch per field: the
// interner compares the set of each NAMESPACES record with the last ones.
impl PartialEq for NsSet {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .links
                .iter()
                .zip(&other.links)
                .fold(0, |d, (a, b)| d | (a.dev ^ b.dev) | (a.ino ^ b.ino))
                == 0
    }
}

impl NsSet {
    /// A set from links in kernel index order.
    pub fn from_links(links: impl IntoIterator<Item = NsLink>) -> Self {
        let mut s = NsSet::default();
        for l in links.into_iter().take(MAX_LINKS) {
            s.links[s.len as usize] = l;
            s.len += 1;
        }
        s
    }

    /// The set a NAMESPACES record carries.
    #[inline]
    pub fn from_record(ns: &Namespaces<'_>) -> Self {
        let mut s = NsSet::default();
        s.set_from_record(ns);
        s
    }

    /// Makes this set the one a NAMESPACES record carries, in place: what
    /// [`NsSet::from_record`] makes, without a 136-byte copy per record.
    #[inline]
    pub fn set_from_record(&mut self, ns: &Namespaces<'_>) {
        let n = ns.read_links(&mut self.links);
        // Equality and hashing read every slot: those past the record's links are zero.
        self.links[n..].fill(NsLink::default());
        self.len = n as u8;
    }

    /// The links, in kernel index order.
    pub fn links(&self) -> &[NsLink] {
        &self.links[..self.len as usize]
    }

    /// The link of `kind`, if the set has it.
    pub fn get(&self, kind: NsKind) -> Option<NsLink> {
        self.links().get(kind as usize).copied()
    }

    /// True when every link is (0, 0): perf writes that for a task whose /proc/PID/ns it
    /// could not read (often PID 1).
    pub fn is_unknown(&self) -> bool {
        self.links().iter().all(|l| l.dev == 0 && l.ino == 0)
    }

    /// Bit i set when link i differs between the two sets (or exists in only one).
    #[inline]
    pub fn diff(&self, other: &NsSet) -> u32 {
        // Every slot without a branch (a story line compares two pairs of sets), then
        // only the slots either set has.
        let mut m = 0u32;
        for (i, (a, b)) in self.links.iter().zip(&other.links).enumerate() {
            m |= u32::from((a.dev ^ b.dev) | (a.ino ^ b.ino) != 0) << i;
        }
        let (lo, hi) = (
            u32::from(self.len.min(other.len)),
            u32::from(self.len.max(other.len)),
        );
        let (below_lo, below_hi) = ((1u32 << lo) - 1, (1u32 << hi) - 1);
        (m & below_hi) | (below_hi & !below_lo)
    }
}

/// Names of the kinds whose bits are set in `mask`, comma-separated ("net,uts").
pub fn mask_names(mask: u32) -> String {
    let mut out = String::new();
    for i in 0..32 {
        if mask & (1 << i) != 0 {
            if !out.is_empty() {
                out.push(',');
            }
            match NsKind::from_index(i) {
                Some(k) => out.push_str(k.name()),
                None => out.push_str(&format!("ns{i}")),
            }
        }
    }
    out
}

/// The name of link `i` in JSON and text ("net" … "cgroup", then "ns7", …).
pub fn link_name(i: usize) -> &'static str {
    const EXTRA: [&str; MAX_LINKS - 7] = ["ns7"];
    match NS_KINDS.get(i) {
        Some(k) => k.name(),
        None => EXTRA.get(i - NS_KINDS.len()).copied().unwrap_or("ns?"),
    }
}

/// Small id of an interned set.
///
/// ```
/// use nswatch::model::Attributor;
/// use nswatch::nsset::NsSet;
/// use nswatch::record::NsLink;
/// use nswatch::{Body, Event};
///
/// let link = |ino| NsLink { dev: 4, ino };
/// let mut model = Attributor::new(NsSet::from_links((1..=7).map(link)));
/// // A container's first task: its own net, pid and mnt namespaces.
/// let ct = NsSet::from_links([10, 2, 3, 14, 5, 16, 7].map(link));
/// let ev = Event {
///     time_ns: Some(1_000),
///     cpu: Some(0),
///     pid: Some(42),
///     tid: Some(42),
///     synthesized: false,
///     body: Body::Namespaces { ns: &ct, comm: Some("sleep".into()), cause: None },
/// };
/// let group = model.observe(&ev).unwrap();
/// use nswatch::nsset::SetId;
/// let set: SetId = model.attribute(42, 42, 1_000).unwrap().set;
/// assert_eq!(model.sets().get(set), &ct);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId(pub u32);

/// One copy of each distinct set; tasks hold a [`SetId`].
///
/// A model that gives back what ended ([`Interner::retain`]) frees the sets nothing holds
/// and hands their ids out again: an id names its set while something in the model holds
/// it, as the groups and task histories that hold them are kept.
#[derive(Debug, Default, Clone)]
#[doc(hidden)]
pub struct Interner {
    sets: Vec<NsSet>,
    ids: HashMap<NsSet, SetId>,
    /// Ids freed by [`Interner::retain`], to be given to new sets.
    free: Vec<SetId>,
    /// The ids given last, newest first: a fork storm interns one set over and over, a
    /// thread in a setns storm goes back and forth between two, and comparing is cheaper
    /// than hashing the set (17 fields) and probing.
    recent: [Option<SetId>; 2],
    /// Ids by a stream's index of the set ([`Interner::intern_at`]); emptied when ids are
    /// freed.
    by_index: Vec<Option<SetId>>,
}

impl Interner {
    /// The id of `set`, added if new.
    #[inline]
    pub fn intern(&mut self, set: &NsSet) -> SetId {
        // Unrolled: a loop over `recent` cost more than the compares.
        if let Some(id) = self.recent[0] {
            if self.is(id, set) {
                return id;
            }
        }
        if let Some(id) = self.recent[1] {
            if self.is(id, set) {
                self.recent.swap(0, 1);
                return id;
            }
        }
        self.intern_slow(set)
    }

    /// True when `id` names `set`. The first link (net) tells most sets apart before the
    /// whole compare.
    #[inline(always)]
    fn is(&self, id: SetId, set: &NsSet) -> bool {
        let held = &self.sets[id.0 as usize];
        held.links[0] == set.links[0] && held == set
    }

    /// [`Interner::intern`] for a set that a stream names by `index`, when it does: an index
    /// that stands for the same set every time (an
    /// [`EventReceiver`](crate::event::EventReceiver)'s), so that each index is interned
    /// once, not each event (a setns storm's thread goes back and forth between two sets,
    /// and interning compares one of them whole each time). Without an index, `intern`.
    #[inline]
    pub fn intern_at(&mut self, index: Option<u32>, set: &NsSet) -> SetId {
        let Some(index) = index else {
            return self.intern(set);
        };
        if let Some(&Some(id)) = self.by_index.get(index as usize) {
            debug_assert!(
                self.sets[id.0 as usize] == *set,
                "index {index} changed sets"
            );
            return id;
        }
        let id = self.intern(set);
        let i = index as usize;
        if self.by_index.len() <= i {
            self.by_index.resize(i + 1, None);
        }
        self.by_index[i] = Some(id);
        id
    }

    /// [`Interner::intern`] for a set not among the last two.
    fn intern_slow(&mut self, set: &NsSet) -> SetId {
        let id = match self.ids.get(set) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => {
                        self.sets[id.0 as usize] = *set;
                        id
                    }
                    None => {
                        self.sets.push(*set);
                        SetId(self.sets.len() as u32 - 1)
                    }
                };
                self.ids.insert(*set, id);
                id
            }
        };
        self.recent = [Some(id), self.recent[0]];
        id
    }

    /// The set of `id`.
    pub fn get(&self, id: SetId) -> &NsSet {
        &self.sets[id.0 as usize]
    }

    /// Number of distinct sets held.
    pub fn len(&self) -> usize {
        self.sets.len() - self.free.len()
    }

    /// True when no set is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids ever given out, freed ones included: a bound for tables indexed by [`SetId`].
    pub fn id_bound(&self) -> usize {
        self.sets.len()
    }

    /// Frees every set whose id `keep` refuses (given each id held), and returns how many.
    /// Their ids go to new sets later.
    pub fn retain(&mut self, mut keep: impl FnMut(SetId) -> bool) -> usize {
        let before = self.free.len();
        let free = &mut self.free;
        self.ids.retain(|_, id| {
            let kept = keep(*id);
            if !kept {
                free.push(*id);
            }
            kept
        });
        self.recent = [None; 2];
        self.by_index.clear();
        let freed = self.free.len() - before;
        // The ids above the highest held go, and the lowest free ones are handed out
        // first: after a burst the sets shrink back, and the next burst's ids stay low
        // for the one after it.
        let held = self
            .ids
            .values()
            .map(|id| id.0 as usize + 1)
            .max()
            .unwrap_or(0);
        self.sets.truncate(held);
        self.free.retain(|id| (id.0 as usize) < held);
        self.free.sort_unstable_by(|a, b| b.cmp(a));
        freed
    }

    /// Gives back the slack of the index, the sets and the free ids ([`GiveBackSlack`]).
    pub fn shrink(&mut self) {
        self.ids.give_back_slack();
        self.sets.give_back_slack();
        self.free.give_back_slack();
        self.by_index.give_back_slack();
    }

    /// Heap bytes held: the sets, the index (with its slack) and the free ids.
    pub fn heap_bytes(&self) -> usize {
        self.sets.capacity() * std::mem::size_of::<NsSet>()
            + map_bytes(&self.ids)
            + self.free.capacity() * std::mem::size_of::<SetId>()
            + self.by_index.capacity() * std::mem::size_of::<Option<SetId>>()
    }
}

/// Tables of at most this many entries keep their slack: too small to be worth a move.
const SHRINK_ABOVE: usize = 64;

/// A table that gives back its slack once it is less than a quarter full (shrunk to twice
/// its entries): the model's tables after a burst of groups was given back, so that a
/// node agent does not hold, for weeks, tables sized to its busiest minute.
#[doc(hidden)]
pub trait GiveBackSlack {
    /// Shrinks the table if it is less than a quarter full.
    fn give_back_slack(&mut self);
}

/// Whether a table of `len` entries in room for `cap` is worth shrinking.
fn slack(len: usize, cap: usize) -> bool {
    cap > SHRINK_ABOVE && len < cap / 4
}

impl<T> GiveBackSlack for Vec<T> {
    fn give_back_slack(&mut self) {
        if slack(self.len(), self.capacity()) {
            self.shrink_to(self.len() * 2);
        }
    }
}

impl<T> GiveBackSlack for std::collections::VecDeque<T> {
    fn give_back_slack(&mut self) {
        if slack(self.len(), self.capacity()) {
            self.shrink_to(self.len() * 2);
        }
    }
}

impl<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher> GiveBackSlack for HashMap<K, V, S> {
    fn give_back_slack(&mut self) {
        if slack(self.len(), self.capacity()) {
            self.shrink_to(self.len() * 2);
        }
    }
}

/// Heap bytes of a hashbrown map: its buckets (a power of two, at most 7/8 full) of an
/// entry and a control byte each.
pub fn map_bytes<K, V, S>(m: &HashMap<K, V, S>) -> usize {
    if m.capacity() == 0 {
        return 0;
    }
    let buckets = (m.capacity() * 8 / 7).next_power_of_two();
    buckets * (std::mem::size_of::<(K, V)>() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(inos: &[u64]) -> NsSet {
        NsSet::from_links(inos.iter().map(|&ino| NsLink { dev: 4, ino }))
    }

    #[test]
    fn freed_sets_give_their_ids_to_new_ones_lowest_first() {
        let mut i = Interner::default();
        let (a, b, c, d) = (set(&[1, 2]), set(&[3, 4]), set(&[5, 6]), set(&[7, 8]));
        let (ia, ib, ic) = (i.intern(&a), i.intern(&b), i.intern(&c));
        assert_eq!(i.retain(|id| id == ic), 2);
        assert_eq!((i.len(), i.id_bound()), (1, 3));
        // a's id goes first, then b's; a, interned again, takes b's.
        assert_eq!(i.intern(&d), ia);
        assert_eq!(i.get(ia), &d);
        assert_eq!(i.intern(&c), ic);
        assert_eq!(i.intern(&a), ib);
        assert_eq!(i.intern(&b), SetId(3));
        assert_eq!((i.len(), i.id_bound()), (4, 4));
    }

    #[test]
    fn sets_by_a_streams_index_are_interned_once_and_again_after_a_retain() {
        let mut i = Interner::default();
        let (a, b, c) = (set(&[1, 2]), set(&[3, 4]), set(&[5, 6]));
        let ia = i.intern_at(Some(7), &a);
        let ib = i.intern_at(Some(0), &b);
        for _ in 0..3 {
            assert_eq!(
                (i.intern_at(Some(7), &a), i.intern_at(Some(0), &b)),
                (ia, ib)
            );
        }
        // The same ids as interning the sets themselves.
        assert_eq!((i.intern(&a), i.intern(&b)), (ia, ib));
        // a's id is freed and given to c: index 7 no longer names that id.
        i.retain(|id| id == ib);
        let ic = i.intern(&c);
        assert_eq!(ic, ia);
        let ia2 = i.intern_at(Some(7), &a);
        assert_ne!(ia2, ic);
        assert_eq!((i.get(ia2), i.get(ic), i.get(ib)), (&a, &c, &b));
        assert_eq!(i.intern_at(Some(0), &b), ib);
    }

    #[test]
    fn the_ids_above_the_highest_held_go() {
        let mut i = Interner::default();
        let ids: Vec<SetId> = (0..1_000).map(|n| i.intern(&set(&[n, n + 1]))).collect();
        assert_eq!(i.retain(|id| id == ids[0]), 999);
        assert_eq!((i.len(), i.id_bound()), (1, 1));
        i.shrink();
        assert!(i.heap_bytes() < 64 * std::mem::size_of::<NsSet>() * 2);
        assert_eq!(i.intern(&set(&[5, 6])), SetId(1));
        assert_eq!(i.get(ids[0]), &set(&[0, 1]));
    }

    #[test]
    fn a_set_made_in_place_is_the_set_made_anew() {
        use crate::bytes::{Bytes, Endian};
        // Records of 7, 3 and 9 links, one after the other into the same set.
        let body = |n: u64| -> Vec<u8> {
            let mut b = vec![1, 0, 0, 0, 2, 0, 0, 0];
            b.extend_from_slice(&n.to_le_bytes());
            for i in 0..n {
                b.extend_from_slice(&4u64.to_le_bytes());
                b.extend_from_slice(&(100 + i).to_le_bytes());
            }
            b
        };
        let mut reused = set(&[9; 8]);
        for n in [7, 3, 9, 0] {
            let b = body(n);
            let ns = Namespaces::parse(Bytes::new(&b, Endian::Little)).unwrap();
            reused.set_from_record(&ns);
            let anew = NsSet::from_record(&ns);
            assert_eq!(reused, anew, "{n} links");
            assert_eq!(reused.links, anew.links, "{n} links: slots past the links");
            assert_eq!(reused.links().len(), (n as usize).min(MAX_LINKS));
        }
    }

    #[test]
    fn diff_names_the_changed_kinds() {
        let a = set(&[1, 2, 3, 4, 5, 6, 7]);
        let b = set(&[9, 9, 3, 4, 5, 6, 7]);
        assert_eq!(mask_names(a.diff(&b)), "net,uts");
        assert_eq!(a.diff(&a), 0);
        assert_eq!(mask_names(a.diff(&set(&[1, 2, 3, 4, 5, 6, 7, 8]))), "ns7");
    }

    #[test]
    fn diff_is_the_links_that_differ_or_exist_in_one_set_only() {
        // Every pair of sets of 0 to 8 links drawn from two values per slot, against the
        // definition.
        let sets: Vec<NsSet> = (0..=MAX_LINKS)
            .flat_map(|n| (0..1u32 << n).map(move |bits| (n, bits)))
            .map(|(n, bits)| {
                NsSet::from_links((0..n).map(|i| NsLink {
                    dev: 4,
                    ino: u64::from(bits >> i & 1),
                }))
            })
            .collect();
        for a in sets.iter().step_by(7) {
            for b in &sets {
                let (la, lb) = (a.links(), b.links());
                let want = (0..la.len().max(lb.len()))
                    .filter(|&i| la.get(i) != lb.get(i))
                    .fold(0, |m, i| m | 1 << i);
                assert_eq!(a.diff(b), want, "{la:?} {lb:?}");
            }
        }
    }

    #[test]
    fn interning_dedups() {
        let mut i = Interner::default();
        let a = i.intern(&set(&[1, 2]));
        let b = i.intern(&set(&[1, 3]));
        assert_ne!(a, b);
        assert_eq!(i.intern(&set(&[1, 2])), a);
        assert_eq!(i.len(), 2);
        // Back and forth (the recent ids), then a third set and back (the table).
        for _ in 0..3 {
            assert_eq!(i.intern(&set(&[1, 3])), b);
            assert_eq!(i.intern(&set(&[1, 2])), a);
        }
        let c = i.intern(&set(&[7]));
        assert_eq!((i.intern(&set(&[1, 3])), i.intern(&set(&[1, 2]))), (b, a));
        assert_eq!(i.intern(&set(&[7])), c);
        assert_eq!(i.len(), 3);
        assert!(NsSet::from_links([NsLink::default(); 7]).is_unknown());
        assert!(!set(&[0, 0]).is_unknown());
    }
}
