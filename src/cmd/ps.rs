//! `nswatch ps`: the machine as a tree of groups, from one scan of /proc.

use anyhow::Result;
use clap::{Args, ValueEnum};
use nswatch::census;
use nswatch::model::{Attributor, Group, GroupId, Kind, Task};
use nswatch::nsset::link_name;
use serde::Serialize;
use std::collections::BTreeMap;
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

/// One process of a group, for output.
#[derive(Serialize, Debug)]
struct ProcessOut {
    pid: u32,
    /// Pid inside the group's pid namespace.
    nspid: u32,
    ppid: u32,
    comm: String,
    /// "born" in the group or "joined" it later (setns).
    origin: &'static str,
    threads: Vec<u32>,
}

/// One group, for output.
#[derive(Serialize, Debug)]
struct GroupOut {
    id: String,
    kind: &'static str,
    name: String,
    runtime: Option<String>,
    runtime_id: Option<String>,
    pod_uid: Option<String>,
    cgroup: Option<String>,
    /// Pod id ("pod-<net ino>") when it shares its network namespace with other containers.
    pod: Option<String>,
    /// Id of the container it is nested in.
    parent: Option<String>,
    creator: Option<String>,
    owns: Vec<&'static str>,
    shares_with_host: Vec<&'static str>,
    shares_with_pod: Vec<&'static str>,
    namespaces: BTreeMap<&'static str, [u64; 2]>,
    tasks: u32,
    processes: Vec<ProcessOut>,
}

/// The whole answer, for output.
#[derive(Serialize, Debug)]
struct PsOut {
    host_pid: u32,
    host_tasks: u32,
    host_processes: usize,
    pods: Vec<PodOut>,
    groups: Vec<GroupOut>,
}

#[derive(Serialize, Debug)]
struct PodOut {
    id: String,
    net: [u64; 2],
    containers: Vec<String>,
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
    let out = build(&census.model, census.host_pid, args.all);
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

fn mask_list(mask: u32) -> Vec<&'static str> {
    (0..7)
        .filter(|i| mask & (1 << i) != 0)
        .map(link_name)
        .collect()
}

fn processes(tasks: &[&Task]) -> Vec<ProcessOut> {
    let mut by_pid: BTreeMap<u32, ProcessOut> = BTreeMap::new();
    for t in tasks {
        let p = by_pid.entry(t.pid).or_insert_with(|| ProcessOut {
            pid: t.pid,
            nspid: 0,
            ppid: t.ppid,
            comm: String::new(),
            origin: t.origin.name(),
            threads: Vec::new(),
        });
        if t.tid == t.pid {
            p.nspid = t.nspid;
            p.comm = t.comm().to_string();
            p.ppid = t.ppid;
            p.origin = t.origin.name();
        }
        p.threads.push(t.tid);
    }
    by_pid
        .into_values()
        .map(|mut p| {
            p.threads.sort_unstable();
            p
        })
        .collect()
}

