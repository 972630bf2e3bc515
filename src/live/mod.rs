//! Live capture: one side-band perf event per online CPU, its mmap ring read in place, the
//! rings merged into one time-ordered stream.
//!
//! Each ring is in time order; the rings are not with each other. A drain reads every
//! ring's head, then repeatedly takes the oldest next record over all rings (a k-way merge)
//! while it is older than `now - window`: a record younger than that may still have an
//! older one in flight on another CPU. What is held back stays in its ring, unreleased —
//! nothing is copied. A record that still arrives older than one already handed out (the
//! window was too short) is handed out anyway and counted as late.
//!
//! Held records take ring space: a ring found more than half full (its wake-up mark) has
//! the window cut short for that drain, down to the time that leaves about an eighth of it
//! held ([`HURRY_KEEP`]), so that a storm of records is handed out sooner rather than
//! lost.
//!
//! A [`Side`] source (the eBPF probe's ring buffer) joins the same merge as one more
//! input: its items are keyed by their own time and handed out in order with the records.

pub mod open;
pub mod pins;
pub mod ring;

use crate::decoder::Decoder;
use crate::error::DecodeError;
use crate::event::Cause;
use crate::record::RecordView;
use open::{map_error, online_cpus, open_cpu, side_band_decoder_attr, OpenError};
use ring::{page_size, Ring};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A second input of the merge, besides the rings: time-keyed items that arrive on their
/// own (the eBPF probe's ring buffer), held in time order by the source itself.
pub trait Side {
    /// Takes in what has arrived, without blocking.
    fn fill(&mut self);
    /// The time of the oldest item waiting.
    fn peek_time(&self) -> Option<u64>;
    /// Removes the oldest item waiting.
    fn pop(&mut self) -> Option<Box<Cause>>;
    /// Takes back an item that was handed out and is done with, to fill it again.
    fn recycle(&mut self, _item: Box<Cause>) {}
    /// A descriptor that polls readable when items arrive, to wake the capture.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// Items the source lost so far (a full buffer), reported like perf's LOST.
    fn lost(&self) -> u64 {
        0
    }
    /// Moves to `out` the calls that made namespaces among the items taken in since the
    /// last call, for a look at /proc while their tasks live.
    fn creations(&mut self, _out: &mut Vec<Creation>) {}
}

/// A successful call that made namespaces (unshare or a clone family call), as the [`Side`]
/// source learned of it, before it is merged: a new group's first task may be gone by the
/// time its record is handed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    /// The caller's process id.
    pub pid: u32,
    /// The caller's thread id.
    pub tid: u32,
    /// A clone's child as the caller's pid namespace numbers it (the host's pid when the
    /// caller is in the host's pid namespace).
    pub child: Option<u32>,
    /// The caller's command name (the creator of the group its child or itself starts).
    pub comm: String,
    /// False for a setns into a network namespace, which made none but may be entering
    /// one just named (`ip netns add`, then `ip netns exec`).
    pub made: bool,
    /// The caller's cgroup (v2 id) as the call returned, which a clone's child starts in;
    /// 0 when not known.
    pub cgroup: u64,
}

/// What the merge hands out, in time order.
pub enum Item<'a, 'r> {
    /// A perf record from a ring, and the decoder for it.
    Record(&'a Decoder, &'a RecordView<'r>),
    /// A namespace syscall from the [`Side`] source.
    Syscall(Box<Cause>),
}

/// Data pages per CPU ring by default: 1 MiB with 4 KiB pages. A setns storm on two CPUs
/// writes ~27 MB/s into each ring once nswatch holds its namespaces open (320,000 calls/s);
/// half of a 512 KiB ring, the wake-up mark, is then ~10 ms, less than a busy scheduler
/// may keep nswatch waiting, and 2% of the records were lost. At 256 pages none were, and
/// fuller batches cost less a record (benches/live_capture.sh).
pub const DEFAULT_RING_PAGES: usize = 256;

/// Settings of a capture.
///
/// ```
/// use nswatch::session::{CaptureOptions, SessionOptions, DEFAULT_RING_PAGES};
///
/// let opts = SessionOptions {
///     capture: CaptureOptions { ring_pages: 4 * DEFAULT_RING_PAGES, ..CaptureOptions::default() },
///     ..SessionOptions::default()
/// };
/// assert_eq!(opts.capture.ring_pages, 1024);
/// ```
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Data pages per CPU ring (a power of two).
    pub ring_pages: usize,
    /// How long a record is held back for records of other CPUs that may be older.
    pub window: Duration,
    /// Longest sleep when rings hold less than the wake-up watermark.
    pub tick: Duration,
}

