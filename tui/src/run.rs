//! The terminal loops: live (a [`Session`]) and replay (a recording), both feeding one
//! [`App`] and drawing it with [`ui::draw`].
//!
//! Live mode runs the session on the UI's thread: [`Session::poll`] waits on the rings' epoll
//! for at most one frame, then keys are read without waiting. The model lives in the
//! session and the app reads it in place, so a second thread would need a lock around it or
//! a copy of every update; one thread needs neither, and a key waits at most one frame.

use crate::app::{App, Source};
use crate::usage::{Mounts, Sampler};
use crate::{input, ui};
use anyhow::{Context, Result};
use nswatch::event::{EventBuilder, JsonReader};
use nswatch::live::monotonic_ns;
use nswatch::model::json::Announcements;
use nswatch::model::Attributor;
use nswatch::ndjson::Lines;
use nswatch::select::Selection;
use nswatch::session::{Session, SessionOptions};
use nswatch::{Event, Order, PerfData};
use ratatui::DefaultTerminal;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `nswatch top`.
#[derive(Debug, Clone)]
pub struct TopOptions {
    /// How to open the live session.
    pub session: SessionOptions,
    /// Where `e` writes its JSON files.
    pub export_dir: PathBuf,
    /// Longest wait for records or keys: a key's worst latency.
    pub frame: Duration,
    /// Shortest interval between two snapshots of the model: under a fork storm the tree
    /// is rebuilt at most this often, however many events arrive.
    pub refresh: Duration,
    /// What to show (`-p`, `--container`); everything by default.
    pub select: Selection,
    /// List the groups of kernel threads alone apart from the host (`--all`).
    pub all: bool,
}

impl Default for TopOptions {
    fn default() -> Self {
        TopOptions {
            session: SessionOptions::default(),
            export_dir: PathBuf::from("."),
            frame: Duration::from_millis(50),
            refresh: Duration::from_millis(250),
            select: Selection::default(),
            all: false,
        }
    }
}

/// Options of `nswatch top --replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The recording.
    pub file: PathBuf,
    /// Recorded seconds per second; `None`: as fast as it reads.
    pub speed: Option<f64>,
    /// Where `e` writes.
    pub export_dir: PathBuf,
    /// As [`TopOptions::frame`].
    pub frame: Duration,
    /// As [`TopOptions::refresh`].
    pub refresh: Duration,
    /// As [`TopOptions::select`].
    pub select: Selection,
    /// As [`TopOptions::all`].
    pub all: bool,
}

/// The terminal, restored when dropped (quit, error) as well as on a panic (ratatui's
/// hook, installed by `try_init`).
struct Term(DefaultTerminal);

impl Term {
    fn new() -> Result<Term> {
        Ok(Term(
            ratatui::try_init().context("setting up the terminal")?,
        ))
    }

    fn draw(&mut self, app: &App) -> Result<()> {
        self.0.draw(|f| ui::draw(f, app))?;
        Ok(())
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// The wall clock, ns since the epoch.
fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// nswatch's own CPU time (getrusage) per second of wall time.
struct CpuMeter {
    last_cpu: Duration,
    last_wall: Instant,
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

impl CpuMeter {
    fn new() -> CpuMeter {
        CpuMeter {
            last_cpu: cpu_time(),
            last_wall: Instant::now(),
        }
    }

    /// Percent of one core since the last call.
    fn sample(&mut self) -> f64 {
        let (cpu, wall) = (cpu_time(), Instant::now());
        let dw = wall.duration_since(self.last_wall).as_secs_f64();
        let pct = if dw > 0.0 {
            (cpu - self.last_cpu).as_secs_f64() / dw * 100.0
        } else {
            0.0
        };
        (self.last_cpu, self.last_wall) = (cpu, wall);
        pct
    }
}

fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing a signal handler")?;
    }
    Ok(stop)
}

/// Reads keys, waiting at most `wait` for the first; a resize (`winch`) asks for a
/// redraw. True when a key or a resize came.
///
/// The waiting is done here with poll(2), level-triggered, and the bytes parsed by
/// [`input::parse_keys`] (see there why not by crossterm). On a terminal that went away
/// (tmux killed, ssh dropped) standard input hangs up: that quits.
fn pump_keys(app: &mut App, wait: Duration, winch: &AtomicBool) -> Result<bool> {
    let mut any = false;
    let mut wait = wait;
    for _ in 0..KEY_BATCH {
        let state = stdin_state(wait);
        if winch.swap(false, Ordering::Relaxed) {
            app.touch();
            any = true;
        }
        match state {
            Stdin::HungUp => {
                app.quit = true;
                return Ok(any);
            }
            Stdin::Idle => return Ok(any),
            Stdin::Readable => {}
        }
        wait = Duration::ZERO;
        let mut buf = [0u8; 1024];
        // SAFETY: reads into a buffer of its length; poll said it will not block.
        let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            app.quit = true;
            return Ok(any);
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
            ) {
                continue;
            }
            return Err(anyhow::Error::new(e).context("reading the terminal"));
        }
        for key in input::parse_keys(&buf[..n as usize]) {
            any = true;
            app.handle_key(key);
            if app.quit {
                return Ok(any);
            }
        }
    }
    Ok(any)
}

