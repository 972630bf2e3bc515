//! `nswatch report`: the namespace story of a perf.data file.

use anyhow::{Context, Result};
use clap::ValueEnum;
use nswatch::event::JsonReader;
use nswatch::event::{EventReceiver, EventSender, JsonWriter, SentEvent};
use nswatch::model::json::add_wall_times;
use nswatch::model::json::{write_change, write_labeled, Announcements};
use nswatch::model::recorded::CgroupNames;
use nswatch::model::{Attributor, Change, Group, GroupId, EXIT_TAIL_NS};
use nswatch::ndjson;
use nswatch::out_file::create_output;
use nswatch::perf_data::split::Consumer;
use nswatch::perf_data::{FileInfo, Order, PerfData};
use nswatch::report::Times;
use nswatch::report::{write_groups, Story};
use nswatch::select::Selection;
use nswatch::units::WallClock;

use super::record::TimeArg;
use nswatch::session::{hand_on, Update};
use nswatch::text::escape;
use nswatch::{Body, Event, EventBuilder, Record};
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::input::{Input, InputArgs};

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One line per namespace change of a task, then the namespace sets and their tasks.
    Text,
    /// The event stream, one JSON object per record (schema version 1); with `--by
    /// container`, one object per container.
    Ndjson,
    /// With `--by container`: one JSON document (totals and the containers).
    Json,
    /// With `--by container` and `-o FILE`: a gzipped pprof profile.proto, every sample
    /// labelled with its container (`go tool pprof`, Pyroscope, Parca, Grafana).
    Pprof,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum By {
    /// Samples counted per container (group), like `perf report --sort` with a container key.
    Container,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    /// By timestamp, as `perf script` prints them.
    Time,
    /// As they lie in the file (per-CPU runs), without buffering.
    File,
}

/// Arguments of `nswatch report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Write the report to FILE instead of standard output: created 0600, a file already
    /// there moved to FILE.old, a symbolic link not followed.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Record order.
    #[arg(long, value_enum, default_value = "time")]
    order: OrderArg,
    /// Skip record types this build does not know instead of stopping on them (perf stops).
    #[arg(long)]
    skip_unknown: bool,
    /// Count the samples (`perf record -a -g --namespaces`) per container instead of
    /// telling the namespace story.
    #[arg(long, value_enum)]
    by: Option<By>,
    /// With `--by container`: per-container folded stacks (`container;comm;frame;… count`,
    /// root first) for flamegraph.pl or inferno-flamegraph.
    #[arg(long, requires = "by")]
    folded: bool,
    /// Only the events of these process ids (comma list, repeatable), and the groups
    /// they started.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_delimiter = ',')]
    pids: Vec<u32>,
    /// Only the events of this group and the containers nested in it: its label
    /// (ct-4026532300), name, runtime id, or the id's first 12 or more characters.
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// Times as the recording's clock (mono, as perf script prints them), or as wall-clock
    /// time (wall: RFC 3339 in the text, a "wall_time" field in NDJSON; from perf's clock
    /// data where the file has it, else for a recording made since this machine booted).
    #[arg(long, value_enum, default_value = "mono")]
    time: TimeArg,
    /// List the groups of kernel threads alone too (kdevtmpfs's mount namespace), which
    /// are counted with the host.
    #[arg(short, long)]
    all: bool,
    /// Threads for the event stream and the text story of a file: 1 reads on this thread
    /// alone (best on a machine whose other CPUs are busy); 0 (the default) uses a second
    /// thread when the machine has a second CPU and the file's records take 1 MiB or
    /// more. Standard input is always read on one.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// The size of a file's records from which `report` reads it on two threads by default:
/// below it, starting the second thread and handing it the events cost more than the
/// thread saves (a 0.86 MB capture reads 0.2 ms faster on one thread, a 1.4 MB one as fast
/// on either, a 2 MB one 0.3 ms faster on two).
const TWO_THREADS_FROM: u64 = 1 << 20;