impl CaptureOptions {
    /// Data pages per ring as opened: `ring_pages` rounded up to a power of two.
    fn pages(&self) -> usize {
        self.ring_pages.max(1).next_power_of_two()
    }
}

/// The CPUs online now.
fn online() -> Result<Vec<u32>, OpenError> {
    online_cpus().map_err(|err| OpenError::Other {
        cpu: 0,
        what: "reading /sys/devices/system/cpu/online",
        err,
    })
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            ring_pages: DEFAULT_RING_PAGES,
            window: Duration::from_millis(10),
            tick: Duration::from_millis(100),
        }
    }
}

/// Counts kept by a capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Records read, per CPU (indexed like [`Capture::cpus`]).
    pub per_cpu: Vec<u64>,
    /// Records that arrived older than one already handed out.
    pub late: u64,
    /// Rings found corrupt and resynchronised (skipped to their head).
    pub resyncs: u64,
    /// Rings found stopped because their CPU went offline (see [`Capture::check_cpus`]).
    pub stopped: u64,
    /// Rings opened after the start, for CPUs that came (back) online.
    pub reopened: u64,
    /// Times the capture woke up (epoll returned or ticked).
    pub wakeups: u64,
    /// Items handed out from the [`Side`] source.
    pub side: u64,
    /// Drains whose reorder window was cut short because a ring was more than half full
    /// of records held back by it.
    pub hurried: u64,
    /// Bytes each ring held when it was last read (indexed like `per_cpu`): how close it
    /// came to overflowing, against [`Capture::ring_bytes`].
    pub ring_used: Vec<u64>,
}

/// What of a ring a hurried drain still holds back: an eighth of it. The window holds
/// whatever came in over its length, and under a setns storm (~56 MB/s into one CPU's
/// ring) 10 ms of records are more than half of a 1 MiB ring: the ring woke nswatch at
/// half full with nothing old enough to release, and overflowed before the next wake-up
/// (1-2% of the records lost with NDJSON written to /dev/null). An eighth, ~2 ms then,
/// leaves room for the next half ring and a late wake-up.
pub const HURRY_KEEP: u64 = 8;

/// A running capture over all online CPUs.
pub struct Capture {
    rings: Vec<Ring>,
    decoder: Decoder,
    epoll: OwnedFd,
    opts: CaptureOptions,
    stats: CaptureStats,
    last_time: u64,
    heads: Vec<u64>,
    pos: Vec<u64>,
    side: Option<Box<dyn Side>>,
    /// Where the rings' records keep their time: (trailer length, offset of the time in
    /// the trailer). Every record of the rings has the side-band attr's trailer.
    time_at: (usize, usize),
    /// [`open::pin_own_namespaces`], for as long as the rings are open.
    _pinned: Vec<OwnedFd>,
    /// Per ring: its event's enabled time and CLOCK_MONOTONIC at the last check (at
    /// first, 0 and when it was enabled), or `None` once it stopped (its CPU went
    /// offline; the ring is still read for what it holds).
    enabled: Vec<Option<(u64, u64)>>,
    last_check: Instant,
}

/// How far a running event's enabled time may lag CLOCK_MONOTONIC over a check's
/// interval (the two clocks' drift, the read's own time): a ring stopped for less than
/// this before a check is found stopped at the next one.
const STOP_SLACK_NS: u64 = 50_000_000;

/// How often `Session::poll` checks for CPUs gone offline or come online
/// ([`Capture::check_cpus`]).
pub const CPU_CHECK: Duration = Duration::from_secs(1);