fn build(model: &Attributor, host_pid: u32, all: bool) -> PsOut {
    let mut tasks_of: BTreeMap<GroupId, Vec<&Task>> = BTreeMap::new();
    for t in model.tasks() {
        tasks_of.entry(t.current.group).or_default().push(t);
    }
    let pods = model.pods();
    let pod_label = |net: u64| format!("pod-{net}");
    let pod_of = |id: GroupId| pods.iter().find(|p| p.containers.contains(&id));
    let host = model.host();
    let mut groups = Vec::new();
    for g in model.groups().iter().filter(|g| g.is_live()) {
        let tasks = tasks_of.get(&g.id).map(Vec::as_slice).unwrap_or(&[]);
        if g.kind == Kind::Host && !all {
            continue;
        }
        let set = model
            .sets()
            .get(model.task(g.leader).map_or(g.first_set, |t| t.current.set));
        let pod = pod_of(g.id);
        let shares_with_pod = pod.map_or(Vec::new(), |p| {
            let others: Vec<&Group> = p
                .containers
                .iter()
                .filter(|&&c| c != g.id)
                .map(|&c| model.group(c))
                .collect();
            (0..set.links().len())
                .filter(|&i| {
                    host.links().get(i) != set.links().get(i)
                        && others.iter().all(|o| {
                            model.sets().get(o.first_set).links().get(i) == set.links().get(i)
                        })
                })
                .map(link_name)
                .collect()
        });
        groups.push(GroupOut {
            id: g.label.clone(),
            kind: g.kind.name(),
            name: g.display_name().to_string(),
            runtime: g.naming.runtime.clone(),
            runtime_id: g.naming.runtime_id.clone(),
            pod_uid: g.naming.pod_uid.clone(),
            cgroup: g.naming.cgroup.clone(),
            pod: pod.map(|p| pod_label(p.net.ino)),
            parent: model.parent_of(g.id).map(|p| model.group(p).label.clone()),
            creator: g.creator.clone(),
            owns: mask_list(g.differs),
            shares_with_host: mask_list(!g.differs & ((1 << set.links().len()) - 1)),
            shares_with_pod,
            namespaces: set
                .links()
                .iter()
                .enumerate()
                .map(|(i, l)| (link_name(i), [l.dev, l.ino]))
                .collect(),
            tasks: g.live_tasks,
            processes: processes(tasks),
        });
    }
    let host_tasks = tasks_of.get(&GroupId::HOST).map_or(&[][..], Vec::as_slice);
    PsOut {
        host_pid,
        host_tasks: model.group(GroupId::HOST).live_tasks,
        host_processes: host_tasks.iter().filter(|t| t.pid == t.tid).count(),
        pods: pods
            .iter()
            .map(|p| PodOut {
                id: pod_label(p.net.ino),
                net: [p.net.dev, p.net.ino],
                containers: p
                    .containers
                    .iter()
                    .map(|&c| model.group(c).label.clone())
                    .collect(),
            })
            .collect(),
        groups,
    }
}

fn write_group(
    w: &mut impl Write,
    g: &GroupOut,
    out: &PsOut,
    depth: usize,
    threads: bool,
) -> io::Result<()> {
    let pad = "  ".repeat(depth);
    write!(w, "{pad}{} {}", g.kind, g.name)?;
    if let Some(rt) = &g.runtime {
        write!(w, "  runtime={rt}")?;
    }
    if let Some(id) = g.runtime_id.as_ref().filter(|id| **id != g.name) {
        write!(w, " id={id}")?;
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
        writeln!(w, "{pad}    cgroup {c}")?;
    }
    for p in &g.processes {
        write!(w, "{pad}    {:>7} ", p.pid)?;
        if p.nspid != 0 && p.nspid != p.pid {
            write!(w, "[{}] ", p.nspid)?;
        }
        write!(w, "{}  {}", p.comm, p.origin)?;
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
    for child in out
        .groups
        .iter()
        .filter(|c| c.parent.as_deref() == Some(&g.id))
    {
        write_group(w, child, out, depth + 1, threads)?;
    }
    Ok(())
}

fn write_text(w: &mut impl Write, out: &PsOut, threads: bool) -> io::Result<()> {
    writeln!(
        w,
        "host  {} processes, {} tasks  (namespaces of pid {})",
        out.host_processes, out.host_tasks, out.host_pid
    )?;
    let top = |g: &&GroupOut| g.kind != "host" && g.parent.is_none();
    for pod in &out.pods {
        writeln!(w, "pod {}  {} containers", pod.id, pod.containers.len())?;
        for g in out
            .groups
            .iter()
            .filter(top)
            .filter(|g| g.pod.as_ref() == Some(&pod.id))
        {
            write_group(w, g, out, 1, threads)?;
        }
    }
    for g in out.groups.iter().filter(top).filter(|g| g.pod.is_none()) {
        write_group(w, g, out, 0, threads)?;
    }
    if let Some(h) = out.groups.iter().find(|g| g.kind == "host") {
        writeln!(w, "host processes:")?;
        write_group(w, h, out, 1, threads)?;
    }
    Ok(())
}
