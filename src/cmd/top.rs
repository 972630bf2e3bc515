//! `nswatch top`: the live terminal UI, or a recording played through it.

use anyhow::{bail, Result};
use nswatch::live::CaptureOptions;
use nswatch::session::SessionOptions;
use nswatch::tui::{run_live, run_replay, ReplayOptions, TopOptions};
use nswatch::units::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `nswatch top`.
#[derive(clap::Args)]
pub struct TopArgs {
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

/// Runs `nswatch top`.
pub fn run(args: &TopArgs) -> Result<()> {
    if !args.export_dir.is_dir() {
        bail!(
            "--export-dir {}: not a directory",
            args.export_dir.display()
        );
    }
    let refresh = Duration::from_millis(250);
    match &args.replay {
        Some(file) => run_replay(ReplayOptions {
            file: file.clone(),
            speed: args.speed.0,
            export_dir: args.export_dir.clone(),
            frame: args.frame,
            refresh,
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
        }),
    }
}
