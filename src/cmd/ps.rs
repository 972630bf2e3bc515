//! `nswatch ps`: the machine as a tree of groups, from one scan of /proc.

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use nswatch::census;
use nswatch::model::tree::{self, GroupNode, ProcessNode, Row, Tree};
use nswatch::out_file::create_output;
use nswatch::text::escape;
use serde_json::Value;
use std::io::{self, Write};
use std::path::PathBuf;

/// Options of `nswatch ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = PsFormat::Text)]
    pub format: PsFormat,
    /// The same as `--format json`.
    #[arg(long, short = 'J', conflicts_with = "format")]
    pub json: bool,
    /// Only these processes (comma list, repeatable; a thread id finds its process): their
    /// groups, with only them listed.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// A table of these columns (comma list, as lsns -o): one row per group, or per
    /// process when a process column (PID, PPID, NSPID, COMM, THREADS, ORIGIN) is among
    /// them. `-o help` lists them.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "COLUMNS",
        value_delimiter = ','
    )]
    pub columns: Vec<String>,
    /// Write to FILE instead of standard output: created 0600, a file already there moved
    /// to FILE.old, a symbolic link not followed.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// List the host's processes too (by default only their count), and the groups of
    /// kernel threads alone (kdevtmpfs's mount namespace), counted with the host.
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

/// A column of `ps -o`: its name, whether it is a process's, and what it says.
struct Column {
    name: &'static str,
    process: bool,
    help: &'static str,
}

/// Every column of `ps -o`, in `-o help`'s order.
const COLUMNS: &[Column] = &[
    col("ID", false, "the group's label (host, ct-4026532301, sb-…)"),
    col("KIND", false, "host, container or sandbox"),
    col("NAME", false, "its name for people"),
    col("RUNTIME", false, "the runtime that made it"),
    col("RUNTIME_ID", false, "the runtime's id for it"),
    col("IMAGE", false, "the image it runs"),
    col(
        "NAMESPACE",
        false,
        "the runtime's namespace (containerd's, a pod's)",
    ),
    col("POD", false, "its pod's name (Kubernetes, podman)"),
    col("PARENT", false, "the group it is nested in"),
    col("CREATOR", false, "command name of the task that created it"),
    col("CGROUP", false, "the cgroup path it was named from"),
    col("OWNS", false, "namespaces not shared with the host"),
    col("TASKS", false, "its live tasks (threads)"),
    col("PROCS", false, "its processes"),
    col("NS_NET", false, "its network namespace (inode number)"),
    col("NS_UTS", false, "its uts namespace"),
    col("NS_IPC", false, "its ipc namespace"),
    col("NS_PID", false, "its pid namespace"),
    col("NS_USER", false, "its user namespace"),
    col("NS_MNT", false, "its mount namespace"),
    col("NS_CGROUP", false, "its cgroup namespace"),
    col("PID", true, "process id"),
    col("PPID", true, "parent process id"),
    col("NSPID", true, "process id in its pid namespace"),
    col("COMM", true, "command name"),
    col("THREADS", true, "its threads"),
    col(
        "ORIGIN",
        true,
        "born in the group, joined it, or created it",
    ),
];

const fn col(name: &'static str, process: bool, help: &'static str) -> Column {
    Column {
        name,
        process,
        help,
    }
}

/// The value of column `c` for group `g` (and process `p`, for a process row).
fn cell(c: &str, g: &GroupNode, p: Option<&ProcessNode>) -> Value {
    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let ns = |k: &str| g.namespaces.get(k).map_or(Value::Null, |l| l[1].into());
    match c {
        "ID" => g.id.clone().into(),
        "KIND" => g.kind.into(),
        "NAME" => g.name.clone().into(),
        "RUNTIME" => s(&g.runtime),
        "RUNTIME_ID" => s(&g.runtime_id),
        "IMAGE" => s(&g.image),
        "NAMESPACE" => s(&g.namespace),
        "POD" => s(&g.pod_name),
        "PARENT" => s(&g.parent),
        "CREATOR" => s(&g.creator),
        "CGROUP" => s(&g.cgroup),
        "OWNS" => g.owns.join(",").into(),
        "TASKS" => g.tasks.into(),
        "PROCS" => g.processes.len().into(),
        "NS_NET" => ns("net"),
        "NS_UTS" => ns("uts"),
        "NS_IPC" => ns("ipc"),
        "NS_PID" => ns("pid"),
        "NS_USER" => ns("user"),
        "NS_MNT" => ns("mnt"),
        "NS_CGROUP" => ns("cgroup"),
        "PID" => p.map_or(Value::Null, |p| p.pid.into()),
        "PPID" => p.map_or(Value::Null, |p| p.ppid.into()),
        "NSPID" => p.map_or(Value::Null, |p| p.nspid.into()),
        "COMM" => p.map_or(Value::Null, |p| p.comm.clone().into()),
        "THREADS" => p.map_or(Value::Null, |p| p.threads.len().into()),
        "ORIGIN" => p.map_or(Value::Null, |p| p.origin.into()),
        _ => Value::Null,
    }
}

/// The columns asked for, by their names (any case); `help` lists them.
fn columns(asked: &[String]) -> Result<Vec<&'static Column>> {
    asked
        .iter()
        .map(|a| {
            COLUMNS
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(a.trim()))
                .ok_or_else(|| {
                    let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
                    anyhow!("-o: unknown column {:?} (columns: {})", a, names.join(","))
                })
        })
        .collect()
}

