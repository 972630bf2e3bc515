//! Real container runtimes from Debian's packages, started on the local busybox-static rootfs
//! ([`super::rootfs`]), for the tests that prove container attribution against the real thing.
//!
//! [`Container::start`] starts one detached with a long-running payload (`sleep`) and learns
//! its host pids; [`Container::exec`] starts another process inside later, the way users do
//! (`runc exec`, `lxc-attach`, `nsenter`, `firejail --join`, `ip netns exec`);
//! [`Container::run`] runs a short script inside to completion; [`Container::stop`] stops it
//! and waits until its tasks are gone. Drop cleans up (kill, delete, netns, cgroups) when a
//! test fails half-way. Names are unique per process and call, so tests and test binaries
//! can run at the same time. What each runtime looks like on this machine: docs/runtimes.md.
//!
//! Needs root. [`runtime_ok`] skips with a reason, or fails under NSWATCH_REQUIRE_LIVE=1.

use super::rootfs;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The runtimes the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `runc run -d ID` on a generated config.json.
    Runc,
    /// `lxc-create -t none` + `lxc-start -d` with the name as the id.
    Lxc,
    /// `systemd-nspawn --register=no --keep-unit --as-pid2 -M NAME`, in a
    /// machine.slice/machine-NAME.scope cgroup made by the test (no systemd here).
    Nspawn,
    /// `bwrap --unshare-{pid,ipc,uts,net,cgroup}`; it has no id, the name is its hostname.
    Bwrap,
    /// `firejail --noprofile --net=none --name=NAME` (on the host's filesystem).
    Firejail,
    /// `firejail --noprofile --name=NAME`, keeping the host's network.
    FirejailHostNet,
    /// `ip netns add NAME` + `ip netns exec NAME sleep`.
    Netns,
    /// systemd-nspawn as [`Runtime::Nspawn`] but in the caller's cgroup, as it runs without
    /// systemd: its payload's cgroup is `<caller's>/payload`, and the name is nowhere in it.
    NspawnBare,
    /// `docker run -d --name NAME --network none` of an image imported from the rootfs
    /// (dockerd and containerd started by the harness when not running).
    Docker,
    /// Rootful `podman run -d --name NAME --network none` of an imported image.
    Podman,
    /// `podman pod create --name NAME-pod --network none` and two containers in it, NAME and
    /// NAME-b; the payload is NAME's.
    PodmanPod,
    /// `podman run` as an unprivileged user (subordinate ids, no cgroup of its own).
    PodmanRootless,
    /// `ctr run -d --rootfs ROOTFS NAME`, in containerd's `default` namespace.
    Ctr,
    /// `crun run -d` on the same config.json as runc.
    Crun,
}

/// Every runtime, for tests that go through all of them.
pub const ALL: &[Runtime] = &[
    Runtime::Runc,
    Runtime::Lxc,
    Runtime::Nspawn,
    Runtime::Bwrap,
    Runtime::Firejail,
    Runtime::FirejailHostNet,
    Runtime::Netns,
    Runtime::NspawnBare,
    Runtime::Docker,
    Runtime::Podman,
    Runtime::PodmanPod,
    Runtime::PodmanRootless,
    Runtime::Ctr,
    Runtime::Crun,
];

/// The namespace kinds as /proc/PID/ns names them (time is left out: no runtime here makes one).
pub const KINDS: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];

impl Runtime {
    /// The command that must be installed for this runtime.
    pub fn program(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Lxc => "lxc-start",
            Runtime::Nspawn => "systemd-nspawn",
            Runtime::Bwrap => "bwrap",
            Runtime::Firejail | Runtime::FirejailHostNet => "firejail",
            Runtime::Netns => "ip",
            Runtime::NspawnBare => "systemd-nspawn",
            Runtime::Docker => "dockerd",
            Runtime::Podman | Runtime::PodmanPod | Runtime::PodmanRootless => "podman",
            Runtime::Ctr => "ctr",
            Runtime::Crun => "crun",
        }
    }

    /// Other commands it needs.
    fn also_needs(self) -> &'static [&'static str] {
        match self {
            Runtime::Docker => &["docker", "containerd"],
            Runtime::Ctr => &["containerd"],
            Runtime::Podman | Runtime::PodmanPod => &["conmon", "crun"],
            Runtime::PodmanRootless => &[
                "conmon",
                "crun",
                "newuidmap",
                "newgidmap",
                "useradd",
                "runuser",
            ],
            _ => &[],
        }
    }

    /// Whether its containers are started through podman.
    pub fn is_podman(self) -> bool {
        matches!(
            self,
            Runtime::Podman | Runtime::PodmanPod | Runtime::PodmanRootless
        )
    }

    /// Short lowercase label, used in names and messages.
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Lxc => "lxc",
            Runtime::Nspawn => "nspawn",
            Runtime::Bwrap => "bwrap",
            Runtime::Firejail => "firejail",
            Runtime::FirejailHostNet => "fjhost",
            Runtime::Netns => "netns",
            Runtime::NspawnBare => "nspbare",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::PodmanPod => "ppod",
            Runtime::PodmanRootless => "prl",
            Runtime::Ctr => "ctr",
            Runtime::Crun => "crun",
        }
    }

    /// The namespaces of the payload that differ from the host's, as started here (measured on
    /// this machine; docs/runtimes.md). All others are the host's.
    pub fn isolated(self) -> &'static [&'static str] {
        match self {
            Runtime::Runc
            | Runtime::Crun
            | Runtime::Docker
            | Runtime::Podman
            | Runtime::PodmanPod
            | Runtime::Ctr => &["ipc", "mnt", "net", "pid", "uts"],
            // Subordinate ids need a user namespace; podman makes no cgroup namespace here.
            Runtime::PodmanRootless => &["ipc", "mnt", "net", "pid", "user", "uts"],
            Runtime::Lxc | Runtime::Nspawn | Runtime::NspawnBare | Runtime::Bwrap => {
                &["cgroup", "ipc", "mnt", "net", "pid", "uts"]
            }
            Runtime::Firejail => &["ipc", "mnt", "net", "pid", "uts"],
            Runtime::FirejailHostNet => &["ipc", "mnt", "pid", "uts"],
            // `ip netns exec` also unshares the mount namespace, to remount /sys for the netns.
            Runtime::Netns => &["mnt", "net"],
        }
    }

    /// The namespaces a process started by [`Container::exec`] shares with the payload.
    /// Everything isolated, except for `ip netns exec`, which makes a new mount namespace on
    /// every call.
    pub fn exec_shares(self) -> &'static [&'static str] {
        match self {
            Runtime::Netns => &["net"],
            rt => rt.isolated(),
        }
    }

    /// Whether the payload runs in its own pid namespace (so it has an init other than itself).
    pub fn has_pid_ns(self) -> bool {
        self.isolated().contains(&"pid")
    }
}