/// Opens, maps and registers the side-band event of `cpu` (not enabled), as ring number
/// `index` of `epoll`; `None` when the CPU is offline.
fn open_ring(
    cpu: u32,
    pages: usize,
    epoll: &OwnedFd,
    index: usize,
) -> Result<Option<(Ring, u64)>, OpenError> {
    let bytes = pages * page_size();
    // Wake up when half the ring is used: batches under load, and the tick bounds the
    // latency when little happens.
    let watermark = (bytes / 2).max(1) as u32;
    let fd = match open_cpu(cpu, watermark) {
        Ok(fd) => fd,
        // A CPU that went offline between the list and the open.
        Err(OpenError::Other { err, .. }) if err.raw_os_error() == Some(libc::ENODEV) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let mut id = 0u64;
    // SAFETY: PERF_EVENT_IOC_ID writes one u64.
    unsafe { perf_event_open_sys::ioctls::ID(fd.as_raw_fd(), &mut id) };
    let ring = Ring::map(fd, cpu, pages).map_err(|e| map_error(cpu, bytes, e))?;
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: index as u64,
    };
    // SAFETY: valid epoll and perf fds.
    if unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            ring.fd().as_raw_fd(),
            &mut ev,
        )
    } < 0
    {
        return Err(OpenError::Other {
            cpu,
            what: "epoll_ctl",
            err: io::Error::last_os_error(),
        });
    }
    Ok(Some((ring, id)))
}