/// The file's header line, its fields escaped ([`escape`]): they come from the machine
/// that recorded it.
fn describe(info: &FileInfo) -> String {
    let f = &info.features;
    let mut parts = vec![if info.pipe { "pipe mode" } else { "file mode" }.to_string()];
    if let Some(h) = &f.hostname {
        parts.push(format!("host {h}"));
    }
    if let Some(r) = &f.os_release {
        parts.push(format!("linux {r}"));
    }
    if let Some(n) = f.nr_cpus_online {
        parts.push(format!("{n} cpus"));
    }
    if let Some(c) = &f.cmdline {
        parts.push(format!("cmdline: {}", c.join(" ")));
    }
    escape(&parts.join(", ")).into_owned()
}

/// Writes `ev` labelled with its group, with the group events it caused in the order
/// [`hand_on`] gives (a reader meets a container's start before any event that names it).
fn write_with_changes(
    model: &mut Attributor,
    json: &mut JsonWriter,
    ev: &Event<'_>,
    g: Option<GroupId>,
    pending: &mut Vec<Change>,
    buf: &mut Vec<u8>,
) {
    hand_on(model, pending, ev, g, |_, _| {}, &mut |m, u| match u {
        Update::Event { event, group } => {
            write_labeled(json, event, group.map(|g| m.group(g)), buf)
        }
        Update::Group(c) => write_change(m, c, buf),
    });
}

/// Where the report goes (standard output, or the file of `-o`), and how its times are
/// written (`--time`).
pub struct Dest(Option<File>, Times);

impl Dest {
    /// Opens `-o FILE` through [`create_output`] (FILE.old kept, 0600, no link followed).
    pub fn open(path: Option<&Path>) -> Result<Dest> {
        Ok(Dest(
            match path {
                Some(p) => Some(create_output(p)?.file),
                None => None,
            },
            Times::default(),
        ))
    }

    /// How times are written.
    pub fn times(&self) -> Times {
        self.1
    }

    /// A writer to it; writers made one after the other write one after the other (a
    /// file's clones share its offset).
    pub fn writer(&self) -> io::Result<Box<dyn Write + Send>> {
        Ok(match &self.0 {
            Some(f) => Box::new(f.try_clone()?),
            None => Box::new(io::stdout()),
        })
    }
}

/// Runs `nswatch report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let path = args.input.path()?;
    let name = path.display().to_string();
    let input = super::input::open(path, true)?;
    // pprof is binary: its file is opened where the profile is written, and nothing else
    // goes to it.
    let text_out = match args.format {
        Format::Pprof => None,
        _ => args.output.as_deref(),
    };
    let mut dest = Dest::open(text_out)?;
    if args.time == TimeArg::Wall {
        let recorded = match &input {
            Input::Perf(data) => {
                let f = &data.info().features;
                f.clock_tod_ns.zip(f.clock_ref_ns)
            }
            Input::Ndjson(_) => None,
        };
        // perf's clock data (perf record -k mono writes it) ties its clock to the wall
        // clock; else the times are taken as this machine's CLOCK_MONOTONIC since boot.
        dest.1 = Times(Some(match recorded {
            Some((tod, at)) => WallClock::with_offset(tod as i128 - at as i128),
            None => WallClock::now(),
        }));
    }
    let mut select = Selection::new(args.pids.clone(), Vec::new(), args.container.as_deref());
    let r = match input {
        Input::Perf(mut data) => from_perf(args, &dest, &name, &mut data, &mut select),
        Input::Ndjson(lines) => from_ndjson(args, &dest, &name, lines, &mut select),
    };
    let r = r.with_context(|| name.clone());
    if r.is_ok() {
        if let Some((what, none)) = select.unseen_report() {
            if none {
                anyhow::bail!("{}: {what}", escape(&name));
            }
            super::note!("nswatch: {}: {what}", escape(&name));
        }
    }
    r
}