/// A flag raised by SIGWINCH (the terminal was resized).
fn winch_flag() -> Result<Arc<AtomicBool>> {
    let winch = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGWINCH, Arc::clone(&winch))
        .context("installing a signal handler")?;
    Ok(winch)
}

/// Most terminal events read in one go (then the loop gets back to its other work).
const KEY_BATCH: usize = 64;

/// What poll(2) says of standard input (the terminal).
enum Stdin {
    Readable,
    Idle,
    HungUp,
}

fn stdin_state(wait: Duration) -> Stdin {
    let mut fds = [libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    }];
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
    if n <= 0 {
        // A signal (SIGWINCH) or nothing: the caller's loop comes back soon.
        return Stdin::Idle;
    }
    if fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Stdin::HungUp
    } else {
        Stdin::Readable
    }
}

/// Runs `nswatch top` on this machine until `q`.
pub fn run_live(opts: TopOptions) -> Result<()> {
    let stop = stop_flag()?;
    // Pids that are not running are said as `perf top -p` says them: none running is an
    // error before the screen opens, some are named in the status line.
    let gone = gone_pids(&opts.select.pids);
    if !gone.is_empty() && gone.len() == opts.select.pids.len() {
        for p in &gone {
            eprintln!("nswatch top: pid {p}: no such process");
        }
        anyhow::bail!("none of the processes asked for (-p) is running");
    }
    // The session starts before the terminal is taken, so that its errors (no privilege,
    // limits) print as they do for `record`.
    let mut session = Session::start(opts.session)?;
    let host_pid = nswatch::procfs::host_set(Path::new("/proc")).map_or(0, |(p, _)| p);
    let mut app = App::new(Source::Live, opts.export_dir);
    app.all = opts.all;
    app.set_selection(opts.select.clone());
    if !gone.is_empty() {
        app.status = Some(format!("pid {}: no such process", pid_list(&gone)));
    }
    app.set_wall_offset(realtime_ns() as i128 - monotonic_ns() as i128);
    let mut usage = Sampler::new(Mounts::of_this_machine());
    app.stats.bpf = session.stats().bpf.clone();
    session.bootstrap(|m, u| app.update(m, u))?;
    // A container not there yet may start while `top` runs, as `record --container` waits
    // for it: said in the status line until it shows.
    if let Some(q) = &opts.select.container {
        if !q.matches(session.model()).iter().any(|g| g.is_live()) {
            app.wait_for_selection(format!(
                "no group named {:?} now (a label, a name, a runtime id or its first {}+ \
                 characters): shown once it starts",
                q.as_str(),
                nswatch::select::MIN_ID_PREFIX
            ));
        }
    }
    app.refresh(session.model(), host_pid);
    let mut term = Term::new()?;
    let winch = winch_flag()?;
    let mut cpu = CpuMeter::new();
    let mut last_refresh = Instant::now();
    loop {
        session.poll(opts.frame, |m, u| app.update(m, u))?;
        let st = session.stats();
        app.stats.lost_records = st.lost_records;
        app.stats.bpf_lost = st.bpf_lost;
        pump_keys(&mut app, Duration::ZERO, &winch)?;
        if app.quit || stop.load(Ordering::Relaxed) {
            break;
        }
        if app.advance(monotonic_ns()) {
            app.stats.cpu_pct = cpu.sample();
            app.sample_usage(&mut usage);
        }
        if app.model_changed() && last_refresh.elapsed() >= opts.refresh {
            app.refresh(session.model(), host_pid);
            last_refresh = Instant::now();
        }
        if app.take_redraw() {
            term.draw(&app)?;
        }
    }
    Ok(())
}