/// Enables a ring's event.
fn enable(r: &Ring) -> Result<(), OpenError> {
    // SAFETY: an open perf fd.
    if unsafe { perf_event_open_sys::ioctls::ENABLE(r.fd().as_raw_fd(), 0) } < 0 {
        return Err(OpenError::Other {
            cpu: r.cpu(),
            what: "enabling the event",
            err: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// CLOCK_MONOTONIC now, in ns: the clock the rings' records are stamped with.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Capture {
    /// Opens, maps and enables the side-band event on every online CPU.
    pub fn open(opts: CaptureOptions) -> Result<Capture, OpenError> {
        let pages = opts.pages();
        let cpus = online()?;
        // SAFETY: epoll_create1 has no preconditions.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(OpenError::Other {
                cpu: 0,
                what: "epoll_create1",
                err: io::Error::last_os_error(),
            });
        }
        // SAFETY: a fresh fd.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        let mut rings = Vec::with_capacity(cpus.len());
        let mut decoder = Decoder::new();
        let mut ids = Vec::new();
        for &cpu in &cpus {
            if let Some((ring, id)) = open_ring(cpu, pages, &epoll, rings.len())? {
                ids.push(id);
                rings.push(ring);
            }
        }
        decoder.add_attr(side_band_decoder_attr(), ids);
        // Before the rings are enabled, so that their first records find them held; after
        // the events are open, so that a short fd limit is still reported as such.
        let pinned = open::pin_own_namespaces();
        for r in &rings {
            enable(r)?;
        }
        Ok(Capture::assemble(rings, decoder, epoll, opts, pinned))
    }

    /// A capture over mapped rings (registered with `epoll`), before any read.
    fn assemble(
        rings: Vec<Ring>,
        decoder: Decoder,
        epoll: OwnedFd,
        opts: CaptureOptions,
        pinned: Vec<OwnedFd>,
    ) -> Self {
        let n = rings.len();
        Capture {
            rings,
            decoder,
            epoll,
            opts,
            stats: CaptureStats {
                per_cpu: vec![0; n],
                ring_used: vec![0; n],
                ..Default::default()
            },
            last_time: 0,
            heads: vec![0; n],
            pos: vec![0; n],
            side: None,
            time_at: time_at(),
            _pinned: pinned,
            // The events were enabled just before: their enabled time starts at 0.
            enabled: vec![Some((0, monotonic_ns())); n],
            last_check: Instant::now(),
        }
    }

    /// Finds the rings whose CPU went offline (their events stopped, and stay stopped when
    /// the CPU comes back: the kernel removes them) and opens a new ring for every online
    /// CPU without a running one. True when records may have been missed meanwhile (the
    /// caller then reads /proc again, as after lost records). `Session::poll` calls it
    /// every [`CPU_CHECK`].
    pub fn check_cpus(&mut self) -> Result<bool, OpenError> {
        self.last_check = Instant::now();
        let online = online()?;
        let mut missed = false;
        for (i, r) in self.rings.iter().enumerate() {
            let Some((before, at)) = self.enabled[i] else {
                continue;
            };
            let now = monotonic_ns();
            // A running event's enabled time moves on with the clock, records or not; one
            // stopped (at its CPU's offlining, for good) falls behind from that moment, so
            // a stop since the last check shows at this one, even if the CPU is back.
            let t = online
                .contains(&r.cpu())
                .then(|| open::time_enabled(r.fd()).ok())
                .flatten();
            match t {
                Some(t) if t > before && t - before + STOP_SLACK_NS >= now - at => {
                    self.enabled[i] = Some((t, now));
                }
                _ => {
                    self.enabled[i] = None;
                    self.stats.stopped += 1;
                    missed = true;
                }
            }
        }
        let pages = self.opts.pages();
        for cpu in online {
            let running = self
                .rings
                .iter()
                .zip(&self.enabled)
                .any(|(r, e)| r.cpu() == cpu && e.is_some());
            if running {
                continue;
            }
            let Some((ring, id)) = open_ring(cpu, pages, &self.epoll, self.rings.len())? else {
                continue;
            };
            enable(&ring)?;
            self.decoder.add_attr(side_band_decoder_attr(), [id]);
            self.rings.push(ring);
            self.enabled.push(Some((0, monotonic_ns())));
            self.heads.push(0);
            self.pos.push(0);
            self.stats.per_cpu.push(0);
            self.stats.ring_used.push(0);
            self.stats.reopened += 1;
            missed = true;
        }
        Ok(missed)
    }

    /// True when [`Capture::check_cpus`] is due.
    pub fn cpu_check_due(&self) -> bool {
        self.last_check.elapsed() >= CPU_CHECK
    }

    /// Adds a second input to the merge; its descriptor wakes the capture too.
    pub fn set_side(&mut self, side: Box<dyn Side>) -> io::Result<()> {
        if let Some(fd) = side.fd() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: u64::MAX,
            };
            // SAFETY: valid epoll fd and a descriptor the side keeps open.
            if unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    fd.as_raw_fd(),
                    &mut ev,
                )
            } < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        self.side = Some(side);
        Ok(())
    }

    /// The second input, if one was added.
    pub fn side(&self) -> Option<&dyn Side> {
        self.side.as_deref()
    }

    /// Hands items of the [`Side`] source that are done with back to it, for reuse.
    #[allow(clippy::vec_box)]
    pub fn recycle(&mut self, items: &mut Vec<Box<Cause>>) {
        match self.side.as_mut() {
            Some(side) => items.drain(..).for_each(|c| side.recycle(c)),
            None => items.clear(),
        }
    }

    /// Data bytes of each ring.
    pub fn ring_bytes(&self) -> u64 {
        self.rings.first().map_or(0, Ring::data_size)
    }

    /// The CPU of each ring, in ring order (a CPU that went offline and came back has a
    /// ring before and one after).
    pub fn cpus(&self) -> Vec<u32> {
        self.rings.iter().map(|r| r.cpu()).collect()
    }

    /// The decoder for the rings' records.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Counts so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Sleeps until a ring passes its watermark or the tick ends (at most `max_wait`), then hands out in time order every record older than the
    /// reorder window.
    pub fn poll<E: From<DecodeError>>(
        &mut self,
        max_wait: Duration,
        f: impl FnMut(Item<'_, '_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.wait(max_wait)?;
        self.drain_due(f).map(drop)
    }

    /// The first half of [`Capture::poll`]: waits up to `max_wait` (and the tick) for a
    /// ring past its watermark or the side source's wake-up.
    pub fn wait(&mut self, max_wait: Duration) -> Result<(), DecodeError> {
        // Records held back by the window wait for the tick too: waking every window
        // (100 times a second under a steady trickle) costs more CPU than the records
        // themselves; a ring past its watermark still wakes us at once.
        let wait = self.opts.tick.min(max_wait);
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: evs has room for the 8 events we allow.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                evs.as_mut_ptr(),
                evs.len() as i32,
                wait.as_millis().max(1) as i32,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(DecodeError::at(
                    0,
                    crate::ErrorKind::Io(format!("epoll_wait: {err}")),
                ));
            }
        }
        self.stats.wakeups += 1;
        Ok(())
    }

    /// Takes in what the side source holds and moves to `out` the calls among it that
    /// made namespaces (see [`Side::creations`]).
    pub fn creations(&mut self, out: &mut Vec<Creation>) {
        if let Some(side) = self.side.as_mut() {
            side.fill();
            side.creations(out);
        }
    }

    /// The second half of [`Capture::poll`]: hands out the records older than the reorder
    /// window, and returns that time (CLOCK_MONOTONIC ns): what the stream has passed.
    pub fn drain_due<E: From<DecodeError>>(
        &mut self,
        f: impl FnMut(Item<'_, '_>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let now = monotonic_ns();
        let cutoff = now.saturating_sub(self.opts.window.as_nanos() as u64);
        self.drain(cutoff, now, f)?;
        Ok(cutoff)
    }

    /// Hands out, without waiting, the records stamped up to `time` (CLOCK_MONOTONIC ns).
    pub fn drain_until<E: From<DecodeError>>(
        &mut self,
        time: u64,
        f: impl FnMut(Item<'_, '_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.drain(time, monotonic_ns(), f)
    }

    /// Hands out every record in the rings, whatever its age (at the end of a capture).
    pub fn flush<E: From<DecodeError>>(
        &mut self,
        f: impl FnMut(Item<'_, '_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.drain(u64::MAX, monotonic_ns(), f)
    }

    /// The k-way merge: hands out, oldest first, the records with a time up to `cutoff`,
    /// and releases what each ring handed out, a tail store every [`RELEASE_EVERY`] of
    /// its records and one at the end: under a storm a drain lasts milliseconds,
    /// with writes that wait for the device among its records, and space held back that
    /// long made the rings overflow (NDJSON to a file: 6–16k records lost a 5 s storm,
    /// 0–8k with the stores along the way).
    ///
    /// Each input's next record is parsed once (header and time) and kept until it is
    /// handed out, with its time in `next`, one slot per input (the CPUs' rings, then the
    /// side source), as one u128 key (time, input). A scan of those slots finds the oldest input and the next-oldest;
    /// the oldest then hands out a *run*: records for as long as they come before the
    /// next-oldest's (equal times go to the lower index). A few slots are scanned faster
    /// than a binary heap is sifted, and the scan is once per run, not per record: under
    /// a setns storm runs alternate (a cause, then its NAMESPACES record).
    fn drain<E: From<DecodeError>>(
        &mut self,
        cutoff: u64,
        now: u64,
        mut f: impl FnMut(Item<'_, '_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Capture {
            rings,
            decoder,
            stats,
            last_time,
            heads,
            pos,
            side,
            time_at,
            ..
        } = self;
        let time_at = *time_at;
        let n = rings.len();
        // The side source's slot: past the rings.
        let side_slot = n;
        // Each slot holds key(time, input) of the input's next item, or NONE.
        let mut next: Vec<u128> = vec![NONE; n + 1];
        if let Some(side) = side.as_mut() {
            side.fill();
            next[side_slot] = side.peek_time().map_or(NONE, |t| key(t, side_slot));
        }
        let mut cur: Vec<Option<RecordView<'_>>> = Vec::with_capacity(n);
        for (i, r) in rings.iter().enumerate() {
            heads[i] = r.head();
            pos[i] = r.tail();
            cur.push(
                match next_record(r, decoder, time_at, &mut pos[i], heads[i], stats) {
                    Some((t, v)) => {
                        next[i] = key(t, i);
                        Some(v)
                    }
                    None => None,
                },
            );
        }
        // A ring more than half full holds back less: the cutoff moves up to the time
        // that leaves an eighth of it, as estimated from its oldest record's time and
        // `now`, the records taken as spread evenly in between (walking the ring to the
        // exact record cost ~10 ns per record of a storm).
        let mut cutoff = cutoff;
        let mut hurried = false;
        for (i, r) in rings.iter().enumerate() {
            let (used, size) = (heads[i] - pos[i], r.data_size());
            stats.ring_used[i] = used;
            if used > size / 2 && next[i] != NONE {
                let oldest = (next[i] >> 64) as u64;
                let span = u128::from(now.saturating_sub(oldest));
                let keep = u128::from(size / HURRY_KEEP);
                let t = now - (span * keep / u128::from(used)) as u64;
                if t > cutoff {
                    cutoff = t;
                    hurried = true;
                }
            }
        }
        stats.hurried += u64::from(hurried);
        let mut result = Ok(());
        'merge: loop {
            // The oldest input, and the bound of its run: the next-oldest, or the cutoff.
            let (mut oldest, mut second) = (NONE, NONE);
            for &k in next.iter() {
                if k < oldest {
                    second = oldest;
                    oldest = k;
                } else if k < second {
                    second = k;
                }
            }
            let bound = second.min(key(cutoff, u64::MAX as usize));
            if oldest == NONE || oldest > bound {
                break;
            }
            let (mut t, i) = ((oldest >> 64) as u64, oldest as u64 as usize);
            next[i] = NONE;
            if i == side_slot {
                let Some(side) = side.as_mut() else {
                    continue;
                };
                while let Some(item) = side.pop() {
                    order(t, last_time, stats);
                    stats.side += 1;
                    if let Err(e) = f(Item::Syscall(item)) {
                        result = Err(e);
                        break 'merge;
                    }
                    match side.peek_time() {
                        Some(nt) if key(nt, i) <= bound => t = nt,
                        Some(nt) => {
                            next[i] = key(nt, i);
                            break;
                        }
                        None => break,
                    }
                }
                continue;
            }
            let ring = &rings[i];
            while let Some(view) = cur[i].take() {
                order(t, last_time, stats);
                stats.per_cpu[i] += 1;
                pos[i] += view.size() as u64;
                if let Err(e) = f(Item::Record(decoder, &view)) {
                    result = Err(e);
                    break 'merge;
                }
                if stats.per_cpu[i].is_multiple_of(RELEASE_EVERY) {
                    // What was handed out goes back now, not at the drain's end: a write of
                    // the lines made (which waits for the device) may come next.
                    ring.release_early(pos[i]);
                }
                let Some((nt, v)) =
                    next_record(ring, decoder, time_at, &mut pos[i], heads[i], stats)
                else {
                    break;
                };
                cur[i] = Some(v);
                if key(nt, i) <= bound {
                    t = nt;
                } else {
                    next[i] = key(nt, i);
                    break;
                }
            }
        }
        drop(cur);
        for (i, r) in rings.iter_mut().enumerate() {
            if pos[i] != r.tail() {
                r.release(pos[i]);
            }
        }
        result
    }
}

/// A ring's records handed out between two releases of its consumed space within a drain
/// (~40 KB of a storm's records, at most). Only the ring that handed them out stores its
/// tail: each store takes the control page's line from the CPU whose kernel reads it for
/// every record it writes.
const RELEASE_EVERY: u64 = 256;

/// The merge's order of an input's next item: by time, then by input index.
#[inline]
fn key(time: u64, input: usize) -> u128 {
    (u128::from(time) << 64) | input as u128
}

/// No item waiting in a slot: above every key (input indexes stay far below u64::MAX).
const NONE: u128 = u128::MAX;

/// Counts a record handed out at `t` as late when one already handed out was newer.
#[inline]
fn order(t: u64, last_time: &mut u64, stats: &mut CaptureStats) {
    if t < *last_time {
        stats.late += 1;
    } else {
        *last_time = t;
    }
}

/// (trailer length, offset of the time in it) of the side-band attr's records.
fn time_at() -> (usize, usize) {
    use crate::attr::sample;
    let fmt = side_band_decoder_attr().format();
    assert!(
        fmt.sample_id_all && fmt.has(sample::TIME),
        "the rings' records carry a time"
    );
    (
        fmt.trailer_len as usize,
        8 * usize::from(fmt.has(sample::TID)),
    )
}

/// The record of `ring` at `pos` and its time, or None when the ring is drained up to
/// `head` or corrupt (then skipped to its head).
#[inline]
fn next_record<'r>(
    ring: &'r Ring,
    decoder: &Decoder,
    (trailer, at): (usize, usize),
    pos: &mut u64,
    head: u64,
    stats: &mut CaptureStats,
) -> Option<(u64, RecordView<'r>)> {
    if *pos >= head {
        return None;
    }
    match ring.record_at(*pos, head) {
        Ok(v) => {
            // Read straight from the trailer, as Decoder::time_of would after looking up
            // the record's layout (the rings have one; samples, which they do not carry,
            // keep their time elsewhere).
            let t = match v.size().checked_sub(trailer) {
                Some(start) if v.ty != crate::record::kind::SAMPLE => v.bytes.u64(start + at),
                _ => decoder.time_of(&v),
            };
            Some((t.unwrap_or(0), v))
        }
        Err(_) => {
            // A corrupt ring cannot be walked: skip what it holds.
            stats.resyncs += 1;
            *pos = head;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::SampleFormat;
    use crate::bytes::Endian;
    use crate::live::open::SAMPLE_TYPE;
    use crate::live::ring::fake::{fake_ring, fake_ring_of, kernel_write, published_tail};
    use crate::record::encode::Encoder;
    use crate::record::{NsLink, Record, SampleId};
    use std::collections::VecDeque;

    struct FakeSide(VecDeque<Box<Cause>>);

    impl Side for FakeSide {
        fn fill(&mut self) {}
        fn peek_time(&self) -> Option<u64> {
            self.0.front().map(|c| c.enter_ns)
        }
        fn pop(&mut self) -> Option<Box<Cause>> {
            self.0.pop_front()
        }
        fn fd(&self) -> Option<BorrowedFd<'_>> {
            None
        }
    }

    fn cause(t: u64) -> Box<Cause> {
        Box::new(Cause {
            enter_ns: t,
            exit_ns: t + 1,
            pid: 7,
            tid: 7,
            comm: "t".into(),
            dev: 4,
            ..Cause::blank()
        })
    }

    /// A capture over fake rings, without perf events.
    fn capture(rings: Vec<Ring>) -> Capture {
        let mut decoder = Decoder::new();
        decoder.add_attr(open::side_band_decoder_attr(), [1]);
        // SAFETY: epoll_create1 has no preconditions; the fd is owned below.
        let epoll = unsafe { OwnedFd::from_raw_fd(libc::epoll_create1(libc::EPOLL_CLOEXEC)) };
        Capture::assemble(rings, decoder, epoll, CaptureOptions::default(), Vec::new())
    }

    /// Appends NAMESPACES records of tid `tid` at `times` to `ring` (after `end`).
    fn write(ring: &Ring, end: &mut u64, tid: u32, times: &[u64]) {
        let enc = Encoder::new(Endian::NATIVE, SampleFormat::new(SAMPLE_TYPE, 0, true));
        let links = [NsLink { dev: 4, ino: 1 }; 7];
        for &t in times {
            let mut rec = Vec::new();
            let id = SampleId {
                pid: Some(tid),
                tid: Some(tid),
                time: Some(t),
                cpu: Some(0),
                id: Some(1),
                ..Default::default()
            };
            enc.namespaces(&mut rec, tid, tid, &links, &id);
            kernel_write(ring, *end, &rec);
            *end += rec.len() as u64;
        }
    }

    /// (input, time) in the order the merge hands them out; input 9 is the side source.
    fn take(cap: &mut Capture, cutoff: u64) -> Vec<(u32, u64)> {
        take_at(cap, cutoff, cutoff)
    }

    /// As [`take`], the clock reading `now`.
    fn take_at(cap: &mut Capture, cutoff: u64, now: u64) -> Vec<(u32, u64)> {
        let mut got = Vec::new();
        cap.drain(cutoff, now, |item| -> Result<(), DecodeError> {
            got.push(match item {
                Item::Record(dec, view) => {
                    let (rec, id) = dec.decode(view)?;
                    let Record::Namespaces(n) = rec else { panic!() };
                    (n.tid, id.time.unwrap())
                }
                Item::Syscall(c) => (9, c.enter_ns),
            });
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn the_merge_hands_out_in_time_order_up_to_the_cutoff_and_counts_late_records() {
        let rings = vec![fake_ring(), fake_ring(), fake_ring()];
        let mut end = [0u64; 3];
        write(&rings[0], &mut end[0], 0, &[10, 20, 30, 40, 100]);
        write(&rings[1], &mut end[1], 1, &[15, 20, 25, 60, 90]);
        write(&rings[2], &mut end[2], 2, &[5, 50]);
        let mut cap = capture(rings);
        cap.side = Some(Box::new(FakeSide(
            [20, 35, 95].into_iter().map(cause).collect(),
        )));
        // Equal times: rings by index, then the side source (the heap's order).
        assert_eq!(
            take(&mut cap, 60),
            [
                (2, 5),
                (0, 10),
                (1, 15),
                (0, 20),
                (1, 20),
                (9, 20),
                (1, 25),
                (0, 30),
                (9, 35),
                (0, 40),
                (2, 50),
                (1, 60)
            ]
        );
        // What is held back stays in its ring, unreleased.
        let rec = end[2] / 2;
        let tails: Vec<u64> = cap.rings.iter().map(|r| r.tail()).collect();
        assert_eq!(tails, [4 * rec, 4 * rec, 2 * rec]);
        assert_eq!(cap.stats.late, 0);
        // A record older than one handed out is still handed out, and counted as late.
        write(&cap.rings[2], &mut end[2], 2, &[45]);
        assert_eq!(
            take(&mut cap, u64::MAX),
            [(2, 45), (1, 90), (9, 95), (0, 100)]
        );
        assert_eq!(cap.stats.late, 1);
        assert_eq!(cap.stats.per_cpu, [5, 5, 3]);
        assert_eq!(cap.stats.side, 3);
        let tails: Vec<u64> = cap.rings.iter().map(|r| r.tail()).collect();
        assert_eq!(tails, end);
        assert!(take(&mut cap, u64::MAX).is_empty());
    }

    #[test]
    fn a_ring_more_than_half_full_is_drained_to_an_eighth_whatever_the_window() {
        let rings = vec![fake_ring(), fake_ring()];
        let mut end = [0u64; 2];
        let times: Vec<u64> = (100..116).collect();
        write(&rings[0], &mut end[0], 0, &times);
        write(&rings[1], &mut end[1], 1, &[105, 200]);
        let rec = end[0] / times.len() as u64;
        let size = rings[0].data_size();
        assert!(end[0] > size / 2, "the test needs a ring past half full");
        let mut cap = capture(rings);
        // A cutoff before every record: only the hurry hands anything out. The records
        // came one a tick up to now = 116: the time that leaves an eighth of the ring
        // (512 bytes of 16 records' 2,688) is 116 - 16 * 512 / 2688, 113 in whole ticks,
        // so the first 14 go (2 remain), with the other ring's older ones among them, in
        // time order.
        let got = take_at(&mut cap, 50, 116);
        let last = 116 - 16 * (size / HURRY_KEEP) / (16 * rec);
        assert_eq!(last, 113);
        let keep = 115 - last;
        let mut want: Vec<(u32, u64)> = (100..=last).map(|t| (0, t)).collect();
        want.insert(6, (1, 105));
        assert_eq!(got, want);
        assert_eq!(cap.stats.hurried, 1);
        assert_eq!(cap.rings[0].tail(), end[0] - keep * rec);
        assert_eq!(cap.rings[1].tail(), rec);
        // Below half full, the window holds again.
        assert!(take_at(&mut cap, 50, 116).is_empty());
        assert_eq!(cap.stats.hurried, 1);
        assert_eq!(cap.stats.late, 0);
    }

    #[test]
    fn a_long_drain_gives_back_what_it_handed_out_as_it_goes() {
        let rings = vec![fake_ring_of(16), fake_ring()];
        let mut end = [0u64; 2];
        let n = RELEASE_EVERY + 44;
        let times: Vec<u64> = (1..=n).collect();
        write(&rings[0], &mut end[0], 0, &times);
        write(&rings[1], &mut end[1], 1, &[n + 1]);
        let rec = end[0] / n;
        let tail = published_tail(&rings[0]);
        let mut cap = capture(rings);
        let mut seen = Vec::new();
        cap.drain(n, n, |_| -> Result<(), DecodeError> {
            // SAFETY: the control page's data_tail, an atomic the ring keeps mapped.
            seen.push(unsafe { (*tail).load(std::sync::atomic::Ordering::Acquire) });
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len() as u64, n);
        // The kernel sees nothing given back before the first RELEASE_EVERY records are
        // handed out, then all of them while the drain goes on; the rest at its end.
        assert!(seen[..RELEASE_EVERY as usize].iter().all(|&t| t == 0));
        assert!(seen[RELEASE_EVERY as usize..]
            .iter()
            .all(|&t| t == RELEASE_EVERY * rec));
        assert_eq!(cap.rings[0].tail(), end[0]);
        // SAFETY: as above.
        assert_eq!(
            unsafe { (*tail).load(std::sync::atomic::Ordering::Acquire) },
            end[0]
        );
        // The other ring's record, past the cutoff, was neither handed out nor given back.
        assert_eq!(cap.rings[1].tail(), 0);
    }

    #[test]
    fn a_callback_error_stops_the_merge_and_releases_only_what_was_handed_out() {
        let rings = vec![fake_ring(), fake_ring()];
        let mut end = [0u64; 2];
        write(&rings[0], &mut end[0], 0, &[1, 2, 3]);
        write(&rings[1], &mut end[1], 1, &[4]);
        let mut cap = capture(rings);
        let mut n = 0;
        let r = cap.drain(u64::MAX, 0, |_| {
            n += 1;
            if n == 2 {
                Err(DecodeError::at(0, crate::ErrorKind::UnknownType))
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        let rec = end[0] / 3;
        assert_eq!(
            cap.rings[0].tail(),
            2 * rec,
            "the failed record counts as read"
        );
        assert_eq!(cap.rings[1].tail(), 0);
        assert_eq!(take(&mut cap, u64::MAX), [(0, 3), (1, 4)]);
    }
}