/// `report` of a perf.data file.
fn from_perf(
    args: &ReportArgs,
    dest: &Dest,
    name: &str,
    data: &mut PerfData,
    select: &mut Selection,
) -> Result<()> {
    data.decoder_mut().set_skip_unknown(args.skip_unknown);
    let order = match args.order {
        OrderArg::Time => Order::Time,
        OrderArg::File => Order::File,
    };
    if args.by == Some(By::Container) {
        let mut out = BufWriter::with_capacity(1 << 16, dest.writer()?);
        let r = by_container(args, name, data, order, select, &mut out);
        out.flush()?;
        warn_order(name, data);
        return r;
    }
    if let Format::Json | Format::Pprof = args.format {
        anyhow::bail!(
            "--format json and pprof go with --by container; the event stream is --format ndjson"
        )
    }
    // A mapped file is read on two threads where there are two CPUs (a stream, from a
    // pipe, on one: its records are not addressable after they are read).
    // A sample's cgroup names its group where the record is decoded, on this thread.
    let cgroups = data
        .decoder()
        .attrs()
        .any(|a| a.sample_type & nswatch::attr::sample::CGROUP != 0);
    // A selection is decided on the model's view, on the reading thread.
    let two = data.is_mapped()
        && select.is_all()
        && !(cgroups && matches!(args.format, Format::Text))
        && match args.threads {
            0 => {
                let (start, end) = data.info().data;
                end.saturating_sub(start) >= TWO_THREADS_FROM
                    && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
            }
            n => n >= 2,
        };
    let result = match (args.format, two) {
        (Format::Ndjson, true) => ndjson_split(dest, data, order),
        (Format::Ndjson, false) => ndjson(dest, data, order, select),
        (_, true) => text_split(dest, args.all, name, data, order),
        (_, false) => text(dest, args.all, name, data, order, select),
    };
    warn_order(name, data);
    result
}

/// Says once, after the read, how many records went out of time order.
pub(crate) fn warn_order(name: &str, data: &PerfData) {
    if let Some(w) = data.order_warning() {
        super::note!("nswatch: {}: {w}", escape(name));
    }
}

/// The model for a file read whole in time order. Ended tasks are kept only for their exit
/// tail ([`EXIT_TAIL_NS`]): a record of a task that comes later in time order can only be
/// a sample taken while the task finished exiting (or share its EXIT's timestamp), so
/// keeping them longer would answer nothing more, and their queue would be memory traffic
/// on every task.
fn file_model() -> Attributor {
    let mut m = Attributor::learning();
    m.set_grace_ns(EXIT_TAIL_NS);
    m
}

/// The NDJSON lines of `report`: the model labels each event, and the lines are built in
/// one buffer and written in large pieces; a line is never split by an error, so what was
/// written is always whole lines.
struct Lines<W: Write> {
    out: W,
    buf: Vec<u8>,
    json: JsonWriter,
    model: Attributor,
    pending: Vec<Change>,
    /// An NDJSON input's own container_start/rename lines, naming the groups.
    names: Announcements,
    /// `--pid`, `--container`: which events and group changes are written.
    select: Selection,
    /// `--time wall`.
    wall: Option<WallClock>,
}

impl<W: Write> Lines<W> {
    fn new(out: W, select: Selection, times: Times) -> Self {
        Lines {
            select,
            wall: times.0,
            out,
            buf: Vec::with_capacity(1 << 17),
            json: JsonWriter::new(),
            model: file_model(),
            pending: Vec::new(),
            names: Announcements::new(),
        }
    }