/// The names nswatch must give container `c` (the group's or a `container_start`'s fields,
/// with the value each must have): the runtime's own, exactly as the runtime gives them (its
/// id or name, docker's and podman's full id and image, podman's pod, containerd's
/// namespace), and null where the runtime has none.
pub fn expected_naming(c: &Container) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::Value;
    let (rt, id) = (c.runtime(), c.id());
    let kind = if rt == Runtime::Netns {
        "sandbox"
    } else {
        "container"
    };
    let (runtime, runtime_id) = match rt {
        Runtime::Runc => ("runc", Some(id)),
        Runtime::Crun => ("crun", Some(id)),
        Runtime::Lxc => ("lxc", Some(id)),
        Runtime::Nspawn | Runtime::NspawnBare => ("nspawn", Some(id)),
        Runtime::Bwrap => ("bubblewrap", None),
        Runtime::Firejail | Runtime::FirejailHostNet => ("firejail", None),
        Runtime::Netns => ("ip-netns", Some(id)),
        Runtime::Docker => ("docker", c.full_id()),
        Runtime::Podman | Runtime::PodmanPod | Runtime::PodmanRootless => ("podman", c.full_id()),
        Runtime::Ctr => ("containerd", Some(id)),
    };
    let null_or = |v: Option<&str>| v.map_or(Value::Null, Value::from);
    vec![
        ("kind", kind.into()),
        ("runtime", runtime.into()),
        ("runtime_id", null_or(runtime_id)),
        // bwrap has no id: the name is the hostname the harness set; firejail's is --name.
        ("name", id.into()),
        ("image", null_or(c.image())),
        ("pod_name", null_or(c.pod().map(|p| p.0))),
        ("pod_id", null_or(c.pod().map(|p| p.1))),
        (
            "namespace",
            null_or((rt == Runtime::Ctr).then_some("default")),
        ),
    ]
}

/// Why this runtime cannot run here (not root, program or busybox-static missing), if so.
pub fn unavailable(rt: Runtime) -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for prog in std::iter::once(rt.program()).chain(rt.also_needs().iter().copied()) {
        if !in_path(prog) {
            return Some(format!("{prog} is not installed"));
        }
    }
    if !matches!(
        rt,
        Runtime::Firejail | Runtime::FirejailHostNet | Runtime::Netns
    ) {
        if let Some(why) = rootfs::unavailable() {
            return Some(why);
        }
    }
    if !in_path("nsenter") {
        return Some("nsenter is not installed".into());
    }
    prepare(rt).err()
}

/// What the machine must have before `rt` can start a container (docs/runtimes.md): the
/// daemons, crun's cgroups, the rootless user, the images. Done once, kept.
fn prepare(rt: Runtime) -> Result<(), String> {
    use super::machine;
    if rt.is_podman() || rt == Runtime::Crun {
        machine::ensure_crun_cgroups()?;
    }
    match rt {
        Runtime::Docker => {
            machine::ensure_dockerd()?;
            machine::ensure_docker_image()?;
        }
        Runtime::Ctr => machine::ensure_containerd()?,
        Runtime::Podman | Runtime::PodmanPod => {
            machine::ensure_podman_image(false)?;
        }
        Runtime::PodmanRootless => {
            machine::ensure_rootless_user()?;
            machine::ensure_podman_image(true)?;
        }
        _ => {}
    }
    Ok(())
}

/// Skips (false, printing why) when `rt` cannot run here, or panics under
/// NSWATCH_REQUIRE_LIVE=1 (CI), where every runtime must run.
pub fn runtime_ok(what: &str, rt: Runtime) -> bool {
    match unavailable(rt) {
        None => true,
        Some(r) if super::require_live() => {
            panic!(
                "{what}: cannot run {} ({r}) and NSWATCH_REQUIRE_LIVE=1",
                rt.label()
            )
        }
        Some(r) => {
            eprintln!("SKIP {what}: {r}");
            false
        }
    }
}

fn in_path(prog: &str) -> bool {
    resolve(prog).is_absolute()
}

/// `prog` as found on PATH or in the sbin directories (runc lives in /usr/sbin, which the
/// PATH of a non-login root shell may lack); the bare name when nowhere.
pub fn resolve(prog: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
        .unwrap_or_else(|| prog.into())
}

/// A Command for `prog`, found as [`resolve`] finds it.
pub fn command(prog: &str) -> Command {
    Command::new(resolve(prog))
}

/// A namespace's identity: (st_dev, st_ino) of its nsfs inode.
pub type NsId = (u64, u64);

/// The namespace `kind` of `pid` (a tid works too), or None once it is gone or unreadable.
pub fn ns_of(pid: u32, kind: &str) -> Option<NsId> {
    let m = std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).ok()?;
    Some((m.dev(), m.ino()))
}

/// The host's namespace `kind`: PID 1's, or kthreadd's where PID 1's is unreadable (as here:
/// PID 1 is a supervisor whose /proc/1/ns links root may not read).
pub fn host_ns(kind: &str) -> NsId {
    ns_of(1, kind)
        .or_else(|| ns_of(2, kind))
        .unwrap_or_else(|| panic!("neither /proc/1/ns/{kind} nor /proc/2/ns/{kind} is readable"))
}

/// A process, told apart from a later one that reuses its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proc {
    pub pid: u32,
    start: u64,
}

impl Proc {
    /// The live process `pid`, or None (gone or a zombie).
    pub fn of(pid: u32) -> Option<Proc> {
        let st = Stat::read(pid)?;
        st.live().then_some(Proc {
            pid,
            start: st.start,
        })
    }

    /// Whether it still runs. A zombie counts as gone: its namespaces are already released,
    /// and the orphans that PID 1 here reaps late would otherwise linger for seconds.
    pub fn alive(&self) -> bool {
        Stat::read(self.pid).is_some_and(|s| s.start == self.start && s.live())
    }
}