/// One row of `ps -o … --json`: an object whose keys (the columns' names in lower case)
/// come in the order the columns were asked for, as the table's do; a `serde_json::Map`
/// would sort them. A column asked for twice is written once.
struct JsonRow<'a>(&'a [&'a Column], Vec<Value>);

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (i, (c, v)) in self.0.iter().zip(&self.1).enumerate() {
            if self.0[..i].iter().any(|d| d.name == c.name) {
                continue;
            }
            m.serialize_entry(&c.name.to_ascii_lowercase(), v)?;
        }
        m.end()
    }
}

/// `ps -o`: a table (or with `--json`, an array of objects with those keys).
fn write_table(w: &mut impl Write, out: &Tree, cols: &[&Column], json: bool) -> Result<()> {
    let per_process = cols.iter().any(|c| c.process);
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for (_, row) in out.rows() {
        let Row::Group(i) = row else { continue };
        let g = &out.groups[i];
        if per_process {
            for p in &g.processes {
                rows.push(cols.iter().map(|c| cell(c.name, g, Some(p))).collect());
            }
        } else {
            rows.push(cols.iter().map(|c| cell(c.name, g, None)).collect());
        }
    }
    if json {
        let objects: Vec<JsonRow<'_>> = rows.into_iter().map(|r| JsonRow(cols, r)).collect();
        serde_json::to_writer_pretty(&mut *w, &objects)?;
        writeln!(w)?;
        return Ok(());
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) if s.is_empty() => "-".to_string(),
        Value::String(s) => escape(s).into_owned(),
        v => v.to_string(),
    };
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(text).collect()).collect();
    let mut widths: Vec<usize> = cols.iter().map(|c| c.name.len()).collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric = |c: &Column| {
        matches!(
            c.name,
            "TASKS" | "PROCS" | "PID" | "PPID" | "NSPID" | "THREADS"
        ) || c.name.starts_with("NS_")
    };
    let line = |w: &mut dyn Write, r: &[String]| -> io::Result<()> {
        let mut l = String::new();
        for (i, (c, v)) in cols.iter().zip(r).enumerate() {
            let last = i + 1 == cols.len();
            let pad = widths[i].saturating_sub(v.chars().count());
            if numeric(c) {
                l.push_str(&" ".repeat(pad));
                l.push_str(v);
            } else {
                l.push_str(v);
                if !last {
                    l.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                l.push(' ');
            }
        }
        writeln!(w, "{}", l.trim_end())
    };
    let head: Vec<String> = cols.iter().map(|c| c.name.to_string()).collect();
    line(w, &head)?;
    for r in &cells {
        line(w, r)?;
    }
    Ok(())
}

/// Keeps in `out` only the processes `pids` names (a thread's id names its process) and
/// the groups that have one; says on standard error which it did not find. An error
/// when none was found.
fn keep_pids(out: &mut Tree, pids: &[u32], proc_root: &std::path::Path) -> Result<()> {
    let mut found = vec![false; pids.len()];
    for g in &mut out.groups {
        g.processes.retain(|p| {
            let mut hit = false;
            for (i, want) in pids.iter().enumerate() {
                if p.pid == *want || p.threads.contains(want) {
                    found[i] = true;
                    hit = true;
                }
            }
            hit
        });
    }
    out.groups.retain(|g| !g.processes.is_empty());
    let wanted: Vec<String> = out.groups.iter().map(|g| g.id.clone()).collect();
    out.pods
        .retain(|p| p.containers.iter().any(|c| wanted.contains(c)));
    for (pid, _) in pids.iter().zip(&found).filter(|(_, f)| !**f) {
        if proc_root.join(pid.to_string()).exists() {
            eprintln!(
                "nswatch ps: pid {pid}: its namespaces are not readable (root or CAP_SYS_PTRACE)"
            );
        } else {
            eprintln!("nswatch ps: pid {pid}: no such process");
        }
    }
    if !found.iter().any(|f| *f) {
        bail!("none of the processes asked for (-p) was found");
    }
    Ok(())
}

/// Runs `nswatch ps`.
pub fn run(args: &PsArgs) -> Result<()> {
    let cols = if args.columns.iter().any(|c| c == "help") {
        for c in COLUMNS {
            println!("{:>10}  {}", c.name, c.help);
        }
        return Ok(());
    } else {
        columns(&args.columns)?
    };
    let json = args.json || args.format == PsFormat::Json;
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
    // A pid asked for may be the host's.
    let mut out = tree::build(
        &census.model,
        census.host_pid,
        args.all || !args.pids.is_empty(),
    );
    if !args.pids.is_empty() {
        keep_pids(&mut out, &args.pids, &args.proc_root)?;
    }
    let dest: Box<dyn Write> = match &args.output_file {
        Some(p) => Box::new(create_output(p)?.file),
        None => Box::new(io::stdout()),
    };
    let mut w = io::BufWriter::new(dest);
    if !cols.is_empty() {
        write_table(&mut w, &out, &cols, json)?;
    } else if json {
        serde_json::to_writer_pretty(&mut w, &out)?;
        writeln!(w)?;
    } else {
        write_text(&mut w, &out, args.threads)?;
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
    if g.kernel_threads {
        write!(w, "  (kernel threads, counted with the host)")?;
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