    #[inline(always)]
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        self.event_at(ev, None)
    }

    /// [`Lines::event`] for an event of an [`EventReceiver`], with its set's index there
    /// ([`EventReceiver::receive_at`]).
    #[inline(always)]
    fn event_at(&mut self, ev: &Event<'_>, set_index: Option<u32>) -> io::Result<()> {
        let from = self.buf.len();
        let g = self.names.observe_at(&mut self.model, ev, set_index);
        let Lines {
            model,
            json,
            pending,
            buf,
            select,
            ..
        } = self;
        let changes = model.take_changes();
        if !select.is_all() {
            pending.extend(changes);
            let keep = select.keep(model, ev, g);
            let select = &*select;
            hand_on(model, pending, ev, g, |_, _| {}, &mut |m, u| match u {
                Update::Event { event, group } if keep => {
                    write_labeled(json, event, group.map(|g| m.group(g)), buf)
                }
                Update::Event { .. } => {}
                Update::Group(c) if select.keep_group(m, c.group) => write_change(m, c, buf),
                Update::Group(_) => {}
            });
        } else if changes.len() == 0 {
            // Most events change no group: what `hand_on` does then, without its steps.
            drop(changes);
            json.write_labeled_at(ev, g.map(|g| model.group(g)), set_index, buf);
        } else {
            pending.extend(changes);
            write_with_changes(model, json, ev, g, pending, buf);
        }
        if let Some(w) = &self.wall {
            add_wall_times(&mut self.buf, from, w);
        }
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// An NDJSON input's line that is no event: an announcement names a group, and a
    /// rename it makes is written as the model's own.
    fn announce(&mut self, line: &str) {
        let from = self.buf.len();
        if self.names.read_line(&mut self.model, line) {
            let changes: Vec<Change> = self.model.take_changes().collect();
            for c in changes
                .iter()
                .filter(|c| self.select.keep_group(&self.model, c.group))
            {
                write_change(&self.model, c, &mut self.buf);
            }
        }
        if let Some(w) = &self.wall {
            add_wall_times(&mut self.buf, from, w);
        }
    }

    /// Writes what is left; hands back the selection, which knows what it found.
    fn finish(mut self) -> io::Result<Selection> {
        // Groups still without a task at the end are declared ended.
        self.model.finish();
        let from = self.buf.len();
        let changes: Vec<Change> = self.model.take_changes().collect();
        for c in changes
            .iter()
            .filter(|c| self.select.keep_group(&self.model, c.group))
        {
            write_change(&self.model, c, &mut self.buf);
        }
        if let Some(w) = &self.wall {
            add_wall_times(&mut self.buf, from, w);
        }
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.select)
    }
}

/// `report --format ndjson` on this thread.
fn ndjson(dest: &Dest, data: &mut PerfData, order: Order, select: &mut Selection) -> Result<()> {
    let mut builder = EventBuilder::new();
    let mut lines = Lines::new(dest.writer()?, std::mem::take(select), dest.times());
    let r = data.for_each(order, |dec, view| -> Result<()> {
        if let Some(ev) = builder.decode(dec, view)? {
            lines.event(&ev)?;
        }
        Ok(())
    });
    *select = lines.finish()?;
    r.map(drop)
}

/// `report --format ndjson` on two threads. This one reads in order, decodes and makes
/// the events; the other keeps the command names, runs the model and writes the lines.
/// Events cross small ([`SentEvent`]), and each record is decoded once.
fn ndjson_split(dest: &Dest, data: &mut PerfData, order: Order) -> Result<()> {
    let write = |events: Consumer<'_, SentEvent<'_>>| -> Result<()> {
        let mut lines = Lines::new(dest.writer()?, Selection::default(), dest.times());
        let mut receiver = EventReceiver::new();
        let r = events.for_each(|sent| -> Result<()> {
            receiver
                .receive_at(sent, |ev, set| lines.event_at(ev, set))
                .transpose()?;
            Ok(())
        });
        lines.finish()?;
        r
    };
    let mut sender = EventSender::new();
    let (read, written) = data
        .for_each_split(order, make_events(&mut sender), write)
        .context("not a mapped file")?;
    // The writer's error came first: the reader only stopped because the writer did.
    written?;
    read.map(drop)
}

/// The reading thread's part of a report on two threads: each record's event, made once.
fn make_events<'b, 'm>(
    sender: &'b mut EventSender,
) -> impl FnMut(&nswatch::Decoder, &nswatch::RecordView<'m>, &mut Vec<SentEvent<'m>>) -> Result<()> + 'b
{
    move |dec, view, events| Ok(sender.send_record(dec, view, events)?)
}