struct Stat {
    state: char,
    ppid: u32,
    start: u64,
}

impl Stat {
    fn read(pid: u32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // comm may hold spaces and parentheses: the fields start after the last ')'.
        let rest = &text[text.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(Stat {
            state: f.first()?.chars().next()?,
            ppid: f.get(1)?.parse().ok()?,
            start: f.get(19)?.parse().ok()?,
        })
    }

    fn live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// The command line of `pid`, split at NULs.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The pid of `pid` in its own (innermost) pid namespace, from NSpid.
pub fn inner_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// The threads (tids) of `pid`, itself included.
pub fn threads(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every live process.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&p| Proc::of(p).is_some())
                .collect()
        })
        .unwrap_or_default()
}

/// `root` and every live process below it in the process tree.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(st) = Stat::read(pid).filter(Stat::live) {
                parent.push((pid, st.ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.retain(|&p| Proc::of(p).is_some());
    out
}

/// Polls `f` every 20 ms until it gives Some, or panics with `what` after `limit`.
fn wait_for<T>(limit: Duration, what: impl Fn() -> String, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            panic!("timed out after {limit:?}: {}", what());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const PAYLOAD: &[&str] = &["/bin/sleep", "100000"];
const START_LIMIT: Duration = Duration::from_secs(20);
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// A unique name: short (hostnames, lxc and nspawn names), lowercase, process and call unique.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("nsw{tag}{}x{n}", std::process::id())
}

/// A unique container id of the shape CRI runtimes give (64 hex digits), made from
/// [`unique_name`].
pub fn unique_hex_id(tag: &str) -> String {
    let hex: String = unique_name(tag)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex:0<64}")
}

/// Where and how a runc container is placed when a test builds what a kubelet's CRI runtime
/// would (no kubelet here): its id, its `cgroupsPath`, and the annotations of its
/// config.json. The cgroups runc makes above the container's own (the pod's, `kubepods`…)
/// are removed after it stops, those other tests still use excepted.
#[derive(Debug, Clone, Default)]
pub struct RuncLayout {
    /// The container id; [`unique_name`] when None.
    pub id: Option<String>,
    /// `linux.cgroupsPath`, absolute; `/<id>` when None.
    pub cgroups_path: Option<String>,
    /// `annotations` of config.json.
    pub annotations: Vec<(String, String)>,
    /// `/proc/PID/ns/net` of a container whose network namespace this one joins.
    pub join_net: Option<String>,
}

/// How many LXC containers this process has running, so the last one out can remove the
/// lxc.pivot cgroups that LXC leaves behind.
static LXC_LIVE: AtomicUsize = AtomicUsize::new(0);

/// A running container (or sandbox) and what the test learned of it.
pub struct Container {
    runtime: Runtime,
    id: String,
    init: Proc,
    payload: Proc,
    execs: Vec<Proc>,
    /// Runtime processes that stay in the foreground (nspawn, bwrap, firejail, ip netns exec,
    /// lxc-attach, nsenter): waited for, so they leave no zombies.
    children: Vec<Child>,
    dir: tempfile::TempDir,
    /// Cgroup directories the test made (nspawn's scope), removed deepest first.
    cgroups: Vec<PathBuf>,
    /// The runtime's full id where it makes one (docker, podman: 64 hex).
    full_id: Option<String>,
    /// The image it runs, as the runtime reports it (docker, podman).
    image: Option<String>,
    /// A podman pod's name and id.
    pod: Option<(String, String)>,
    /// Exec ids handed to `ctr task exec`.
    exec_seq: AtomicUsize,
    /// Options given to `docker run` / `podman run` before the image.
    run_args: Vec<String>,
    stopped: bool,
    /// What the container runs: [`PAYLOAD`], or the short payload of [`Container::run_to_end`].
    args: Vec<String>,
    /// Started in the foreground, to run its payload to the end ([`Container::run_to_end`]).
    to_end: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("runtime", &self.runtime)
            .field("id", &self.id)
            .field("init", &self.init.pid)
            .field("payload", &self.payload.pid)
            .field("execs", &self.execs)
            .finish()
    }
}

impl Container {
    /// Starts `rt` detached with `sleep` as its payload, named `unique_name(tag)`, and waits
    /// until the payload runs. Panics with the runtime's own log when it does not start.
    pub fn start(rt: Runtime, tag: &str) -> Container {
        Self::start_inner(rt, tag, RuncLayout::default(), &[])
    }

    /// Starts a runc container placed as `layout` says (see [`RuncLayout`]).
    pub fn start_runc_with(tag: &str, layout: RuncLayout) -> Container {
        Self::start_inner(Runtime::Runc, tag, layout, &[])
    }

    /// Starts a docker or podman container as [`Container::start`] does, with `options`
    /// given to `run` before the image (capabilities, a seccomp profile).
    pub fn start_engine_with(rt: Runtime, tag: &str, options: &[&str]) -> Container {
        assert!(
            rt == Runtime::Docker || rt.is_podman(),
            "{rt:?} is not started through docker or podman"
        );
        Self::start_inner(rt, tag, RuncLayout::default(), options)
    }

    /// Starts a runc container that joins `first`'s network namespace (config.json
    /// `{"type": "network", "path": "/proc/PID/ns/net"}`), as a pod's second container does.
    /// Its mount, pid, ipc and uts namespaces are its own.
    pub fn start_runc_joining_net(first: &Container, tag: &str) -> Container {
        let layout = RuncLayout {
            join_net: Some(format!("/proc/{}/ns/net", first.payload.pid)),
            ..RuncLayout::default()
        };
        Self::start_inner(Runtime::Runc, tag, layout, &[])
    }

    /// Runs `args` (`/bin/true`, `/bin/sleep 0.05`…) in a new container of `rt`, named
    /// `unique_name(tag)`, the way people run short jobs: in the foreground, with `--rm`
    /// where the runtime has it (`runc run`, `lxc-start -F`, `ctr run --rm`, `docker run
    /// --rm`; a pod of one for PodmanPod), and returns once it has ended and what it left is
    /// removed. The returned container is stopped; its names stay readable (id, full id,
    /// image, pod). Panics with the runtime's log when the payload fails.
    pub fn run_to_end(rt: Runtime, tag: &str, args: &[&str]) -> Container {
        let mut c = Self::new(rt, tag, None, args, true, &[]);
        c.start_as(rt, &RuncLayout::default());
        if let Err(e) = c.stop_inner() {
            panic!("{}: cleanup after the end: {e}", c.id);
        }
        c
    }