/// The pids of `pids` that no process has now.
fn gone_pids(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|p| !Path::new(&format!("/proc/{p}")).exists())
        .collect()
}

/// `pids` as a comma list.
fn pid_list(pids: &[u32]) -> String {
    let v: Vec<String> = pids.iter().map(u32::to_string).collect();
    v.join(",")
}

/// Raised inside the replay's read loop to stop it.
#[derive(Debug)]
struct Quit;

impl std::fmt::Display for Quit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("quit")
    }
}

impl std::error::Error for Quit {}

/// Recorded time to wall time, at a speed, stopped while paused.
struct Clock {
    speed: Option<f64>,
    /// (first recorded time, wall time it plays at).
    base: Option<(u64, Instant)>,
    paused_at: Option<Instant>,
}

impl Clock {
    /// When `t` (recorded ns) is due; `None`: now (no pacing).
    fn due(&mut self, t: u64) -> Option<Instant> {
        let speed = self.speed?;
        let (t0, w0) = *self.base.get_or_insert((t, Instant::now()));
        let dt = t.saturating_sub(t0) as f64 / speed;
        Some(w0 + Duration::from_secs_f64(dt / 1e9))
    }

    /// The recorded time playing now.
    fn now(&self) -> Option<u64> {
        let (speed, (t0, w0)) = (self.speed?, self.base?);
        let wall = self.paused_at.unwrap_or_else(Instant::now);
        Some(t0 + (wall.saturating_duration_since(w0).as_secs_f64() * speed * 1e9) as u64)
    }

    fn set_paused(&mut self, paused: bool) {
        match (paused, self.paused_at) {
            (true, None) => self.paused_at = Some(Instant::now()),
            (false, Some(at)) => {
                self.paused_at = None;
                if let Some((_, w0)) = &mut self.base {
                    *w0 += at.elapsed();
                }
            }
            _ => {}
        }
    }
}

/// The replay's UI side: everything but the model, which the read loop owns.
struct Player {
    term: Term,
    app: App,
    clock: Clock,
    stop: Arc<AtomicBool>,
    winch: Arc<AtomicBool>,
    frame: Duration,
    refresh: Duration,
    last_refresh: Instant,
    last_pump: Instant,
    cpu: CpuMeter,
}

impl Player {
    /// Keys, rates, snapshot and drawing, once; waits at most `wait` for a key.
    fn step(&mut self, model: &Attributor, wait: Duration) -> Result<()> {
        pump_keys(&mut self.app, wait, &self.winch)?;
        self.last_pump = Instant::now();
        if self.app.quit || self.stop.load(Ordering::Relaxed) {
            return Err(Quit.into());
        }
        self.clock.set_paused(self.app.paused());
        if let Some(now) = self.clock.now() {
            if self.app.advance(now) {
                self.app.stats.cpu_pct = self.cpu.sample();
            }
        }
        if self.app.model_changed() && self.last_refresh.elapsed() >= self.refresh {
            self.app.refresh(model, 1);
            self.last_refresh = Instant::now();
        }
        if self.app.take_redraw() {
            self.term.draw(&self.app)?;
        }
        Ok(())
    }