/// `report` (text) on this thread.
fn text(
    dest: &Dest,
    all: bool,
    name: &str,
    data: &mut PerfData,
    order: Order,
    select: &mut Selection,
) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, dest.writer()?);
    if !data.info().pipe {
        writeln!(out, "# {}: {}", escape(name), describe(data.info()))?;
    }
    let mut builder = EventBuilder::new();
    let mut story = Story::new();
    story.set_times(dest.times());
    let mut model = file_model();
    let mut cgroups = CgroupNames::new();
    let r = data.for_each(order, |dec, view| -> Result<()> {
        let (rec, id) = dec.decode(view)?;
        let sample_cgroup = match &rec {
            Record::Sample(s) => s.cgroup,
            _ => None,
        };
        if let Some(ev) = builder.event(&rec, &id) {
            let g = model.observe(&ev);
            story.add_shown(&ev, select.keep(&model, &ev, g));
            story.write_changes(&mut out)?;
            match (&ev.body, sample_cgroup, ev.pid, ev.tid) {
                (Body::Cgroup { id, path }, ..) => cgroups.cgroup(*id, path),
                (Body::Sample { .. }, Some(cg), Some(pid), Some(tid)) => {
                    let time = ev.time_ns.unwrap_or(model.now_ns());
                    cgroups.sample(&mut model, pid, tid, time, cg);
                }
                _ => {}
            }
            model.take_changes().for_each(drop);
        }
        Ok(())
    });
    let keep = |g: &Group| select.keep_group(&model, g.id);
    let end = (all, &keep as &dyn Fn(&Group) -> bool);
    finish_text(
        name,
        end,
        data.info(),
        &mut story,
        &model,
        r.map(drop),
        &mut out,
    )
}

/// `report` (text) on two threads: this one reads in order, decodes and makes the events,
/// and hands them to the other, which tells the story.
fn text_split(dest: &Dest, all: bool, name: &str, data: &mut PerfData, order: Order) -> Result<()> {
    if !data.info().pipe {
        let mut out = dest.writer()?;
        writeln!(out, "# {}: {}", escape(name), describe(data.info()))?;
        out.flush()?;
    }
    let tell = |events: Consumer<'_, SentEvent<'_>>| {
        let mut out = match dest.writer() {
            Ok(w) => BufWriter::with_capacity(1 << 16, w),
            Err(e) => return ((Story::new(), file_model()), Err(e.into())),
        };
        let mut story = Story::new();
        story.set_times(dest.times());
        let mut model = file_model();
        let mut receiver = EventReceiver::new();
        let r = events.for_each(|sent| -> Result<()> {
            receiver.receive_at(sent, |ev, set| {
                story.add_at(ev, set);
                model.observe_at(ev, set);
                model.take_changes().for_each(drop);
            });
            story.write_changes(&mut out)?;
            Ok(())
        });
        let flushed = out.flush();
        ((story, model), r.and(flushed.map_err(Into::into)))
    };
    let mut sender = EventSender::new();
    let (read, ((mut story, model), told)) = data
        .for_each_split(order, make_events(&mut sender), tell)
        .context("not a mapped file")?;
    // The teller's error came first: the reader only stopped because the teller did.
    let r = told.and(read.map(drop));
    let mut out = BufWriter::with_capacity(1 << 16, dest.writer()?);
    finish_text(
        name,
        (all, &|_| true),
        data.info(),
        &mut story,
        &model,
        r,
        &mut out,
    )
}

/// The end of the text story: the sets and their tasks, after what was read.
/// `groups`: `--all`, and which groups the selection keeps.
fn finish_text(
    name: &str,
    groups: (bool, &dyn Fn(&Group) -> bool),
    info: &FileInfo,
    story: &mut Story,
    model: &Attributor,
    r: Result<()>,
    out: &mut impl Write,
) -> Result<()> {
    if info.pipe {
        writeln!(out, "# {}: {}", escape(name), describe(info))?;
    }
    // Even after a damaged record, what was read is told, marked as such.
    if r.is_err() {
        writeln!(
            out,
            "# incomplete: the input is damaged; what was read before:"
        )?;
    }
    story.finish(out)?;
    write_groups(model, groups.0, groups.1, &story.times(), out)?;
    out.flush()?;
    r
}

