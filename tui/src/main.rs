//! `nswatch-top`, which `nswatch top` runs: the live terminal UI, or a recording played
//! through it.

use anyhow::{bail, Result};
use clap::Parser;
use nswatch::live::CaptureOptions;
use nswatch::select::Selection;
use nswatch::session::SessionOptions;
use nswatch::units::parse_duration;
use nswatch_tui::{run_live, run_replay, ReplayOptions, TopOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The live terminal UI: the tree of groups with their rates, the latest namespace events
/// with their causes, the selected group's namespaces (root or CAP_PERFMON; `--replay FILE`
/// plays a recording instead).
#[derive(Parser)]
#[command(name = "nswatch-top", version, long_about = None)]
struct TopArgs {
    /// Play a recording (perf.data, or NDJSON from `nswatch record`) through the UI instead of watching this machine.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Replay speed: recorded seconds per second (2 = twice as fast), or "max" to play as
    /// fast as the file reads.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    speed: Speed,
    /// Directory where `e` writes the view as JSON.
    #[arg(long, value_name = "DIR", default_value = ".")]
    export_dir: PathBuf,
    /// Do not load the eBPF probe (namespace changes without their causes).
    #[arg(long)]
    no_bpf: bool,
    /// Data pages per CPU ring (rounded up to a power of two).
    #[arg(long, default_value_t = nswatch::live::DEFAULT_RING_PAGES)]
    ring_pages: usize,
    /// Longest wait for records or keys (a key's worst latency).
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    frame: Duration,
    /// Show only these processes (comma list, repeatable): their groups, their tasks and
    /// their events. Live, none running is an error; in a replay, none in the recording.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_delimiter = ',')]
    pids: Vec<u32>,
    /// Show only this group and the containers nested in it: its label (ct-4026532300),
    /// name, runtime id, or the id's first 12 or more characters. Live, one that is not
    /// there yet is shown once it starts; in a replay, one the recording lacks is an error.
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// List the groups of kernel threads alone (kdevtmpfs's mount namespace) apart from
    /// the host, whose row otherwise counts their tasks.
    #[arg(long, short)]
    all: bool,
}

/// A replay speed.
#[derive(Clone, Copy, Debug)]
struct Speed(Option<f64>);

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s == "max" {
        return Ok(Speed(None));
    }
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(Speed(Some(v))),
        _ => Err(format!("not a speed: {s:?} (a positive number, or max)")),
    }
}

fn main() -> ExitCode {
    // Before anything opens a file or starts a thread (threads inherit capability sets), as
    // `nswatch` does.
    if let Err(e) = nswatch::privilege::refuse_set_id() {
        eprintln!("nswatch top: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = nswatch::privilege::drop_file_overrides() {
        eprintln!(
            "nswatch top: taking file permission overrides out of the effective capabilities: {e}"
        );
        return ExitCode::FAILURE;
    }
    let args = TopArgs::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages quote file names and what the input held: escaped, so that a hostile
            // name cannot drive the terminal.
            eprintln!("nswatch top: {}", nswatch::text::escape(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Runs the UI on this machine or on a recording.
fn run(args: &TopArgs) -> Result<()> {
    if !args.export_dir.is_dir() {
        bail!(
            "--export-dir {}: not a directory",
            args.export_dir.display()
        );
    }
    let refresh = Duration::from_millis(250);
    let select = Selection::new(args.pids.clone(), Vec::new(), args.container.as_deref());
    match &args.replay {
        Some(file) => run_replay(ReplayOptions {
            file: file.clone(),
            speed: args.speed.0,
            export_dir: args.export_dir.clone(),
            frame: args.frame,
            refresh,
            select,
            all: args.all,
        }),
        None => run_live(TopOptions {
            session: SessionOptions {
                capture: CaptureOptions {
                    ring_pages: args.ring_pages,
                    ..Default::default()
                },
                bpf: !args.no_bpf,
                ..Default::default()
            },
            export_dir: args.export_dir.clone(),
            frame: args.frame,
            refresh,
            select,
            all: args.all,
        }),
    }
}