    /// Waits, drawing and reading keys, until recorded time `t` is due (at once when
    /// playing as fast as possible, but still a frame at a time for keys and drawing).
    fn until(&mut self, model: &Attributor, t: u64) -> Result<()> {
        loop {
            let due = self.clock.due(t);
            let now = Instant::now();
            let paused = self.app.paused();
            match due {
                Some(due) if paused || due > now => {
                    let wait = if paused {
                        self.frame
                    } else {
                        (due - now).min(self.frame)
                    };
                    self.step(model, wait)?;
                }
                _ if paused => self.step(model, self.frame)?,
                _ => {
                    if self.last_pump.elapsed() >= self.frame {
                        self.step(model, Duration::ZERO)?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Applies one event to the model and the app; playing as fast as possible, the
    /// rates follow the recorded clock.
    fn feed(&mut self, model: &mut Attributor, ev: &Event<'_>, names: &mut Announcements) {
        self.app.observe_named(model, ev, names);
        if self.clock.speed.is_none() {
            if let Some(t) = ev.time_ns.filter(|&t| t > 0) {
                self.app.advance(t);
            }
        }
    }
}

/// True when `head` (a file's first bytes) is perf.data's magic, either byte order;
/// anything else is read as NDJSON.
fn is_perf_data(head: &[u8]) -> bool {
    head.starts_with(b"PERFILE2") || head.starts_with(b"2ELIFREP")
}

/// Raised inside [`prescan`]'s read loop once all that was asked for was seen.
#[derive(Debug)]
struct AllSeen;

impl std::fmt::Display for AllSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("all seen")
    }
}

impl std::error::Error for AllSeen {}

/// Reads the recording at `path` through a model of its own, as the replay will, and
/// marks in `select` what it finds (`-p`, `--container`), stopping as soon as all of it
/// is found: a large file is read whole only when something is missing. False when the
/// file could not be read to its end (the replay then shows why in its status line).
fn prescan(path: &Path, perf: bool, select: &mut Selection) -> bool {
    let mut model = Attributor::learning();
    let mut names = Announcements::new();
    let mut feed = |model: &mut Attributor, names: &mut Announcements, ev: &Event<'_>| {
        let group = names.observe(model, ev);
        drop(model.take_changes());
        // As the app finds a syscall's group: its task's.
        let group = match &ev.body {
            nswatch::event::Body::NsSyscall { call } => {
                group.or_else(|| model.current(call.tid).map(|iv| iv.group))
            }
            _ => group,
        };
        select.keep(model, ev, group);
        if select.unseen_pids().is_empty() && !select.container_unseen() {
            Err(anyhow::Error::new(AllSeen))
        } else {
            Ok(())
        }
    };
    let r: Result<()> = if perf {
        (|| -> Result<()> {
            let mut data = PerfData::open(path)?;
            let mut builder = EventBuilder::new();
            data.for_each(Order::Time, |dec, view| -> Result<()> {
                if let Some(ev) = builder.decode(dec, view)? {
                    feed(&mut model, &mut names, &ev)?;
                }
                Ok(())
            })?;
            Ok(())
        })()
    } else {
        (|| -> Result<()> {
            let file = File::open(path)?;
            let mut lines = Lines::new(BufReader::with_capacity(1 << 16, file));
            let mut reader = JsonReader::new();
            while let Some(line) = lines.next_line()? {
                if line.text.trim().is_empty() {
                    continue;
                }
                match reader.read(line.text) {
                    Ok(Some(ev)) => feed(&mut model, &mut names, &ev)?,
                    Ok(None) => {
                        names.read_line(&mut model, line.text);
                        drop(model.take_changes());
                    }
                    Err(_) if line.is_cut_off() => break,
                    Err(e) => anyhow::bail!("line {}: {e}", line.number),
                }
            }
            Ok(())
        })()
    };
    match r {
        Ok(()) => true,
        Err(e) => e.is::<AllSeen>(),
    }
}

/// Plays a recording (perf.data or NDJSON) through the UI until `q`.
pub fn run_replay(opts: ReplayOptions) -> Result<()> {
    let stop = stop_flag()?;
    let name = opts.file.display().to_string();
    let mut file = File::open(&opts.file).with_context(|| name.clone())?;
    let mut head = [0u8; 8];
    let n = file.read(&mut head).with_context(|| name.clone())?;
    let perf = is_perf_data(&head[..n]);
    // Opened before the terminal is taken, so that a bad file is told plainly.
    let mut data = if perf {
        Some(PerfData::open(&opts.file).with_context(|| name.clone())?)
    } else {
        None
    };
    // What the selection asks for and the recording lacks is said before the screen
    // opens, as `report` says it: none of it is an error, some of it a status line.
    let mut missing = None;
    if !opts.select.is_all() {
        let mut probe = opts.select.clone();
        if prescan(&opts.file, perf, &mut probe) {
            if let Some((what, none)) = probe.unseen_report() {
                if none {
                    anyhow::bail!("{name}: {what}");
                }
                missing = Some(what);
            }
        }
    }
    let source = Source::Replay {
        name: name.clone(),
        speed: opts.speed,
    };
    let mut app = App::new(source, opts.export_dir);
    app.all = opts.all;
    app.set_selection(opts.select);
    app.status = missing;
    // perf's clock data ties the recording's clock to the wall clock; an NDJSON recording
    // has no such tie, and its times are shown relative.
    if let Some(f) = data.as_ref().map(|d| &d.info().features) {
        if let (Some(tod), Some(r)) = (f.clock_tod_ns, f.clock_ref_ns) {
            app.set_wall_offset(tod as i128 - r as i128);
        }
    }
    app.stats.bpf = if perf { "not recorded" } else { "as recorded" }.to_string();
    let mut player = Player {
        term: Term::new()?,
        app,
        clock: Clock {
            speed: opts.speed,
            base: None,
            paused_at: None,
        },
        stop,
        winch: winch_flag()?,
        frame: opts.frame,
        refresh: opts.refresh,
        last_refresh: Instant::now(),
        last_pump: Instant::now(),
        cpu: CpuMeter::new(),
    };
    let mut model = Attributor::learning();
    // An NDJSON recording's container_start/rename lines name the groups it replays.
    let mut names = Announcements::new();
    let play = |player: &mut Player,
                model: &mut Attributor,
                names: &mut Announcements,
                ev: &Event<'_>|
     -> Result<()> {
        // Time 0 is perf's stamp on the tasks it found at start: not a moment to wait for.
        if let Some(t) = ev.time_ns.filter(|&t| t > 0) {
            player.until(model, t)?;
        }
        player.feed(model, ev, names);
        Ok(())
    };
    let r: Result<()> = match &mut data {
        Some(data) => {
            let mut builder = EventBuilder::new();
            data.for_each(Order::Time, |dec, view| -> Result<()> {
                if let Some(ev) = builder.decode(dec, view)? {
                    play(&mut player, &mut model, &mut names, &ev)?;
                }
                Ok(())
            })
            .map(drop)
        }
        // A `?` inside returns from the closure, not from `run_replay`: every error of the
        // reading, a quit included, ends in `r`.
        None => (|| -> Result<()> {
            let size = file.metadata().map_or(0, |m| m.len());
            file.seek(SeekFrom::Start(0))?;
            let mut lines = Lines::new(BufReader::with_capacity(1 << 16, &mut file));
            let mut reader = JsonReader::new();
            while let Some(line) = lines.next_line()? {
                let read = line.offset + line.text.len() as u64;
                if size > 0 {
                    player.app.stats.progress_pct = Some(read as f64 * 100.0 / size as f64);
                }
                if line.text.trim().is_empty() {
                    continue;
                }
                match reader.read(line.text) {
                    Ok(Some(ev)) => play(&mut player, &mut model, &mut names, &ev)?,
                    Ok(None) => player.app.announce(&mut model, &mut names, line.text),
                    Err(_) if line.is_cut_off() => {
                        player.app.status = Some(format!(
                            "line {} is cut off at the end of the file, ignored",
                            line.number
                        ));
                        break;
                    }
                    Err(e) => {
                        anyhow::bail!("line {} (offset {:#x}): {e}", line.number, line.offset)
                    }
                }
            }
            Ok(())
        })(),
    };
    match r {
        Err(e) if e.is::<Quit>() => return Ok(()),
        Err(e) => player.app.status = Some(format!("read stopped: {e:#}")),
        Ok(()) => {}
    }
    player.app.end_of_input(&mut model);
    player.app.stats.finished = true;
    player.app.refresh(&model, 1);
    player.app.touch();
    loop {
        match player.step(&model, player.frame) {
            Err(e) if e.is::<Quit>() => return Ok(()),
            r => r?,
        }
    }
}
