//! A live [`Session`]: the perf rings and the eBPF probe, merged in time order, correlated
//! (cause to change), fed to one [`Attributor`] that stays current, and handed to the caller
//! as [`Update`]s. `nswatch record`, `nswatch top` and profilers embedding the library all
//! run this one pipeline.
//!
//! ```no_run
//! use nswatch::session::{Session, SessionOptions, Update};
//! use std::time::Duration;
//!
//! let mut session = Session::start(SessionOptions::default())?;
//! session.poll(Duration::from_millis(100), |model, update| {
//!     if let Update::Event { event, group: Some(g) } = update {
//!         println!("{} {:?} in {}", event.body.type_name(), event.tid, model.group(g).label());
//!     }
//! })?;
//! // Any time later: which group was this thread in, a moment ago?
//! let me = std::process::id();
//! let now = nswatch::session::monotonic_ns();
//! if let Some(a) = session.model().attribute(me, me, now - 1_000_000) {
//!     println!("I am in {}", session.model().group(a.group).name());
//! }
//! # Ok::<(), nswatch::session::SessionError>(())
//! ```

pub use crate::live::{monotonic_ns, CaptureOptions, DEFAULT_RING_PAGES};

use crate::bpf::correlate::Correlator;
use crate::bpf::Unavailable;
use crate::bpf::{Cause, Probe};
use crate::census;
use crate::error::DecodeError;
use crate::event::{Body, Event};
use crate::live::open::OpenError;
use crate::live::pins::Pins;
use crate::live::{Capture, CaptureStats, Creation, Item};
use crate::live_naming::Namer;
use crate::model::{Attributor, Change, ChangeKind, GroupId};
use crate::procfs::{self, ProcTask};
use crate::EventBuilder;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a live session could not start, or stopped: typed, so that a caller can tell a
/// missing privilege from a limit or a damaged record and say what to change.
///
/// ```no_run
/// use nswatch::session::{Session, SessionError, SessionOptions};
///
/// match Session::start(SessionOptions::default()) {
///     Ok(_) => println!("capturing"),
///     Err(e) if e.missing_capability().is_some() => {
///         eprintln!("grant {}: {e}", e.missing_capability().unwrap())
///     }
///     Err(SessionError::Open(e)) => eprintln!("the rings: {e}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The perf rings could not be opened: no privilege, a limit (open files, locked
    /// memory), or a kernel without namespace records.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A record could not be decoded; it says where and of what type.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Neither pid 1's, kthreadd's nor nswatch's own namespace links could be read.
    #[error("reading the host's namespaces from /proc/1/ns, /proc/2/ns or /proc/self/ns")]
    HostUnreadable,
    /// Another system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A limit that stopped a session, to raise.
///
/// ```no_run
/// use nswatch::session::{Limit, Session, SessionOptions};
///
/// match Session::start(SessionOptions::default()) {
///     Err(e) if e.limit() == Some(Limit::OpenFiles) => eprintln!("raise ulimit -n: {e}"),
///     Err(e) if e.limit() == Some(Limit::LockedMemory) => eprintln!("raise ulimit -l: {e}"),
///     Err(e) => eprintln!("{e}"),
///     Ok(_) => {}
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// RLIMIT_NOFILE: one descriptor per CPU is needed.
    OpenFiles,
    /// RLIMIT_MEMLOCK or kernel.perf_event_mlock_kb: the rings' pages are locked.
    LockedMemory,
}