/// `report` of an NDJSON recording: the text story or the event stream, with the groups
/// named as the recording's container_start/rename lines announced them.
fn from_ndjson(
    args: &ReportArgs,
    dest: &Dest,
    name: &str,
    input: Box<dyn BufRead>,
    select: &mut Selection,
) -> Result<()> {
    if args.by.is_some() {
        anyhow::bail!("--by container reads a perf.data file (NDJSON keeps no samples' stacks)");
    }
    let mut reader = JsonReader::new();
    let mut input = ndjson::Lines::new(input);
    // Each line in turn; a line cut off at the end (a recording killed mid-write) ends
    // the input, as in `export`.
    let mut each = |f: &mut dyn FnMut(Option<&Event<'_>>, &str) -> Result<()>| -> Result<()> {
        while let Some(line) = input.next_line()? {
            let (text, number, offset) = (line.text, line.number, line.offset);
            if text.trim().is_empty() {
                continue;
            }
            match reader.read(text) {
                Ok(ev) => f(ev.as_ref(), text)?,
                Err(e) if line.is_cut_off() => {
                    super::note!(
                        "nswatch: {}: line {number} (offset {offset:#x}) is cut off at the end \
                         of the input, ignored ({})",
                        escape(name),
                        escape(&e.to_string())
                    );
                    return Ok(());
                }
                Err(e) => anyhow::bail!("at line {number} (offset {offset:#x}): {e}"),
            }
        }
        Ok(())
    };
    match args.format {
        Format::Json | Format::Pprof => {
            anyhow::bail!(
                "--format json and pprof go with --by container; the event stream is --format ndjson"
            )
        }
        Format::Ndjson => {
            let mut lines = Lines::new(dest.writer()?, std::mem::take(select), dest.times());
            let r = each(&mut |ev, line| {
                match ev {
                    Some(ev) => lines.event(ev)?,
                    // The model writes the group changes again, named as announced.
                    None => lines.announce(line),
                }
                Ok(())
            });
            *select = lines.finish()?;
            r
        }
        Format::Text => {
            let mut out = BufWriter::with_capacity(1 << 16, dest.writer()?);
            writeln!(out, "# {}: NDJSON events", escape(name))?;
            let mut story = Story::new();
            story.set_times(dest.times());
            let mut model = file_model();
            let mut names = Announcements::new();
            let r = each(&mut |ev, line| {
                match ev {
                    Some(ev) => {
                        let g = names.observe(&mut model, ev);
                        story.add_shown(ev, select.keep(&model, ev, g));
                        story.write_changes(&mut out)?;
                    }
                    None => {
                        names.read_line(&mut model, line);
                    }
                }
                model.take_changes().for_each(drop);
                Ok(())
            });
            if r.is_err() {
                writeln!(
                    out,
                    "# incomplete: the input is damaged; what was read before:"
                )?;
            }
            story.finish(&mut out)?;
            write_groups(
                &model,
                args.all,
                &|g| select.keep_group(&model, g.id),
                &dest.times(),
                &mut out,
            )?;
            out.flush()?;
            r
        }
    }
}

/// What the `--by container` rows need of a group, taken from the model when it is read.
struct GroupInfo {
    label: String,
    kind: &'static str,
    name: String,
    runtime: Option<String>,
    runtime_id: Option<String>,
}

fn group_info(model: &Attributor, g: Option<GroupId>) -> GroupInfo {
    match g {
        Some(g) => {
            let g = model.group(g);
            GroupInfo {
                label: g.label().to_string(),
                kind: g.kind.name(),
                name: g.name().to_string(),
                runtime: g.naming().runtime.clone(),
                runtime_id: g.naming().runtime_id.clone(),
            }
        }
        None => GroupInfo {
            label: "[unknown]".to_string(),
            kind: "-",
            name: "task never seen".to_string(),
            runtime: None,
            runtime_id: None,
        },
    }
}

