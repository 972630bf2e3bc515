//! `nswatch ps`: the machine as a tree of groups, from one scan of /proc.

use anyhow::Result;
use clap::{Args, ValueEnum};
use nswatch::census;
use nswatch::model::tree::{self, GroupNode, Row, Tree};
use nswatch::text::escape;
use std::io::{self, Write};
use std::path::PathBuf;

/// Options of `nswatch ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = PsFormat::Text)]
    pub format: PsFormat,
    /// List the host's processes too (by default only their count).
    #[arg(long, short)]
    pub all: bool,
    /// List every thread, not only a count per process.
    #[arg(long, short)]
    pub threads: bool,
    /// Print on standard error how long the census (scan and model) took.
    #[arg(long)]
    pub stats: bool,
    /// Read every task from /proc, never through the BPF task iterator (to compare the two).
    #[arg(long, hide = true)]
    pub no_bpf: bool,
    /// The proc filesystem to read (for tests and chroots).
    #[arg(long, default_value = "/proc", hide = true)]
    pub proc_root: PathBuf,
}

/// Output formats of `nswatch ps`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsFormat {
    /// An indented tree for people.
    Text,
    /// One JSON document for scripts.
    Json,
}

/// Runs `nswatch ps`.
pub fn run(args: &PsArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let census = census::take_with(&args.proc_root, 0, !args.no_bpf)?;
    if args.stats {
        eprintln!(
            "nswatch ps: census of {} tasks, {} groups in {:.3} ms from {}",
            census.tasks,
            census.model.groups().iter().filter(|g| g.is_live()).count(),
            t0.elapsed().as_secs_f64() * 1e3,
            census.source
        );
    }
    say_what_is_unseen(&census);
    let out = tree::build(&census.model, census.host_pid, args.all);
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    match args.format {
        PsFormat::Json => {
            serde_json::to_writer_pretty(&mut w, &out)?;
            writeln!(w)?;
        }
        PsFormat::Text => write_text(&mut w, &out, args.threads)?,
    }
    w.flush()?;
    Ok(())
}

/// Tells on standard error what a user without the right to read every task's namespaces
/// does not see: `ps` shows the rest, as `lsns` does, and exits 0.
fn say_what_is_unseen(census: &census::Census) {
    if super::quiet() {
        return;
    }
    if census.unreadable > 0 {
        let iterator = match &census.source {
            census::Source::Proc { why: Some(w) } => format!("; the BPF task iterator: {w}"),
            census::Source::Proc { why: None } => "; the BPF task iterator: not asked".into(),
            census::Source::Iterator => String::new(),
        };
        eprintln!(
            "nswatch ps: {} of {} tasks not readable, left out: their namespaces \
             (/proc/PID/ns) need root or CAP_SYS_PTRACE{iterator}",
            census.unreadable, census.tasks
        );
    }
    if census.host_is_own {
        eprintln!(
            "nswatch ps: the host's namespaces (pid 1's, pid 2's) are not readable: \
             \"host\" is nswatch's own namespaces (pid {})",
            census.host_pid
        );
    }
}

fn write_group(w: &mut impl Write, g: &GroupNode, depth: usize, threads: bool) -> io::Result<()> {
    let pad = "  ".repeat(depth);
    write!(w, "{pad}{} {}", g.kind, escape(&g.name))?;
    if let Some(rt) = &g.runtime {
        write!(w, "  runtime={}", escape(rt))?;
    }
    if let Some(id) = g.runtime_id.as_ref().filter(|id| **id != g.name) {
        write!(w, " id={}", escape(id))?;
    }
    for (key, v) in [
        ("image", &g.image),
        ("namespace", &g.namespace),
        ("pod", &g.pod_name),
    ] {
        if let Some(v) = v {
            write!(w, " {key}={}", escape(v))?;
        }
    }
    write!(
        w,
        "  [{}]  {} task{}",
        g.id,
        g.tasks,
        if g.tasks == 1 { "" } else { "s" }
    )?;
    if !g.owns.is_empty() {
        write!(w, "  own: {}", g.owns.join(","))?;
    }
    if !g.shares_with_pod.is_empty() {
        write!(w, "  pod shares: {}", g.shares_with_pod.join(","))?;
    }
    writeln!(w)?;
    if let Some(c) = &g.cgroup {
        writeln!(w, "{pad}    cgroup {}", escape(c))?;
    }
    for p in &g.processes {
        write!(w, "{pad}    {:>7} ", p.pid)?;
        if p.nspid != 0 && p.nspid != p.pid {
            write!(w, "[{}] ", p.nspid)?;
        }
        write!(w, "{}  {}", escape(&p.comm), p.origin)?;
        if p.threads.len() > 1 {
            if threads {
                let t: Vec<String> = p.threads.iter().map(u32::to_string).collect();
                write!(w, "  threads {}", t.join(" "))?;
            } else {
                write!(w, "  ({} threads)", p.threads.len())?;
            }
        }
        writeln!(w)?;
    }
    Ok(())
}

fn write_text(w: &mut impl Write, out: &Tree, threads: bool) -> io::Result<()> {
    writeln!(
        w,
        "host  {} processes, {} tasks  (namespaces of pid {})",
        out.host_processes, out.host_tasks, out.host_pid
    )?;
    for (depth, row) in out.rows() {
        match row {
            Row::Pod(i) => {
                let pod = &out.pods[i];
                writeln!(
                    w,
                    "pod {}  {} containers",
                    escape(&pod.id),
                    pod.containers.len()
                )?;
            }
            Row::Group(i) if out.groups[i].kind == "host" => {
                writeln!(w, "host processes:")?;
                write_group(w, &out.groups[i], 1, threads)?;
            }
            Row::Group(i) => write_group(w, &out.groups[i], depth, threads)?,
        }
    }
    Ok(())
}