impl SessionError {
    /// The capability whose lack stopped the session (CAP_PERFMON for the rings), if that
    /// is why.
    pub fn missing_capability(&self) -> Option<&'static str> {
        matches!(self, SessionError::Open(OpenError::NotPermitted { .. })).then_some("CAP_PERFMON")
    }

    /// The limit that stopped the session, if that is why.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            SessionError::Open(OpenError::TooManyFiles(_)) => Some(Limit::OpenFiles),
            SessionError::Open(OpenError::LockedMemory { .. }) => Some(Limit::LockedMemory),
            _ => None,
        }
    }

    /// The decode error (with the record's offset and type), if a record stopped it.
    pub fn decode_error(&self) -> Option<&DecodeError> {
        match self {
            SessionError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

type Result<T, E = SessionError> = std::result::Result<T, E>;

/// How to open a [`Session`].
///
/// ```
/// use nswatch::session::SessionOptions;
///
/// // No eBPF probe (no causes), and a model that keeps everything that ended.
/// let opts = SessionOptions { bpf: false, history: None, ..SessionOptions::default() };
/// assert!(!opts.bpf);
/// ```
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The perf rings' options (pages per CPU, reorder window).
    pub capture: CaptureOptions,
    /// Load the eBPF probe for the causes of namespace changes; when it cannot load, the
    /// session carries on without it and says why in [`SessionStats::bpf`].
    pub bpf: bool,
    /// Read /proc again at most this often after lost records.
    pub rescan_every: Duration,
    /// How long the model keeps what ended ([`Attributor::set_history_ns`]): groups and
    /// task histories older than this give their memory back, so that a session that
    /// runs for weeks stays the size of its last window. `None` keeps everything.
    pub history: Option<Duration>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            capture: CaptureOptions::default(),
            bpf: true,
            rescan_every: Duration::from_secs(1),
            history: Some(Duration::from_nanos(crate::model::DEFAULT_HISTORY_NS)),
        }
    }
}

/// What a [`Session`] hands on, in time order.
///
/// ```no_run
/// use nswatch::model::ChangeKind;
/// use nswatch::session::{Session, SessionOptions, Update};
/// use std::time::Duration;
///
/// let mut session = Session::start(SessionOptions::default())?;
/// loop {
///     session.poll(Duration::from_millis(100), |model, update| match update {
///         Update::Group(c) if c.kind == ChangeKind::Start => {
///             println!("started: {}", model.group(c.group).name())
///         }
///         Update::Event { event, group: Some(g) } => {
///             println!("{} in {}", event.body.type_name(), model.group(g).label())
///         }
///         _ => {}
///     })?;
/// }
/// # Ok::<(), nswatch::session::SessionError>(())
/// ```
#[derive(Debug)]
pub enum Update<'a> {
    /// An event of the stream, with the group the model put its task in.
    Event {
        /// The event.
        event: &'a Event<'a>,
        /// Its task's group (none for events without a task).
        group: Option<GroupId>,
    },
    /// A group started, ended or was renamed. Starts come before the event that caused
    /// them, exits after.
    Group(&'a Change),
}

/// Counts of a session so far.
///
/// ```
/// use nswatch::session::SessionStats;
///
/// // A session's counts start at zero, with nothing to warn about.
/// let stats = SessionStats::default();
/// assert_eq!(stats.lost_records, 0);
/// assert_eq!(stats.unreadable_warning(), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// Perf records read, by record type (128 and up in the last slot).
    pub records: Vec<u64>,
    /// Records the kernel lost (LOST records).
    pub lost_records: u64,
    /// Namespace changes matched to the syscall that caused them.
    pub matched: u64,
    /// eBPF syscall records lost.
    pub bpf_lost: u64,
    /// "on", "off", or "unavailable: why".
    pub bpf: String,
    /// Tasks read from /proc at start.
    pub synthesized: usize,
    /// Tasks of the last scan whose namespaces could not be read (no CAP_SYS_PTRACE for
    /// /proc/PID/ns, and no task iterator): handed on without a namespaces event and in no
    /// group, until a record of theirs tells.
    pub unreadable: usize,
    /// Where the last scan read its tasks (the task iterator, or /proc and why).
    pub scan: Option<census::Source>,
    /// True when neither pid 1's nor pid 2's namespaces could be read: the host is
    /// nswatch's own namespaces.
    pub host_is_own: bool,
}