/// `report --by container [--folded]`: every event feeds the model in time order, so each
/// sample is counted for the group its task was in when it was taken.
fn by_container(
    args: &ReportArgs,
    name: &str,
    data: &mut PerfData,
    order: Order,
    select: &mut Selection,
    out: &mut impl Write,
) -> Result<()> {
    use nswatch::profile::{ContainerProfile, PeriodUnit};
    use nswatch::symbols::{build_id_cache_dirs, recorded_here, Kallsyms, Symbolizer};

    let pprof = matches!(args.format, Format::Pprof);
    let pprof_out = match (pprof, &args.output) {
        (true, Some(p)) => Some(nswatch::out_file::create_output(p)?.file),
        (true, None) => anyhow::bail!("--format pprof writes a binary file: give -o FILE"),
        (false, _) => None,
    };
    if pprof && args.folded {
        anyhow::bail!("--folded and --format pprof are two outputs of the stacks: choose one");
    }
    // Both want every sample's frames named.
    let stacks = args.folded || pprof;

    let mut builder = EventBuilder::new();
    let mut model = file_model();
    let mut profile = ContainerProfile::new();
    let mut sym = Symbolizer::new();
    let info = data.info().clone();
    sym.set_build_id_cache(build_id_cache_dirs());
    sym.add_recorded_build_ids(&info.features.build_ids);
    if stacks
        && recorded_here(
            info.features.hostname.as_deref(),
            info.features.os_release.as_deref(),
        )
    {
        sym.set_kallsyms_reading(std::thread::spawn(Kallsyms::read));
        // The processes may still run: their files are read through their own roots.
        sym.set_process_roots(true);
    }
    let mut frames = Vec::new();
    // A group's label as a name id, made once: a group keeps its label for life.
    let mut labels: hashbrown::HashMap<Option<GroupId>, u32> = hashbrown::HashMap::new();
    let r = data.for_each(order, |dec, view| -> Result<()> {
        let (rec, id) = dec.decode(view)?;
        if stacks {
            sym.observe(&rec);
        }
        let is_sample = matches!(rec, Record::Sample(_));
        let Some(ev) = builder.event(&rec, &id) else {
            return Ok(());
        };
        if !is_sample {
            model.observe(&ev);
            model.take_changes().for_each(drop);
            return Ok(());
        }
        // The task the sample was taken in, at the sample's time: its group and name from
        // one lookup. The idle task (pid 0, "swapper") has no NAMESPACES record; it runs
        // in the initial namespaces, so its samples are the host's.
        let time = ev.time_ns.unwrap_or(model.now_ns());
        model.advance(time);
        let (pid, tid) = (ev.pid.unwrap_or(0), ev.tid.unwrap_or(0));
        let owner = ev
            .tid
            .and_then(|t| model.task_at(ev.pid.unwrap_or(t), t, time));
        let idle = ev.pid == Some(0) && ev.tid == Some(0);
        let g = owner
            .map(|(_, iv)| iv.group)
            .or(idle.then_some(GroupId::HOST));
        if !select.keep(&model, &ev, g) {
            return Ok(());
        }
        let comm = match owner {
            Some((t, _)) if !t.comm().is_empty() => t.comm().to_string(),
            _ if tid == 0 => "swapper".to_string(),
            _ => format!("[tid {tid}]"),
        };
        let Body::Sample {
            ip,
            period,
            callchain,
        } = &ev.body
        else {
            unreachable!("a SAMPLE record makes a sample event")
        };
        profile.add(g, &comm, period.unwrap_or(0));
        if stacks {
            frames.clear();
            match callchain {
                Some(c) => sym.frame_ids(pid, c, &mut frames),
                None => sym.frame_ids(pid, &ip.iter().copied().collect::<Vec<_>>(), &mut frames),
            }
            let comm = sym.intern(&comm);
            if pprof {
                profile.add_pprof_stack(g, comm, &frames, period.unwrap_or(0));
            } else {
                let label = *labels
                    .entry(g)
                    .or_insert_with(|| sym.intern(&group_info(&model, g).label));
                profile.add_stack(label, comm, &frames);
            }
        }
        Ok(())
    });
    if let Err(e) = &r {
        // What was counted before the damage is still shown, marked as such.
        eprintln!(
            "nswatch: {}: incomplete, the input is damaged: {}",
            escape(name),
            escape(&format!("{e:#}"))
        );
    }
    for why in sym.notes() {
        eprintln!("nswatch: {}", escape(why));
    }
    if args.folded {
        for (stack, n) in profile.folded(sym.names()) {
            writeln!(out, "{} {n}", escape(&stack))?;
        }
        return r.map(drop);
    }
    if let Some(file) = pprof_out {
        // cpu-clock and task-clock periods are nanoseconds; perf's dummy side-band event
        // (software config 9) takes no samples.
        let cpu = data
            .decoder()
            .attrs()
            .filter(|a| !(a.kind == 1 && a.config == 9))
            .all(|a| a.kind == 1 && a.config <= 1);
        let unit = if cpu {
            PeriodUnit::CpuNanoseconds
        } else {
            PeriodUnit::Events
        };
        let labels = |g| {
            let gi = group_info(&model, g);
            let mut l = vec![
                ("container", gi.label),
                ("container_name", gi.name),
                ("container_kind", gi.kind.to_string()),
            ];
            l.extend(gi.runtime.map(|r| ("runtime", r)));
            l
        };
        profile
            .write_pprof(unit, labels, sym.names(), io::BufWriter::new(file))
            .with_context(|| format!("writing {}", args.output.as_ref().unwrap().display()))?;
        return r.map(drop);
    }
    let total = profile.samples();
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        }
    };
    let row_json = |row: &nswatch::profile::Row| {
        let gi = group_info(&model, row.group);
        serde_json::json!({
            "container": gi.label,
            "kind": gi.kind,
            "name": gi.name,
            "runtime": gi.runtime,
            "runtime_id": gi.runtime_id,
            "samples": row.samples,
            "period": row.period,
            "overhead": (pct(row.samples) * 100.0).round() / 100.0,
            "comms": row.top_comms(usize::MAX).iter()
                .map(|(c, n)| serde_json::json!({"comm": c, "samples": n}))
                .collect::<Vec<_>>(),
        })
    };
    match args.format {
        // Written above, with the stacks.
        Format::Pprof => {}
        Format::Ndjson => {
            for row in profile.rows() {
                let mut v = row_json(row);
                v["type"] = "container_samples".into();
                writeln!(out, "{v}")?;
            }
        }
        Format::Json => {
            let v = serde_json::json!({
                "file": name,
                "complete": r.is_ok(),
                "samples": total,
                "period": profile.period(),
                "containers": profile.rows().into_iter().map(row_json).collect::<Vec<_>>(),
            });
            writeln!(out, "{v:#}")?;
        }
        Format::Text => {
            writeln!(out, "# {}: {}", escape(name), describe(&info))?;
            writeln!(
                out,
                "# {total} samples, period {}, {} groups{}",
                profile.period(),
                profile.rows().len(),
                if r.is_err() {
                    " (incomplete: the input is damaged)"
                } else {
                    ""
                }
            )?;
            writeln!(
                out,
                "{:>8}  {:>8}  {:>14}  {:<18} {:<9} {:<24} top comms",
                "overhead", "samples", "period", "container", "kind", "name / runtime"
            )?;
            for row in profile.rows() {
                let gi = group_info(&model, row.group);
                let mut who = gi.name.clone();
                if let Some(rt) = &gi.runtime {
                    who = format!("{who} ({rt})");
                }
                let comms: Vec<String> = row
                    .top_comms(3)
                    .iter()
                    .map(|(c, n)| format!("{c} ({n})"))
                    .collect();
                writeln!(
                    out,
                    "{:>7.2}%  {:>8}  {:>14}  {:<18} {:<9} {:<24} {}",
                    pct(row.samples),
                    row.samples,
                    row.period,
                    escape(&gi.label),
                    gi.kind,
                    escape(&who),
                    escape(&comms.join(", "))
                )?;
            }
        }
    }
    r.map(drop)
}