    fn start_inner(rt: Runtime, tag: &str, layout: RuncLayout, run_args: &[&str]) -> Container {
        let mut c = Self::new(rt, tag, layout.id.clone(), PAYLOAD, false, run_args);
        c.start_as(rt, &layout);
        c.find_init();
        c
    }

    fn new(
        rt: Runtime,
        tag: &str,
        id: Option<String>,
        args: &[&str],
        to_end: bool,
        run_args: &[&str],
    ) -> Container {
        let id = id.unwrap_or_else(|| unique_name(&format!("{}{tag}", rt.label())));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .unwrap();
        Container {
            runtime: rt,
            id,
            init: Proc { pid: 0, start: 0 },
            payload: Proc { pid: 0, start: 0 },
            execs: Vec::new(),
            children: Vec::new(),
            dir,
            cgroups: Vec::new(),
            full_id: None,
            image: None,
            pod: None,
            exec_seq: AtomicUsize::new(0),
            run_args: run_args.iter().map(|a| a.to_string()).collect(),
            stopped: false,
            args: args.iter().map(|s| s.to_string()).collect(),
            to_end,
        }
    }

    fn start_as(&mut self, rt: Runtime, layout: &RuncLayout) {
        match rt {
            Runtime::Runc | Runtime::Crun => self.start_runc(layout),
            Runtime::Lxc => self.start_lxc(),
            Runtime::Nspawn | Runtime::NspawnBare => self.start_nspawn(),
            Runtime::Docker | Runtime::Podman | Runtime::PodmanPod | Runtime::PodmanRootless => {
                self.start_engine()
            }
            Runtime::Ctr => self.start_ctr(),
            Runtime::Bwrap => self.start_bwrap(),
            Runtime::Firejail | Runtime::FirejailHostNet => self.start_firejail(),
            Runtime::Netns => self.start_netns(),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    /// Its id as the runtime knows it: runc's container id, LXC's name, nspawn's machine
    /// name, firejail's --name, the netns name; bwrap has none, it is the hostname we set.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime's full id (docker's and podman's 64 hex digits), where it has one apart
    /// from the name.
    pub fn full_id(&self) -> Option<&str> {
        self.full_id.as_deref()
    }

    /// The image, as `docker ps` / `podman ps` print it.
    pub fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }

    /// A podman pod's (name, id).
    pub fn pod(&self) -> Option<(&str, &str)> {
        self.pod.as_ref().map(|(n, i)| (n.as_str(), i.as_str()))
    }

    /// Host pid of its first task: PID 1 of its pid namespace (runc and LXC: the payload;
    /// nspawn: sd-stubinit; bwrap and firejail: their own init), or the payload where there
    /// is no pid namespace (netns).
    pub fn init_pid(&self) -> u32 {
        self.init.pid
    }

    /// Host pid of the payload (`sleep`).
    pub fn payload_pid(&self) -> u32 {
        self.payload.pid
    }

    /// Host pids of the processes started by [`Container::exec`], in order.
    pub fn exec_pids(&self) -> Vec<u32> {
        self.execs.iter().map(|p| p.pid).collect()
    }

    /// A scratch directory that lives as long as the container (bundle, logs, lxcpath).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Host pids of every live process of the container: the init and its descendants, and
    /// the processes started by [`Container::exec`] and theirs. Taken from the process tree,
    /// not from namespaces, so it is a check on namespace-based grouping, not a copy of it.
    pub fn pids(&self) -> Vec<u32> {
        let mut out: Vec<u32> = std::iter::once(self.init)
            .chain(self.execs.iter().copied())
            .filter(Proc::alive)
            .flat_map(|p| descendants(p.pid))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Host tids of every task (all threads of [`Container::pids`]).
    pub fn tasks(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self.pids().into_iter().flat_map(threads).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The namespace `kind` of the payload.
    pub fn ns(&self, kind: &str) -> NsId {
        ns_of(self.payload.pid, kind)
            .unwrap_or_else(|| panic!("{}: payload {} is gone", self.id, self.payload.pid))
    }

    /// The command prefix that runs a program inside, in the foreground.
    fn enter_prefix(&self) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self.runtime {
            Runtime::Runc => s(&["runc", "exec", &self.id]),
            Runtime::Lxc => s(&[
                "lxc-attach",
                "-P",
                &self.lxcpath(),
                "-n",
                &self.id,
                "--clear-env",
                "--",
            ]),
            Runtime::Nspawn | Runtime::Bwrap => {
                s(&["nsenter", "-t", &self.payload.pid.to_string(), "-a", "--"])
            }
            Runtime::Firejail | Runtime::FirejailHostNet => {
                s(&["firejail", "--quiet", &format!("--join={}", self.id), "--"])
            }
            Runtime::Netns => s(&["ip", "netns", "exec", &self.id]),
            Runtime::NspawnBare => s(&["nsenter", "-t", &self.payload.pid.to_string(), "-a", "--"]),
            Runtime::Crun => s(&["crun", "exec", &self.id]),
            Runtime::Docker
            | Runtime::Podman
            | Runtime::PodmanPod
            | Runtime::PodmanRootless
            | Runtime::Ctr => unreachable!("{:?} enters through enter_daemon", self.runtime),
        }
    }

    /// The command that runs a program inside a daemon-managed container, detached or in
    /// the foreground.
    fn enter_daemon(&self, detach: bool) -> Command {
        let mut cmd = match self.runtime {
            Runtime::Docker => super::machine::docker(),
            Runtime::Ctr => {
                let n = self.exec_seq.fetch_add(1, Ordering::Relaxed);
                let mut cmd = command("ctr");
                cmd.args(["task", "exec", "--exec-id", &format!("x{n}")]);
                if detach {
                    cmd.arg("-d");
                }
                cmd.arg(&self.id);
                return cmd;
            }
            rt => super::machine::podman(rt == Runtime::PodmanRootless),
        };
        cmd.arg("exec");
        if detach {
            cmd.arg("-d");
        }
        cmd.arg(&self.id);
        cmd
    }

    fn is_daemon(&self) -> bool {
        matches!(
            self.runtime,
            Runtime::Docker
                | Runtime::Podman
                | Runtime::PodmanPod
                | Runtime::PodmanRootless
                | Runtime::Ctr
        )
    }

    /// Starts `args` inside the running container, the runtime's way (`runc exec -d`,
    /// `lxc-attach`, `nsenter -a`, `firejail --join`, `ip netns exec`), and returns the
    /// host pid of the process running `args` once it has joined. It is then one of the
    /// container's tasks, until [`Container::stop`].
    pub fn exec(&mut self, args: &[&str]) -> u32 {
        assert!(!self.stopped, "exec into a stopped container");
        let proc = if self.is_daemon() {
            let mut cmd = self.enter_daemon(true);
            cmd.args(args);
            self.run_logged(cmd, &format!("exec{}", self.execs.len()));
            // The daemon starts it (a child of the shim or of an exec conmon): found by what
            // it runs and the container's pid namespace.
            let want: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let ns = self.ns("pid");
            let known = self.execs.clone();
            let pid = wait_for(
                START_LIMIT,
                || format!("{} exec {args:?}: no such process joined", self.id),
                || {
                    all_pids().into_iter().find(|&p| {
                        cmdline(p) == want
                            && ns_of(p, "pid") == Some(ns)
                            && !known.iter().any(|k| k.pid == p)
                    })
                },
            );
            Proc::of(pid).unwrap()
        } else if matches!(self.runtime, Runtime::Runc | Runtime::Crun) {
            let pidfile = self.dir().join(format!("exec{}.pid", self.execs.len()));
            let mut cmd = command(self.runtime.program());
            cmd.args(["exec", "-d", "--pid-file"])
                .arg(&pidfile)
                .arg(&self.id)
                .args(args);
            self.run_logged(cmd, "runc-exec");
            let pid: u32 = std::fs::read_to_string(&pidfile)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            Proc::of(pid).unwrap_or_else(|| panic!("runc exec: {pid} exited at once"))
        } else {
            let prefix = self.enter_prefix();
            let log = self.log_file(&format!("exec{}", self.execs.len()));
            let child = command(&prefix[0])
                .args(&prefix[1..])
                .args(args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", prefix[0]));
            let root = child.id();
            self.children.push(child);
            let want: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let key = self.runtime.exec_shares()[0];
            let ns = self.ns(key);
            // The joining process is the one running `args` with the container's namespace:
            // lxc-attach, nsenter -p and firejail --join leave a parent outside (or half in).
            let pid = wait_for(
                START_LIMIT,
                || format!("{} exec {args:?}: no such process joined", self.id),
                || {
                    descendants(root)
                        .into_iter()
                        .find(|&p| cmdline(p) == want && ns_of(p, key) == Some(ns))
                },
            );
            Proc::of(pid).unwrap()
        };
        self.execs.push(proc);
        proc.pid
    }

    /// Runs `/bin/sh -c script` inside to completion and returns its output (the same entry
    /// as [`Container::exec`], in the foreground).
    pub fn run(&self, script: &str) -> Output {
        if self.is_daemon() {
            return self
                .enter_daemon(false)
                .args(["/bin/sh", "-c", script])
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("{} exec: {e}", self.id));
        }
        let prefix = self.enter_prefix();
        command(&prefix[0])
            .args(&prefix[1..])
            .args(["/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", prefix[0]))
    }

    /// Runs a fork/exec loop inside: a shell that runs `/bin/true` `n` times, each child
    /// living well under a millisecond. Panics unless it succeeds.
    pub fn fork_loop(&self, n: u32) -> Output {
        let out = self.run(&format!(
            "i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done; echo done $i"
        ));
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("done"),
            "{}: fork loop failed: {out:?}",
            self.id
        );
        out
    }

    /// Stops the container and waits until every task it had is gone; then removes what
    /// the runtime left (runc state, LXC's directory, netns, the cgroups made for nspawn).
    pub fn stop(&mut self) {
        if let Err(e) = self.stop_inner() {
            panic!("{}: stop: {e}", self.id);
        }
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut before: Vec<Proc> = self.pids().into_iter().filter_map(Proc::of).collect();
        before.extend([self.init, self.payload]);
        before.extend(self.execs.iter().copied());
        let quiet = |prog: &str, args: &[&str]| {
            command(prog)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        };
        match self.runtime {
            Runtime::Runc | Runtime::Crun => {
                // KILL to init ends the pid namespace; exec'd processes die with it.
                let _ = quiet(self.runtime.program(), &["kill", &self.id, "KILL"]);
            }
            Runtime::Docker => {
                let _ = super::machine::docker()
                    .args(["rm", "-f", &self.id])
                    .stdin(Stdio::null())
                    .output();
            }
            Runtime::Podman | Runtime::PodmanRootless => {
                // -t 0: sleep as PID 1 ignores SIGTERM; podman would wait 10 s for it.
                let _ = super::machine::podman(self.runtime == Runtime::PodmanRootless)
                    .args(["rm", "-f", "-t", "0", &self.id])
                    .stdin(Stdio::null())
                    .output();
            }
            Runtime::PodmanPod => {
                let pod = self
                    .pod
                    .as_ref()
                    .map_or(format!("{}-pod", self.id), |p| p.0.clone());
                let _ = super::machine::podman(false)
                    .args(["pod", "rm", "-f", "-t", "0", &pod])
                    .stdin(Stdio::null())
                    .output();
            }
            Runtime::Ctr => {
                let _ = quiet("ctr", &["task", "kill", "-s", "KILL", &self.id]);
            }
            Runtime::Lxc => {
                let lxcpath = self.lxcpath();
                let _ = quiet("lxc-stop", &["-P", &lxcpath, "-n", &self.id, "-k"]);
            }
            Runtime::Nspawn | Runtime::NspawnBare => {
                // nspawn answers SIGTERM by killing its container.
                if let Some(c) = self.children.first() {
                    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                }
            }
            Runtime::Bwrap | Runtime::Firejail | Runtime::FirejailHostNet => {
                // Killing PID 1 of their pid namespace kills every task in it; the runtime
                // processes outside then exit on their own.
                if self.init.alive() {
                    unsafe { libc::kill(self.init.pid as i32, libc::SIGKILL) };
                }
            }
            Runtime::Netns => {
                for p in std::iter::once(self.payload).chain(self.execs.iter().copied()) {
                    if p.alive() {
                        unsafe { libc::kill(p.pid as i32, libc::SIGKILL) };
                    }
                }
            }
        }
        let end = Instant::now() + STOP_LIMIT;
        let mut result = Ok(());
        loop {
            let left: Vec<u32> = before.iter().filter(|p| p.alive()).map(|p| p.pid).collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() > end {
                result = Err(format!("tasks still alive after {STOP_LIMIT:?}: {left:?}"));
                for p in left {
                    unsafe { libc::kill(p as i32, libc::SIGKILL) };
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for c in &mut self.children {
            let end = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > end {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.cleanup();
        result
    }

    /// Removes what stays after the tasks are gone; each step is best effort, so that a
    /// failed test still cleans what it can.
    fn cleanup(&mut self) {
        let quiet = |prog: &str, args: &[&str]| {
            let _ = command(prog)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        match self.runtime {
            Runtime::Runc | Runtime::Crun => {
                quiet(self.runtime.program(), &["delete", "-f", &self.id]);
                // Deepest first; a cgroup another test's container is in stays (EBUSY).
                for dir in self.cgroups.drain(..).rev() {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
            Runtime::Ctr => {
                quiet("ctr", &["task", "rm", "-f", &self.id]);
                quiet("ctr", &["container", "rm", &self.id]);
            }
            Runtime::NspawnBare => {
                let _ = std::fs::remove_dir(format!("/run/systemd/nspawn/propagate/{}", self.id));
            }
            Runtime::Docker | Runtime::Podman | Runtime::PodmanPod | Runtime::PodmanRootless => {}
            Runtime::Lxc => {
                // Not lxc-destroy: it deletes the rootfs directory, the one every test shares.
                let _ = std::fs::remove_dir_all(Path::new(&self.lxcpath()).join(&self.id));
                // LXC removes these itself, but now and then leaves lxc.monitor.NAME behind
                // in one v1 hierarchy (seen in cpuset with two containers stopping at once).
                for h in hierarchies() {
                    for dir in [
                        format!("lxc.payload.{}", self.id),
                        format!("lxc.monitor.{}", self.id),
                    ] {
                        let dir = h.join(dir);
                        for _ in 0..50 {
                            if !dir.exists() {
                                break;
                            }
                            remove_cgroup_tree(&dir);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
                if LXC_LIVE.fetch_sub(1, Ordering::SeqCst) == 1 {
                    // LXC parks its monitor in lxc.pivot and never removes it; rmdir fails
                    // harmlessly (EBUSY) while another LXC container uses it.
                    for h in hierarchies() {
                        let _ = std::fs::remove_dir(h.join("lxc.pivot"));
                    }
                }
            }
            Runtime::Nspawn => {
                for dir in self.cgroups.drain(..).rev() {
                    remove_cgroup_tree(&dir);
                }
                for h in hierarchies() {
                    // Fails while another test's machine is in it, as it should.
                    let _ = std::fs::remove_dir(h.join("machine.slice"));
                }
                let _ = std::fs::remove_dir(format!("/run/systemd/nspawn/propagate/{}", self.id));
            }
            Runtime::Netns => quiet("ip", &["netns", "del", &self.id]),
            Runtime::Bwrap | Runtime::Firejail | Runtime::FirejailHostNet => {}
        }
    }

    fn lxcpath(&self) -> String {
        self.dir().join("lxc").to_str().unwrap().to_string()
    }

    fn log_file(&self, name: &str) -> File {
        File::create(self.dir().join(format!("{name}.log"))).unwrap()
    }

    fn log_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Runs a runtime command to completion with its output in DIR/NAME.log (never a pipe:
    /// a detached container inherits it and would hold it open), panicking with the log.
    fn run_logged(&self, mut cmd: Command, name: &str) {
        let log = self.log_file(name);
        let status = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            status.success(),
            "{} {name}: {status}: {}",
            self.id,
            self.log_text(name)
        );
    }

    /// Spawns a runtime that stays in the foreground, its output in DIR/NAME.log.
    fn spawn_logged(&mut self, mut cmd: Command, name: &str) -> u32 {
        let log = self.log_file(name);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Starts a runtime that stays in the foreground as long as its container runs (nspawn,
    /// bwrap, firejail, `ip netns exec`): waits for the payload below it, or for its end
    /// when running to the end.
    fn start_foreground(&mut self, cmd: Command, log: &str) {
        if self.to_end {
            self.run_logged(cmd, log);
        } else {
            let root = self.spawn_logged(cmd, log);
            self.find_payload_below(root, log);
        }
    }

    /// Waits for the payload among the descendants of `root`.
    fn find_payload_below(&mut self, root: u32, log: &str) {
        let want = self.args.clone();
        let pid = wait_for(
            START_LIMIT,
            || {
                format!(
                    "{}: payload never ran; log: {}",
                    self.id,
                    self.log_text(log)
                )
            },
            || {
                descendants(root).into_iter().find(|&p| {
                    cmdline(p) == want
                        // Until it has moved in, a fork of the runtime shows the same argv.
                        && self
                            .runtime
                            .isolated()
                            .iter()
                            .all(|k| ns_of(p, k) != Some(host_ns(k)))
                })
            },
        );
        self.payload = Proc::of(pid).unwrap();
    }

    /// The init is PID 1 of the payload's pid namespace: the payload or one of its ancestors.
    fn find_init(&mut self) {
        if !self.runtime.has_pid_ns() {
            self.init = self.payload;
            return;
        }
        let pidns = self.ns("pid");
        let mut p = self.payload.pid;
        loop {
            if inner_pid(p) == Some(1) && ns_of(p, "pid") == Some(pidns) {
                self.init = Proc::of(p).unwrap();
                return;
            }
            match Stat::read(p) {
                Some(st) if st.ppid > 1 => p = st.ppid,
                _ => panic!("{}: no PID 1 above payload {}", self.id, self.payload.pid),
            }
        }
    }

    fn start_runc(&mut self, layout: &RuncLayout) {
        let rootfs = rootfs::busybox_rootfs();
        let bundle = self.dir().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        // runc's default (no cgroupsPath) is CALLER'S-CGROUP/ID in each hierarchy, so the path
        // would depend on where the test runs (here v1 memory is under the session's
        // cgroup); absolute, it is /ID everywhere, as from a root caller.
        let cgroups_path = layout
            .cgroups_path
            .clone()
            .unwrap_or_else(|| format!("/{}", self.id));
        // The cgroups runc will make above the container's, to remove once it is gone:
        // shallowest first, as cleanup removes them in reverse.
        let above: Vec<&str> = cgroups_path
            .trim_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(Vec::new(), |(_, parents)| parents.to_vec());
        for h in hierarchies() {
            let mut dir = h.clone();
            for part in &above {
                dir = dir.join(part);
                self.cgroups.push(dir.clone());
            }
        }
        let annotations: serde_json::Map<String, serde_json::Value> = layout
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        let net = match layout.join_net.as_deref() {
            Some(path) => serde_json::json!({"type": "network", "path": path}),
            None => serde_json::json!({"type": "network"}),
        };
        // The smallest config runc accepts for a useful container: no terminal (detached
        // runs have none), a read-only shared rootfs, proc and a tmpfs /dev, no capabilities.
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": self.args,
                "env": ["PATH=/bin:/sbin"],
                "cwd": "/",
                "noNewPrivileges": true
            },
            "root": {"path": rootfs, "readonly": true},
            "hostname": self.id,
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "mode=755", "size=1024k"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev", "mode=1777", "size=1024k"]}
            ],
            "annotations": annotations,
            "linux": {
                "cgroupsPath": cgroups_path,
                "namespaces": [
                    {"type": "pid"}, net, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
                ]
            }
        });
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let mut cmd = command(self.runtime.program());
        cmd.current_dir(&bundle);
        if self.to_end {
            // In the foreground, runc and crun delete the container when its payload ends.
            cmd.args(["run", &self.id]);
            self.run_logged(cmd, self.runtime.program());
            return;
        }
        let pidfile = self.dir().join("init.pid");
        cmd.args(["run", "-d", "--pid-file"])
            .arg(&pidfile)
            .arg(&self.id);
        self.run_logged(cmd, self.runtime.program());
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        self.payload = Proc::of(pid).unwrap_or_else(|| {
            panic!(
                "{}: {} init {pid} exited: {}",
                self.id,
                self.runtime.program(),
                self.log_text(self.runtime.program())
            )
        });
    }

    fn start_lxc(&mut self) {
        let rootfs = rootfs::busybox_rootfs();
        let lxcpath = self.lxcpath();
        std::fs::create_dir(&lxcpath).unwrap();
        let conf = self.dir().join("lxc.conf");
        // net.0.type = empty: a network namespace with only lo (no bridge, no veth); apparmor
        // unconfined: this kernel has no AppArmor; no ttys or console: the payload needs none.
        std::fs::write(
            &conf,
            format!(
                "lxc.uts.name = {id}\n\
                 lxc.rootfs.path = dir:{root}\n\
                 lxc.rootfs.options = ro\n\
                 lxc.net.0.type = empty\n\
                 lxc.apparmor.profile = unconfined\n\
                 lxc.mount.auto = proc:mixed sys:ro\n\
                 lxc.autodev = 1\n\
                 lxc.init.cmd = {payload}\n\
                 lxc.console.path = none\n\
                 lxc.tty.max = 0\n\
                 lxc.pty.max = 0\n",
                id = self.id,
                root = rootfs.display(),
                payload = self.args.join(" "),
            ),
        )
        .unwrap();
        // Counted before anything can fail: Drop's cleanup counts it down.
        LXC_LIVE.fetch_add(1, Ordering::SeqCst);
        let mut cmd = command("lxc-create");
        cmd.args(["-P", &lxcpath, "-n", &self.id, "-t", "none", "-f"])
            .arg(&conf);
        self.run_logged(cmd, "lxc-create");
        let log = self.dir().join("lxc-debug.log");
        let mut cmd = command("lxc-start");
        let mode = if self.to_end { "-F" } else { "-d" };
        cmd.args(["-P", &lxcpath, "-n", &self.id, mode, "-l", "INFO", "-o"])
            .arg(&log);
        self.run_logged(cmd, "lxc-start");
        if self.to_end {
            return;
        }
        let out = command("lxc-info")
            .args(["-P", &lxcpath, "-n", &self.id, "-p", "-H"])
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "{}: lxc-info: {out:?}; {}",
                    self.id,
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        self.payload = Proc::of(pid).unwrap();
    }

    fn start_nspawn(&mut self) {
        let rootfs = rootfs::busybox_rootfs();
        // Without systemd as PID 1 nspawn cannot ask for a machine-NAME.scope, and with
        // --keep-unit it makes payload/ and supervisor/ under its caller's cgroup, where two
        // machines would share one payload cgroup. So the test makes the scope systemd would
        // have made, on the hierarchies systemd manages (name=systemd v1 and the v2 one), and
        // starts nspawn in it.
        let mut procs = Vec::new();
        let scopes = if self.runtime == Runtime::Nspawn {
            hierarchies()
        } else {
            Vec::new()
        };
        for h in scopes.into_iter().filter(|h| systemd_managed(h)) {
            let scope = h
                .join("machine.slice")
                .join(format!("machine-{}.scope", self.id));
            mkdir_cgroup(&scope);
            self.cgroups.push(scope.clone());
            procs.push(scope.join("cgroup.procs"));
        }
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@""#,
            "sh",
        ])
        .args(&procs)
        .arg("--")
        .arg(resolve("systemd-nspawn"))
        .arg("-D")
        .arg(rootfs)
        .args([
            "--read-only",
            "--register=no",
            "--keep-unit",
            "--as-pid2",
            "-M",
            &self.id,
            "-q",
            "--private-network",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
            "--",
        ])
        .args(&self.args);
        self.start_foreground(cmd, "nspawn");
    }

    fn start_bwrap(&mut self) {
        let rootfs = rootfs::busybox_rootfs();
        let mut cmd = command("bwrap");
        // --die-with-parent: a test binary killed outright takes its sandboxes along.
        cmd.args([
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup",
            "--die-with-parent",
            "--hostname",
            &self.id,
            "--ro-bind",
        ])
        .arg(rootfs)
        .args([
            "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--",
        ])
        .args(&self.args);
        self.start_foreground(cmd, "bwrap");
    }

    /// docker and podman: `run -d --name ID --network none IMAGE sleep`, in a pod of two
    /// for PodmanPod; the payload's pid, the full id and the image from `inspect`. Run to
    /// the end: `run --rm --cidfile F`, in a pod of one, the full id from the file.
    fn start_engine(&mut self) {
        use super::machine;
        let rootless = self.runtime == Runtime::PodmanRootless;
        let engine = || {
            if self.runtime == Runtime::Docker {
                machine::docker()
            } else {
                machine::podman(rootless)
            }
        };
        let image = if self.runtime == Runtime::Docker {
            machine::ensure_docker_image()
        } else {
            machine::ensure_podman_image(rootless)
        }
        .unwrap_or_else(|e| panic!("{}: image: {e}", self.id));
        // The client writes the id file; rootless podman's is the unprivileged user.
        let cid_dir = self.dir().join("cid");
        if self.to_end {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir(&cid_dir).unwrap();
            for d in [self.dir(), cid_dir.as_path()] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
        }
        let cidfile = cid_dir.join("id");
        let run = |name: &str, pod: Option<&str>, log: &str| {
            let mut cmd = engine();
            cmd.arg("run");
            if self.to_end {
                cmd.arg("--rm").arg("--cidfile").arg(&cidfile);
            } else {
                cmd.arg("-d");
            }
            cmd.args(["--name", name]);
            match pod {
                Some(pod) => cmd.args(["--pod", pod]),
                None => cmd.args(["--network", "none"]),
            };
            cmd.args(&self.run_args).arg(&image).args(&self.args);
            self.run_logged(cmd, log);
        };
        if self.runtime == Runtime::PodmanPod {
            let pod = format!("{}-pod", self.id);
            let mut cmd = engine();
            cmd.args(["pod", "create", "--name", &pod, "--network", "none"]);
            self.run_logged(cmd, "pod-create");
            let out = engine()
                .args(["pod", "inspect", "-f", "{{.Id}}", &pod])
                .output()
                .unwrap();
            let pod_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(pod_id.len(), 64, "{pod}: pod inspect: {out:?}");
            run(&self.id.clone(), Some(&pod), "run");
            if !self.to_end {
                run(&format!("{}-b", self.id), Some(&pod), "run-b");
            }
            self.pod = Some((pod, pod_id));
        } else {
            run(&self.id.clone(), None, "run");
        }
        self.image = Some(image.clone());
        if self.to_end {
            let id = std::fs::read_to_string(&cidfile).unwrap_or_default();
            assert_eq!(id.len(), 64, "{}: --cidfile gave {id:?}", self.id);
            self.full_id = Some(id);
            return;
        }
        let inspect = |what: &str| {
            let out = engine()
                .args(["inspect", "-f", what, &self.id])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}: inspect: {out:?}", self.id);
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let pid: u32 = inspect("{{.State.Pid}}").parse().unwrap();
        self.full_id = Some(inspect("{{.Id}}"));
        self.payload = Proc::of(pid).unwrap_or_else(|| {
            panic!(
                "{}: payload {pid} exited: {}",
                self.id,
                self.log_text("run")
            )
        });
    }

    /// `ctr run -d --rootfs ROOTFS ID sleep` in containerd's default namespace; the
    /// payload's pid from `ctr task ls`.
    fn start_ctr(&mut self) {
        let rootfs = rootfs::busybox_rootfs();
        let mut cmd = command("ctr");
        // No image, so no image config: PATH is the spec's, for `ctr task exec` too.
        cmd.args([
            "run",
            if self.to_end { "--rm" } else { "-d" },
            "--null-io",
            "--read-only",
            "--env",
            "PATH=/bin:/sbin",
        ])
        .arg("--rootfs")
        .arg(rootfs)
        .arg(&self.id)
        .args(&self.args);
        self.run_logged(cmd, "ctr");
        if self.to_end {
            return;
        }
        let out = command("ctr").args(["task", "ls"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let pid: u32 = text
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&self.id.as_str())).then(|| f.get(1)?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("{}: not in ctr task ls: {text}", self.id));
        self.payload = Proc::of(pid).unwrap();
    }

    fn start_firejail(&mut self) {
        let mut cmd = command("firejail");
        cmd.args(["--noprofile", "--quiet", &format!("--name={}", self.id)]);
        if self.runtime == Runtime::Firejail {
            cmd.arg("--net=none");
        }
        cmd.arg("--").args(&self.args);
        self.start_foreground(cmd, "firejail");
    }

    fn start_netns(&mut self) {
        let mut cmd = command("ip");
        cmd.args(["netns", "add", &self.id]);
        self.run_logged(cmd, "netns-add");
        let mut cmd = command("ip");
        cmd.args(["netns", "exec", &self.id]).args(&self.args);
        self.start_foreground(cmd, "netns-exec");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            eprintln!("{}: cleanup: {e}", self.id);
        }
    }
}

/// The mounted cgroup hierarchies' roots (v1 controllers, name=systemd, v2).
pub fn hierarchies() -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let mount = pre.split_whitespace().nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mount))
        })
        .collect()
}

/// The hierarchies systemd would put a scope in: the v2 one and v1 name=systemd.
fn systemd_managed(h: &Path) -> bool {
    h.join("cgroup.controllers").exists() || h.ends_with("systemd")
}

/// Makes a cgroup directory and its parents. Another test may rmdir an empty shared parent
/// (machine.slice) between our two mkdirs, so ENOENT is retried.
fn mkdir_cgroup(dir: &Path) {
    for _ in 0..50 {
        match std::fs::create_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("mkdir {}: {e}", dir.display()),
        }
    }
    panic!("mkdir {}: kept vanishing", dir.display());
}

/// rmdir of a cgroup and the cgroups below it, deepest first (files in them are not real).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The `/proc/PID/cgroup` lines of `pid`.
pub fn cgroup_lines(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Whether any task of the host set (all namespaces the host's) is among `tids`.
pub fn any_in_host(tids: &[u32]) -> Option<u32> {
    tids.iter()
        .copied()
        .find(|&t| KINDS.iter().all(|k| ns_of(t, k) == Some(host_ns(k))))
}