impl SessionStats {
    /// What the start-up scan could not tell, for a warning: `None` when it read every
    /// task's namespaces.
    pub fn unreadable_warning(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.unreadable > 0 {
            let why = match &self.scan {
                Some(census::Source::Proc { why: Some(w) }) => {
                    format!("; the BPF task iterator: {w}")
                }
                _ => String::new(),
            };
            parts.push(format!(
                "the namespaces of {} of {} tasks could not be read (/proc/PID/ns needs root or \
                 CAP_SYS_PTRACE{why}): they are in no group, and have no namespaces event, \
                 until a record of theirs tells",
                self.unreadable, self.synthesized
            ));
        }
        if self.host_is_own {
            parts.push(
                "the host's namespaces (pid 1's, pid 2's) could not be read: the host is \
                 nswatch's own namespaces"
                    .to_string(),
            );
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The namespace files the session holds for live groups ([`crate::live::pins`]).
///
/// ```no_run
/// use nswatch::session::{Session, SessionOptions};
///
/// let session = Session::start(SessionOptions::default())?;
/// let pins = session.pin_stats();
/// println!("{} of {} namespace files held", pins.held, pins.budget);
/// # Ok::<(), nswatch::session::SessionError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PinStats {
    /// Held now.
    pub held: usize,
    /// The most held at once.
    pub peak: usize,
    /// The most it holds: half the open-files limit left at start.
    pub budget: usize,
    /// Groups not held, or held in part, for want of room under the budget.
    pub skipped: u64,
}

/// Everything but the rings, so that ring callbacks can borrow it while the rings are read.
struct Core {
    builder: EventBuilder,
    causes: Correlator,
    #[allow(clippy::vec_box)] // boxed once, moved as a pointer (bpf::correlate)
    expired: Vec<Box<Cause>>,
    /// Causes done with, handed back to the probe to be filled again.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Cause>>,
    model: Attributor,
    /// Names groups: when they start, before that when the probe wakes us, and later.
    namer: Namer,
    creations: Vec<Creation>,
    pending: Vec<Change>,
    rescan: bool,
    nspids: NsPids,
    stats: SessionStats,
}

/// A live capture with its model. See the module documentation.
///
/// ```no_run
/// use nswatch::session::{Session, SessionOptions};
/// use std::time::Duration;
///
/// let mut session = Session::start(SessionOptions::default())?;
/// session.poll(Duration::from_millis(100), |_, _| {})?;
/// // Which group is this process in, now?
/// let me = std::process::id();
/// let now = nswatch::session::monotonic_ns();
/// if let Some(a) = session.model().attribute(me, me, now) {
///     println!("{}", session.model().group(a.group).name());
/// }
/// # Ok::<(), nswatch::session::SessionError>(())
/// ```
pub struct Session {
    cap: Capture,
    core: Core,
    bootstrapped: bool,
    last_rescan: Instant,
    rescan_every: Duration,
    /// The task iterator, loaded at the first scan (an error inside: it could not be, /proc
    /// is read instead, and this says why).
    task_iter: std::cell::OnceCell<Result<crate::bpf::iter::TaskIter, String>>,
    /// Namespace files of live groups: each NAMESPACES record of their tasks then finds
    /// its dentries instead of making them.
    pins: Pins,
    /// Why the probe was asked for and is not there.
    probe_error: Option<Unavailable>,
}

impl Session {
    /// Opens the rings (one per online CPU) and loads the probe. Needs root or
    /// CAP_PERFMON (and CAP_BPF for the probe); errors say which limit or setting failed.
    pub fn start(opts: SessionOptions) -> Result<Session> {
        // The probe is attached before the rings are enabled, so that no change the rings
        // see lacks its cause for want of a program not yet there.
        let mut probe_error = None;
        let (probe, bpf) = if opts.bpf {
            match Probe::load() {
                Ok(p) => {
                    let state = match p.passed_over() {
                        Some(why) => format!("on ({}; {why})", p.hook().name()),
                        None => format!("on ({})", p.hook().name()),
                    };
                    (Some(p), state)
                }
                Err(e) => {
                    let state = format!("unavailable: {e}");
                    probe_error = Some(e);
                    (None, state)
                }
            }
        } else {
            (None, "off".to_string())
        };
        let mut cap = Capture::open(opts.capture)?;
        // Without the right to read PID 1's or kthreadd's links (a CAP_PERFMON user that is
        // not root), the task iterator reads them where it can run; else the host is what
        // nswatch itself sees, and the stats say so.
        let task_iter = std::cell::OnceCell::new();
        let host = match procfs::host_set(Path::new("/proc")) {
            Some((_, h)) => (h, false),
            None => {
                let iter = task_iter.get_or_init(load_task_iter);
                let tasks = iter.as_ref().ok().and_then(|it| it.scan().ok());
                census::host_of(Path::new("/proc"), tasks.as_deref().unwrap_or_default())
                    .map(|(_, h, own)| (h, own))
                    .ok_or(SessionError::HostUnreadable)?
            }
        };
        if let Some(p) = probe {
            cap.set_side(Box::new(p))
                .map_err(|source| SessionError::Io {
                    what: "adding the eBPF ring buffer to epoll",
                    source,
                })?;
        }
        let mut model = Attributor::new(host.0);
        model.set_history_ns(
            opts.history
                .map(|h| h.as_nanos().min(u128::from(u64::MAX)) as u64),
        );
        Ok(Session {
            cap,
            core: Core {
                builder: EventBuilder::new(),
                causes: Correlator::new(),
                expired: Vec::new(),
                spare: Vec::new(),
                model,
                namer: Namer::default(),
                creations: Vec::new(),
                pending: Vec::new(),
                rescan: false,
                nspids: NsPids::default(),
                stats: SessionStats {
                    records: vec![0; 129],
                    bpf,
                    host_is_own: host.1,
                    ..SessionStats::default()
                },
            },
            bootstrapped: false,
            last_rescan: Instant::now(),
            rescan_every: opts.rescan_every,
            task_iter,
            pins: Pins::new(Pins::budget_from_limit()),
            probe_error,
        })
    }

    /// Why the eBPF probe was asked for ([`SessionOptions::bpf`]) and could not be loaded
    /// (no BTF, no CAP_BPF…): the session then runs without the causes of changes.
    pub fn probe_error(&self) -> Option<&Unavailable> {
        self.probe_error.as_ref()
    }

    /// Runs `run` with `f` wrapped so that group starts and ends hold and release their
    /// namespace files before the caller sees them.
    fn pinning<T>(
        &mut self,
        mut f: impl FnMut(&Attributor, Update<'_>),
        run: impl FnOnce(&mut Self, &mut dyn FnMut(&Attributor, Update<'_>)) -> T,
    ) -> T {
        let mut pins = std::mem::replace(&mut self.pins, Pins::new(0));
        let out = run(self, &mut |m: &Attributor, u: Update<'_>| {
            if let Update::Group(c) = &u {
                pins.see(m, c);
            }
            f(m, u)
        });
        self.pins = pins;
        out
    }

    /// Reads /proc and hands on every task as synthesized "comm" and "namespaces" events,
    /// as perf does at start, after what the rings hold from before the scan. The first
    /// [`Session::poll`] does it when it was not called. Returns the number of tasks.
    pub fn bootstrap(&mut self, f: impl FnMut(&Attributor, Update<'_>)) -> Result<usize> {
        self.bootstrapped = true;
        self.pinning(f, |s, mut f| s.snapshot(&mut f))
    }

    /// Waits up to `timeout` for records, and hands on everything that is due.
    pub fn poll(
        &mut self,
        timeout: Duration,
        f: impl FnMut(&Attributor, Update<'_>),
    ) -> Result<()> {
        self.pinning(f, |s, f| s.poll_pinned(timeout, f))
    }

    fn poll_pinned(
        &mut self,
        timeout: Duration,
        mut f: &mut dyn FnMut(&Attributor, Update<'_>),
    ) -> Result<()> {
        if !self.bootstrapped {
            self.bootstrapped = true;
            self.snapshot(&mut f)?;
        }
        // A task read early without its runtime's id is read again within milliseconds.
        let again = self.core.namer.read_again_in();
        self.cap.wait(again.map_or(timeout, |a| timeout.min(a)))?;
        // Calls that made namespaces woke us at once: look at their tasks now, before the
        // merge (and its window) hands their records on, when they may be gone.
        self.cap.creations(&mut self.core.creations);
        if again.is_some() || !self.core.creations.is_empty() {
            let private = census::in_private_cgroupns(&self.core.model);
            self.core.namer.read_again(private);
            if !self.core.creations.is_empty() {
                self.core
                    .namer
                    .woken(self.core.creations.drain(..), private);
            }
        }
        let core = &mut self.core;
        let passed = self.cap.drain_due(|item| core.handle(item, &mut f))?;
        self.cap.recycle(&mut self.core.spare);
        // A quiet machine hands on no event to move the model's clock: the ends of groups
        // left without a task are declared as time passes, up to what was handed on.
        self.core.tick(passed, &mut f);
        self.core.name_again(&mut f);
        if let Some(lost) = self.cap.side().map(|s| s.lost()) {
            self.core.put_bpf_lost(lost, &mut f);
        }
        // A CPU gone offline stops its ring for good; one come (back) online gets a new
        // one. What happened on it in between is read from /proc, as after lost records.
        if self.cap.cpu_check_due() && self.cap.check_cpus()? {
            self.core.rescan = true;
        }
        // Lost records may hide namespace changes: read /proc again, not too often.
        if self.core.rescan && self.last_rescan.elapsed() >= self.rescan_every {
            self.core.rescan = false;
            self.snapshot(&mut f)?;
            self.last_rescan = Instant::now();
        }
        Ok(())
    }

    /// Hands on what the rings still hold and the causes still waiting, at the end.
    pub fn finish(&mut self, f: impl FnMut(&Attributor, Update<'_>)) -> Result<()> {
        self.pinning(f, |s, f| s.finish_pinned(f))
    }

    fn finish_pinned(&mut self, mut f: &mut dyn FnMut(&Attributor, Update<'_>)) -> Result<()> {
        let core = &mut self.core;
        self.cap.flush(|item| core.handle(item, &mut f))?;
        for c in self.core.causes.finish() {
            put_call(&self.core.model, &c, &mut f);
        }
        self.core.model.finish();
        self.core.hand_on_changes(&mut f);
        if let Some(lost) = self.cap.side().map(|s| s.lost()) {
            self.core.put_bpf_lost(lost, &mut f);
        }
        Ok(())
    }

    /// The model, current up to the last update handed on.
    pub fn model(&self) -> &Attributor {
        &self.core.model
    }

    /// The model, to tune it (grace period) or name groups.
    pub fn model_mut(&mut self) -> &mut Attributor {
        &mut self.core.model
    }

    /// The session's counts.
    pub fn stats(&self) -> &SessionStats {
        &self.core.stats
    }

    /// The rings' counts (per CPU, late records, wake-ups).
    pub fn capture_stats(&self) -> &CaptureStats {
        self.cap.stats()
    }

    /// The CPUs with a ring.
    pub fn cpus(&self) -> Vec<u32> {
        self.cap.cpus()
    }

    /// Data bytes of each ring (what [`CaptureStats::ring_used`] is out of).
    pub fn ring_bytes(&self) -> u64 {
        self.cap.ring_bytes()
    }

    /// Namespace syscalls the probe reported.
    pub fn syscalls(&self) -> u64 {
        self.cap.stats().side
    }

    /// The namespace files held for live groups.
    pub fn pin_stats(&self) -> PinStats {
        PinStats {
            held: self.pins.held(),
            peak: self.pins.peak(),
            budget: self.pins.budget(),
            skipped: self.pins.skipped(),
        }
    }

    fn snapshot(&mut self, f: &mut impl FnMut(&Attributor, Update<'_>)) -> Result<usize> {
        // The scan starts once the iterator is loaded: the first load parses the kernel's
        // BTF (tens of ms), and a task that exits meanwhile then has its EXIT among the
        // records read before the scan, rather than being one the scan missed.
        let iter = self.task_iter.get_or_init(load_task_iter);
        let time = monotonic_ns();
        let (tasks, source) = match iter.as_ref().map(|it| it.scan()) {
            Ok(Ok(tasks)) => (tasks, census::Source::Iterator),
            Ok(Err(e)) => (procfs::scan(Path::new("/proc")), proc_source(e.to_string())),
            Err(why) => (procfs::scan(Path::new("/proc")), proc_source(why.clone())),
        };
        let scanned = monotonic_ns();
        let core = &mut self.core;
        self.cap
            .drain_until(time, |item| core.handle(item, &mut *f))?;
        self.cap.recycle(&mut self.core.spare);
        self.core.synthesize((time, scanned), &tasks, f);
        self.core.stats.synthesized = self.core.stats.synthesized.max(tasks.len());
        self.core.stats.scan = Some(source);
        Ok(tasks.len())
    }
}

impl Core {
    fn handle(
        &mut self,
        item: Item<'_, '_>,
        f: &mut impl FnMut(&Attributor, Update<'_>),
    ) -> Result<()> {
        let (dec, view) = match item {
            Item::Syscall(c) => {
                if let Some(c) = self.causes.syscall(c) {
                    put_call(&self.model, &c, f);
                    self.spare.push(c);
                }
                return Ok(());
            }
            Item::Record(dec, view) => (dec, view),
        };
        self.stats.records[(view.ty as usize).min(128)] += 1;
        // FORK, EXIT and NAMESPACES (almost every record) are read in place, the rest
        // decoded; what the correlator needs is the event's.
        let mut ev = match dec.hot(view) {
            Some(h) => self.builder.hot_event(&h),
            None => {
                let (rec, id) = dec.decode(view)?;
                match self.builder.event(&rec, &id) {
                    Some(ev) => ev,
                    None => return Ok(()),
                }
            }
        };
        if let (false, Some(t)) = (self.causes.is_empty(), ev.time_ns) {
            self.causes.expire(t, &mut self.expired);
            for c in self.expired.drain(..) {
                put_call(&self.model, &c, f);
                self.spare.push(c);
            }
        }
        let time = ev.time_ns.unwrap_or(0);
        let cause = match (&ev.body, ev.tid) {
            (Body::Lost { lost }, _) => {
                self.stats.lost_records += *lost;
                self.rescan = true;
                None
            }
            (Body::Fork { ptid, .. }, Some(tid)) => {
                self.causes.fork(*ptid, tid, time);
                None
            }
            (Body::Namespaces { .. }, Some(tid)) => self.causes.namespaces(tid, time),
            _ => None,
        };
        if let Body::Namespaces { cause: c, .. } = &mut ev.body {
            *c = cause.as_deref();
            self.stats.matched += u64::from(c.is_some());
        }
        let group = self.model.observe(&ev);
        if let (Body::Namespaces { ns, .. }, Some(tid)) = (&ev.body, ev.tid) {
            self.nspids
                .learn(&mut self.model, group, ev.pid.unwrap_or(tid), tid, time, ns);
        }
        let namer = &mut self.namer;
        hand_on(
            &mut self.model,
            &mut self.pending,
            &ev,
            group,
            |m, changes| namer.started(m, changes),
            f,
        );
        drop(ev);
        if let Some(c) = cause {
            self.spare.push(c);
        }
        Ok(())
    }

    /// Moves the model's clock to the newest time the merge has passed (the reorder
    /// window behind now) and hands on the group ends that declares.
    /// Hands on the model's group changes that no event caused (ends declared as time
    /// passed, renames, what a /proc scan found).
    fn hand_on_changes(&mut self, f: &mut impl FnMut(&Attributor, Update<'_>)) {
        self.pending.extend(self.model.take_changes());
        for c in self.pending.drain(..) {
            f(&self.model, Update::Group(&c));
        }
    }

    fn tick(&mut self, passed: u64, f: &mut impl FnMut(&Attributor, Update<'_>)) {
        self.model.advance(passed);
        self.nspids.read_due(&mut self.model, passed);
        self.hand_on_changes(f);
    }

    /// Names again the groups whose time has come, and hands on the renames.
    fn name_again(&mut self, f: &mut impl FnMut(&Attributor, Update<'_>)) {
        self.namer.again(&mut self.model);
        self.hand_on_changes(f);
    }

    /// Hands on an "ns_syscall_lost" event when the probe lost records since the last one.
    fn put_bpf_lost(&mut self, lost: u64, f: &mut impl FnMut(&Attributor, Update<'_>)) {
        if lost <= self.stats.bpf_lost {
            return;
        }
        let n = lost - self.stats.bpf_lost;
        self.stats.bpf_lost = lost;
        let ev = Event {
            time_ns: Some(monotonic_ns()),
            cpu: None,
            pid: None,
            tid: None,
            synthesized: false,
            body: Body::NsSyscallLost { lost: n },
        };
        f(
            &self.model,
            Update::Event {
                event: &ev,
                group: None,
            },
        );
    }

    /// Hands on `tasks`, read from /proc from `time` to `scanned`, as synthesized events
    /// stamped `time`; the model learns them with what /proc says beyond events (parents,
    /// NSpid, names), and ends the tasks it had that are gone.
    fn synthesize(
        &mut self,
        (time, scanned): (u64, u64),
        tasks: &[ProcTask],
        f: &mut impl FnMut(&Attributor, Update<'_>),
    ) {
        let present: hashbrown::HashSet<u32> = tasks.iter().map(|t| t.tid).collect();
        self.model
            .end_missing(time, scanned, |tid| present.contains(&tid));
        self.stats.unreadable = census::feed(&mut self.model, Path::new("/proc"), time, tasks);
        self.hand_on_changes(f);
        for t in tasks {
            self.builder.set_comm(t.tid, &t.comm);
            let group = self.model.current(t.tid).map(|iv| iv.group);
            let head = |body| Event {
                time_ns: Some(time),
                cpu: None,
                pid: Some(t.pid),
                tid: Some(t.tid),
                synthesized: true,
                body,
            };
            let comm = head(Body::Comm {
                comm: t.comm.as_str().into(),
                exec: false,
            });
            f(
                &self.model,
                Update::Event {
                    event: &comm,
                    group,
                },
            );
            // Unknown links are no namespaces: a reader would take them for the host's.
            if t.ns.is_unknown() {
                continue;
            }
            let ns = head(Body::Namespaces {
                ns: &t.ns,
                comm: Some(t.comm.as_str().into()),
                cause: None,
            });
            f(&self.model, Update::Event { event: &ns, group });
        }
    }
}

/// Loads the task iterator, or says why it cannot run.
fn load_task_iter() -> Result<crate::bpf::iter::TaskIter, String> {
    crate::bpf::iter::TaskIter::load().map_err(|e| e.to_string())
}

fn proc_source(why: String) -> census::Source {
    census::Source::Proc { why: Some(why) }
}

/// Hands on a call that made no NAMESPACES record as an "ns_syscall" event.
fn put_call(model: &Attributor, c: &Cause, f: &mut impl FnMut(&Attributor, Update<'_>)) {
    let ev = Event {
        time_ns: Some(c.enter_ns),
        cpu: Some(c.cpu),
        pid: Some(c.pid),
        tid: Some(c.tid),
        synthesized: false,
        body: Body::NsSyscall { call: c },
    };
    // It changed nothing: its group is the one its task is in.
    let group = model.current(c.tid).map(|iv| iv.group);
    f(model, Update::Event { event: &ev, group });
}

/// Hands on `ev` (already applied to `model`, which put it in `group`) with the group
/// changes it caused, in the order readers need: starts first — after `name` has named
/// them, while their tasks live — then the event, then exits and renames (a rename found
/// while naming among them). The one ordering for live sessions, recordings and replays;
/// `name` does nothing where there is no /proc to read (a recording).
#[doc(hidden)]
pub fn hand_on(
    model: &mut Attributor,
    pending: &mut Vec<Change>,
    ev: &Event<'_>,
    group: Option<GroupId>,
    mut name: impl FnMut(&mut Attributor, &[Change]),
    f: &mut impl FnMut(&Attributor, Update<'_>),
) {
    pending.extend(model.take_changes());
    if pending.is_empty() {
        // Most events change no group.
        f(model, Update::Event { event: ev, group });
        return;
    }
    if pending.iter().any(|c| c.kind == ChangeKind::Start) {
        name(model, pending);
        pending.extend(model.take_changes());
    }
    // Ends declared as the clock passed their linger come before the event that moved it.
    let time = ev.time_ns.unwrap_or(u64::MAX);
    let declared = |c: &Change| c.kind == ChangeKind::Exit && c.time_ns < time;
    for c in pending.iter().filter(|c| declared(c)) {
        f(model, Update::Group(c));
    }
    for c in pending.iter().filter(|c| c.kind == ChangeKind::Start) {
        f(model, Update::Group(c));
    }
    f(model, Update::Event { event: ev, group });
    for c in pending
        .iter()
        .filter(|c| c.kind != ChangeKind::Start && !declared(c))
    {
        f(model, Update::Group(c));
    }
    pending.clear();
}

/// Tasks' pids in their own pid namespaces, which no record carries: read from
/// /proc/PID/task/TID/status, for tasks outside the host's pid namespace only (a fork
/// storm on the host costs nothing).
///
/// A group's first task is read at once: the model needs it to tell which container
/// stands for a pid namespace (the one whose init is pid 1 inside). Any other task is read
/// once it has lived [`NSPID_AFTER_NS`]: a status file costs ~5 µs of the tracer's CPU,
/// which a fork loop inside a container would otherwise pay on every fork (its tracer's
/// CPU per record went from ~140 to ~1,800 ns), for tasks that are gone before anyone
/// looks at them.
#[derive(Default)]
struct NsPids {
    /// (event time, pid, tid) of tasks not read yet, oldest first.
    due: std::collections::VecDeque<(u64, u32, u32)>,
}

/// How long a task in a pid namespace of its own lives before its pid there is read.
const NSPID_AFTER_NS: u64 = 250_000_000;

impl NsPids {
    fn learn(
        &mut self,
        model: &mut Attributor,
        group: Option<GroupId>,
        pid: u32,
        tid: u32,
        time_ns: u64,
        ns: &crate::nsset::NsSet,
    ) {
        let pid_kind = crate::record::NsKind::Pid;
        if ns.get(pid_kind) == model.host().get(pid_kind)
            || model.task(tid).is_none_or(|t| t.nspid != 0)
        {
            return;
        }
        if group.is_some_and(|g| model.group(g).leader == tid) {
            read_nspid(model, pid, tid);
        } else {
            self.due.push_back((time_ns, pid, tid));
        }
    }

    /// Reads the tasks that have lived long enough by `now_ns` (the model's clock) and
    /// still live.
    fn read_due(&mut self, model: &mut Attributor, now_ns: u64) {
        while let Some(&(at, pid, tid)) = self.due.front() {
            if at.saturating_add(NSPID_AFTER_NS) > now_ns {
                break;
            }
            self.due.pop_front();
            if model
                .task(tid)
                .is_some_and(|t| t.pid == pid && t.nspid == 0)
            {
                read_nspid(model, pid, tid);
            }
        }
    }
}

fn read_nspid(model: &mut Attributor, pid: u32, tid: u32) {
    if let Some(n) = procfs::read_nspid(Path::new("/proc"), pid, tid) {
        model.set_nspid(tid, n);
    }
}
