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

mod by_container;
mod lines;
mod ndjson_in;
mod story;

use by_container::by_container;
use lines::{ndjson, ndjson_split};
use ndjson_in::from_ndjson;
use story::{text, text_split};

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

/// [`file_model`] for a perf.data file: a capture whose events cannot sample (every one
/// the dummy event: side-band records alone) has nothing to attribute to a time a task
/// has left, so its tasks keep no past, which a thread changing namespaces at every
/// record would otherwise write at each (DESIGN, "A task's past in a file"). A pipe's
/// attrs may come later in the stream: its tasks keep theirs.
fn perf_model(data: &PerfData) -> Attributor {
    let mut m = file_model();
    let samples = data.info().pipe || data.decoder().attrs().any(|a| a.can_sample());
    m.set_keep_past(samples);
    m
}
