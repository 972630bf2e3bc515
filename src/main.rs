//! The nswatch command line.

mod cmd;

use clap::{Parser, Subcommand};
use std::io;
use std::process::ExitCode;

/// Watch Linux namespaces change and tell which container every task belongs to.
#[derive(Parser)]
#[command(name = "nswatch", version, about, long_about = None)]
struct Cli {
    /// Fewer messages: no warnings or summaries on standard error, only errors (as perf's
    /// -q).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a perf.data file (default ./perf.data; or a pipe-mode stream) recorded with
    /// `perf record --namespaces`, or NDJSON from `nswatch record`, and tell its namespace
    /// story.
    Report(cmd::report::ReportArgs),
    /// Stream every task and namespace change on this machine, live: a line each on a
    /// terminal, NDJSON to a pipe or a file (root or CAP_PERFMON).
    Record(cmd::record::RecordArgs),
    /// Show the machine as a tree of host, pods, containers and sandboxes, with their
    /// processes, from one scan of /proc.
    Ps(cmd::ps::PsArgs),
    /// Write a perf.data file or an NDJSON event stream as a Chrome trace (Perfetto,
    /// chrome://tracing): a track per container, task lifetimes, namespace changes.
    Export(cmd::export::ExportArgs),
    /// The live terminal UI: the tree of groups with their rates, the latest namespace
    /// events with their causes, the selected group's namespaces (root or CAP_PERFMON;
    /// `--replay FILE` plays a recording instead). Runs `nswatch-top`, found beside nswatch
    /// or on PATH.
    Top(cmd::top::TopArgs),
}

fn main() -> ExitCode {
    // Before anything opens a file or starts a thread (threads inherit capability sets).
    if let Err(e) = nswatch::privilege::refuse_set_id() {
        eprintln!("nswatch: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = nswatch::privilege::drop_file_overrides() {
        eprintln!(
            "nswatch: taking file permission overrides out of the effective capabilities: {e}"
        );
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    cmd::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Report(args) => cmd::report::run(&args),
        Command::Record(args) => cmd::record::run(&args),
        Command::Ps(args) => cmd::ps::run(&args),
        Command::Export(args) => cmd::export::run(&args),
        Command::Top(args) => cmd::top::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`| head`) is the reader's choice, not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // Messages quote file names and what the input held: escaped, like every text
            // output, so that a hostile name cannot drive the terminal.
            eprintln!("nswatch: {}", nswatch::text::escape(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
