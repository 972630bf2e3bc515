//! Names from the runtimes' own state: what `docker ps`, `podman ps`, `ctr task ls`,
//! `machinectl` or `firejail --list` would call a container, read from the files and command
//! lines the runtime leaves on the host. The cgroup path ([`crate::model::cgroup`]) says
//! which runtime and id where it can; this adds the rest and corrects what the path alone
//! gets wrong.
//!
//! | runtime | where the names are |
//! |---|---|
//! | docker | `/var/lib/docker/containers/<id>/config.v2.json`: `Name`, `Config.Image` |
//! | podman (rootful and rootless) | conmon (the container's parent): `-c <id> -n <name> -b <bundle>`; the bundle's storage root has `libpod/bolt_state.db`, whose container and pod configs are JSON values |
//! | containerd (`ctr`) | the shim (the container's parent): `-namespace <ns> -id <id>`; cgroup `/<ns>/<id>` with `/run/containerd/io.containerd.runtime.v2.task/<ns>/<id>` present |
//! | runc, crun | their state directories, `/run/runc/<id>` and `/run/crun/<id>`; before the payload is in its cgroup, the `run`/`create` command line's last argument |
//! | Kubernetes (containerd's CRI, CRI-O) | the CRI's annotations in the container's OCI bundle (`config.json`), found through containerd's task directory, conmon's `-b`, or runc's and crun's state |
//! | systemd-nspawn | the supervisor (the container's parent): `-M <name>`, else the `-D` directory's name |
//! | firejail | the outer firejail: `--name=<name>` |
//! | bubblewrap | the outer bwrap: `--hostname <name>` |
//!
//! The parsers are pure; [`refine`] does the reading.

use crate::model::Naming;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where the runtimes keep their state (the defaults: [`Roots::default`]).
#[derive(Debug, Clone)]
pub struct Roots {
    /// dockerd's data root (`/var/lib/docker`).
    pub docker: PathBuf,
    /// containerd's v2 task state (`/run/containerd/io.containerd.runtime.v2.task`).
    pub containerd_tasks: PathBuf,
    /// The parent of runc's and crun's state directories (`/run`).
    pub run: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            docker: "/var/lib/docker".into(),
            containerd_tasks: "/run/containerd/io.containerd.runtime.v2.task".into(),
            run: "/run".into(),
        }
    }
}

/// How many ancestors of a group's first process are looked at for the runtime's process:
/// the supervisor is its parent (conmon, the containerd shim, nspawn) or grandparent
/// (firejail's and bwrap's outer process above their own init).
const ANCESTORS: usize = 3;

/// Completes `naming`, read so far from the cgroup path of process `pid` (a group's first
/// process), from the runtimes' state at their default places.
pub fn refine(proc_root: &Path, pid: u32, naming: &mut Naming) {
    refine_at(&Roots::default(), proc_root, pid, naming);
}

/// [`refine`] with the runtimes' state under `roots`.
pub fn refine_at(roots: &Roots, proc_root: &Path, pid: u32, naming: &mut Naming) {
    let chain = ancestry(proc_root, pid);
    for argv in &chain {
        if apply_supervisor(argv, naming) {
            break;
        }
    }
    if naming.runtime.is_none() || naming.runtime.as_deref() == Some("runc") {
        let cgroup = naming.cgroup.clone().unwrap_or_default();
        if let Some((ns, id)) = containerd_cgroup(&cgroup) {
            if roots.containerd_tasks.join(ns).join(id).is_dir() {
                set_containerd(naming, ns, id);
            }
        }
    }
    match naming.runtime.as_deref() {
        Some("docker") => {
            if let Some(id) = naming.runtime_id.clone() {
                let file = roots
                    .docker
                    .join("containers")
                    .join(&id)
                    .join("config.v2.json");
                if let Some(c) = std::fs::read(file).ok().and_then(|b| docker_config(&b)) {
                    naming.name = Some(c.name);
                    naming.image = c.image;
                }
            }
        }
        Some("podman") => {
            if let Some(c) = chain.iter().find_map(|a| Conmon::parse(a)) {
                if let Some(db) = c.bolt_db().and_then(|p| std::fs::read(p).ok()) {
                    if let Some(ct) = libpod_container(&db, &c.id) {
                        naming.image = ct.image.or(naming.image.take());
                        if let Some(pod) = ct.pod {
                            naming.pod_name = libpod_pod_name(&db, &pod);
                            naming.pod_id = Some(pod);
                        }
                    }
                }
            }
        }
        Some("runc") => {
            if let Some(id) = naming.runtime_id.as_deref() {
                if let Some(rt) = oci_runtime(&roots.run, id) {
                    naming.runtime = Some(rt.to_string());
                }
            }
        }
        _ => {}
    }
    if kube_candidate(naming) {
        if let Some((pod, found_by)) = find_pod_names(roots, proc_root, pid, &chain, naming) {
            pod.apply(naming, found_by);
        }
    }
}

/// Whether a container may carry a CRI's annotations: under kubepods, or made by a runtime
/// that kubelets drive (docker and podman keep their own names, and podman writes CRI-O's
/// container-type annotation on containers of no pod).
fn kube_candidate(naming: &Naming) -> bool {
    naming.pod_uid.is_some()
        || matches!(
            naming.runtime.as_deref(),
            Some("containerd" | "cri-o" | "runc" | "crun" | "kubernetes")
        )
}

/// Looks for container `naming.runtime_id`'s OCI bundle where each runtime keeps it and
/// reads the pod's names from its annotations; returns them with the runtime whose state held
/// them. conmon's `-b` is CRI-O's bundle; containerd's task directory holds its config.json;
/// while the container is being made, the `runc`/`crun` `create`/`run` above its first
/// process (`chain`, from `pid` up) has it as `--bundle` or its working directory, before
/// runc's `state.json` (roots `/run/runc`, containerd's `/run/containerd/runc/<ns>`) or
/// crun's `status`, which name it once the container is made, exist.
fn find_pod_names(
    roots: &Roots,
    proc_root: &Path,
    pid: u32,
    chain: &[Vec<String>],
    naming: &Naming,
) -> Option<(PodNames, &'static str)> {
    let from = |spec: PathBuf| read_bounded(&spec).and_then(|b| pod_names(&b));
    if let Some(bundle) = chain
        .iter()
        .find_map(|a| Conmon::parse(a))
        .and_then(|c| c.bundle)
    {
        if let Some(p) = from(bundle.join("config.json")) {
            return Some((p, "cri-o"));
        }
    }
    let id = naming
        .runtime_id
        .as_deref()
        .filter(|id| safe_component(id))?;
    let namespaces = subdirs(&roots.containerd_tasks);
    for ns in &namespaces {
        if let Some(p) = from(roots.containerd_tasks.join(ns).join(id).join("config.json")) {
            return Some((p, "containerd"));
        }
    }
    // CRI-O runs runc and crun at their default roots too; its cgroup says it was CRI-O.
    let own = |rt: &'static str| {
        if naming.runtime.as_deref() == Some("cri-o") {
            "cri-o"
        } else {
            rt
        }
    };
    let mut p = pid;
    for argv in chain {
        if let Some((rt, bundle)) = oci_create(argv) {
            let bundle = match bundle {
                Some(b) if b.is_absolute() => Some(b),
                b => std::fs::read_link(proc_root.join(p.to_string()).join("cwd"))
                    .ok()
                    .map(|cwd| b.map_or(cwd.clone(), |b| cwd.join(b))),
            };
            let under_containerd = opt(argv, "--root")
                .is_some_and(|r| Path::new(r).starts_with(roots.run.join("containerd")));
            if let Some(names) = bundle.and_then(|b| from(b.join("config.json"))) {
                let rt = if under_containerd {
                    "containerd"
                } else {
                    own(rt)
                };
                return Some((names, rt));
            }
        }
        p = match std::fs::read_to_string(proc_root.join(p.to_string()).join("stat"))
            .ok()
            .and_then(|s| stat_ppid(&s))
        {
            Some(pp) => pp,
            None => break,
        };
    }
    let containerd_runc = roots.run.join("containerd/runc");
    for ns in subdirs(&containerd_runc) {
        let state = containerd_runc.join(ns).join(id).join("state.json");
        if let Some(p) = read_bounded(&state)
            .and_then(|b| runc_bundle(&b))
            .and_then(|b| from(b.join("config.json")))
        {
            return Some((p, "containerd"));
        }
    }
    let runc_state = roots.run.join("runc").join(id).join("state.json");
    if let Some(p) = read_bounded(&runc_state)
        .and_then(|b| runc_bundle(&b))
        .and_then(|b| from(b.join("config.json")))
    {
        return Some((p, own("runc")));
    }
    let crun_status = roots.run.join("crun").join(id).join("status");
    if let Some(p) = read_bounded(&crun_status)
        .and_then(|b| crun_bundle(&b))
        .and_then(|b| from(b.join("config.json")))
    {
        return Some((p, own("crun")));
    }
    None
}

/// An OCI runtime's command line that makes a container (`runc [global options] create|run
/// [--bundle DIR] ID`, crun alike): the runtime and the `--bundle`/`-b` it was given (else it
/// is the command's working directory). `runc init`, the container's own first process, is
/// not one.
fn oci_create(argv: &[String]) -> Option<(&'static str, Option<PathBuf>)> {
    let rt = match argv.first()?.rsplit('/').next()? {
        "runc" => "runc",
        "crun" => "crun",
        _ => return None,
    };
    if argv.iter().any(|a| a == "init") || !argv.iter().any(|a| a == "create" || a == "run") {
        return None;
    }
    let bundle = opt(argv, "--bundle").or_else(|| opt(argv, "-b"));
    Some((rt, bundle.map(PathBuf::from)))
}

/// A path component that stays one: no separator, no `.` or `..`.
fn safe_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/')
}

/// The names of the directories in `dir` (containerd's namespaces), none when unreadable.
fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        e.file_type().ok()?.is_dir().then_some(())?;
        e.file_name().into_string().ok()
    })
    .collect()
}

/// The most of a runtime's state file that is read: specs and runc's state are tens of KB;
/// anything larger is no file of theirs.
const MAX_STATE_BYTES: u64 = 1 << 20;

/// The contents of `path` if it is at most [`MAX_STATE_BYTES`] long.
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_STATE_BYTES + 1).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 <= MAX_STATE_BYTES).then_some(buf)
}

/// The bundle directory from runc's `state.json`: runc keeps it among the config's labels as
/// `bundle=<dir>` (next to the spec's annotations as `key=value`).
pub fn runc_bundle(state: &[u8]) -> Option<PathBuf> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        labels: Vec<String>,
    }
    #[derive(Deserialize)]
    struct State {
        config: Config,
    }
    let s: State = serde_json::from_slice(state).ok()?;
    s.config
        .labels
        .iter()
        .find_map(|l| l.strip_prefix("bundle="))
        .filter(|b| b.starts_with('/'))
        .map(PathBuf::from)
}

/// The bundle directory from crun's `status` file (`"bundle"`).
pub fn crun_bundle(status: &[u8]) -> Option<PathBuf> {
    #[derive(Deserialize)]
    struct Status {
        bundle: String,
    }
    let s: Status = serde_json::from_slice(status).ok()?;
    s.bundle.starts_with('/').then(|| PathBuf::from(s.bundle))
}

/// What a Kubernetes node's container runtime wrote of a pod into a container's OCI spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodNames {
    /// The pod's namespace.
    pub namespace: Option<String>,
    /// The pod's name.
    pub pod_name: String,
    /// The pod's UID.
    pub pod_uid: Option<String>,
    /// The container's name in the pod; [`POD_SANDBOX_NAME`] for the pod's sandbox.
    pub container: Option<String>,
    /// True for the pod's sandbox (the pause or infra container holding its namespaces).
    pub sandbox: bool,
    /// The image as the kubelet asked for it.
    pub image: Option<String>,
}

/// The name given to a pod's sandbox (pause) container: the kubelet's own, which it writes
/// as the sandbox's `io.kubernetes.container.name` label. Container names in a pod are DNS
/// labels, lower case, so it never clashes with one.
pub const POD_SANDBOX_NAME: &str = "POD";

/// The pod's names from an OCI `config.json`'s annotations: containerd's CRI plugin writes
/// `io.kubernetes.cri.*` (sandbox-namespace, sandbox-name, sandbox-uid, container-name,
/// container-type, image-name); CRI-O copies the kubelet's labels (`io.kubernetes.pod.*`,
/// `io.kubernetes.container.name`) and adds `io.kubernetes.cri-o.*` (ContainerType,
/// ImageName, and the kubelet-style `Name` and `SandboxName`,
/// `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`, used when the labels are absent).
/// None without a pod name: not a Kubernetes container.
pub fn pod_names(config: &[u8]) -> Option<PodNames> {
    #[derive(Deserialize, Default)]
    struct Annotations {
        #[serde(rename = "io.kubernetes.cri.sandbox-namespace")]
        cri_namespace: Option<String>,
        #[serde(rename = "io.kubernetes.cri.sandbox-name")]
        cri_pod: Option<String>,
        #[serde(rename = "io.kubernetes.cri.sandbox-uid")]
        cri_uid: Option<String>,
        #[serde(rename = "io.kubernetes.cri.container-name")]
        cri_container: Option<String>,
        #[serde(rename = "io.kubernetes.cri.container-type")]
        cri_type: Option<String>,
        #[serde(rename = "io.kubernetes.cri.image-name")]
        cri_image: Option<String>,
        #[serde(rename = "io.kubernetes.pod.namespace")]
        pod_namespace: Option<String>,
        #[serde(rename = "io.kubernetes.pod.name")]
        pod_name: Option<String>,
        #[serde(rename = "io.kubernetes.pod.uid")]
        pod_uid: Option<String>,
        #[serde(rename = "io.kubernetes.container.name")]
        container_name: Option<String>,
        #[serde(rename = "io.kubernetes.cri-o.ContainerType")]
        crio_type: Option<String>,
        #[serde(rename = "io.kubernetes.cri-o.ImageName")]
        crio_image: Option<String>,
        #[serde(rename = "io.kubernetes.cri-o.Name")]
        crio_name: Option<String>,
        #[serde(rename = "io.kubernetes.cri-o.SandboxName")]
        crio_sandbox_name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        annotations: Option<Annotations>,
    }
    let a = serde_json::from_slice::<Spec>(config)
        .ok()?
        .annotations
        .unwrap_or_default();
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let sandbox = a.cri_type.as_deref().or(a.crio_type.as_deref()) == Some("sandbox");
    // CRI-O's kubelet-style names: the sandbox's is k8s_<pod>_<ns>_<uid>_<attempt>, a
    // container's k8s_<container>_<pod>_<ns>_<uid>_<attempt>; none of the parts holds `_`.
    let parts = |s: &Option<String>, n: usize| -> Option<Vec<String>> {
        let p: Vec<String> = s
            .as_deref()?
            .strip_prefix("k8s_")?
            .split('_')
            .map(str::to_string)
            .collect();
        (p.len() == n && p.iter().all(|x| !x.is_empty())).then_some(p)
    };
    let kube_sandbox = parts(&a.crio_sandbox_name, 4);
    let kube_name = parts(&a.crio_name, if sandbox { 4 } else { 5 });
    let from_crio = |i: usize| {
        kube_sandbox.as_ref().map(|p| p[i].clone()).or_else(|| {
            kube_name
                .as_ref()
                .map(|p| p[i + usize::from(!sandbox)].clone())
        })
    };
    let pod_name = nonempty(a.cri_pod)
        .or(nonempty(a.pod_name))
        .or_else(|| from_crio(0))?;
    let container = if sandbox {
        Some(POD_SANDBOX_NAME.to_string())
    } else {
        nonempty(a.cri_container)
            .or(nonempty(a.container_name))
            .or_else(|| kube_name.as_ref().map(|p| p[0].clone()))
    };
    Some(PodNames {
        namespace: nonempty(a.cri_namespace)
            .or(nonempty(a.pod_namespace))
            .or_else(|| from_crio(1)),
        pod_name,
        pod_uid: nonempty(a.cri_uid)
            .or(nonempty(a.pod_uid))
            .or_else(|| from_crio(2)),
        container,
        sandbox,
        image: nonempty(a.cri_image).or(nonempty(a.crio_image)),
    })
}

impl PodNames {
    /// Names a container with its pod's names; `runtime` is the runtime whose state held
    /// them. The Kubernetes namespace replaces containerd's (`k8s.io`, the shim's); the runtime
    /// id stays the container's.
    pub fn apply(self, naming: &mut Naming, runtime: &str) {
        naming.runtime = Some(runtime.to_string());
        naming.namespace = self.namespace.or(naming.namespace.take());
        naming.pod_name = Some(self.pod_name);
        naming.pod_uid = self.pod_uid.or(naming.pod_uid.take());
        if let Some(c) = self.container {
            naming.name = Some(c);
        }
        if let Some(i) = self.image {
            naming.image = Some(i);
        }
    }
}

/// Fills `naming` from a runtime process's command line; true when `argv` is one.
fn apply_supervisor(argv: &[String], naming: &mut Naming) -> bool {
    let Some(prog) = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a)) else {
        return false;
    };
    // runc and crun are what a lone cgroup path or the creating command suggest, for
    // containers of every engine: the engine's own process knows better.
    let weak = matches!(
        naming.runtime.as_deref(),
        None | Some("runc") | Some("crun")
    );
    match prog {
        "conmon" => {
            let Some(c) = Conmon::parse(argv) else {
                return false;
            };
            // CRI-O runs conmon too; its cgroup names it, and its names are the kubelet's.
            if weak || naming.runtime.as_deref() == Some("podman") {
                naming.runtime = Some("podman".into());
                naming.runtime_id = Some(c.id);
                naming.name = c.name;
            }
        }
        p if p.starts_with("containerd-shim") => {
            let Some((ns, id)) = shim_args(argv) else {
                return false;
            };
            if ns == "moby" {
                if weak || naming.runtime.as_deref() == Some("docker") {
                    naming.runtime = Some("docker".into());
                    naming.runtime_id = Some(id.to_string());
                    naming.name = Some(id.to_string());
                }
            } else if weak
                || (naming.runtime.as_deref() == Some("containerd")
                    && naming.runtime_id.as_deref().is_none_or(|c| c == id))
            {
                set_containerd(naming, ns, id);
            } else {
                // Kubernetes: one shim serves a pod, `-id` is the sandbox's, so the cgroup's
                // id stays; the shim still knows containerd's namespace.
                naming.namespace.get_or_insert_with(|| ns.to_string());
            }
        }
        "systemd-nspawn" => {
            let Some(name) = nspawn_machine(argv) else {
                return false;
            };
            if weak || naming.runtime.as_deref() == Some("nspawn") {
                naming.runtime = Some("nspawn".into());
                naming.runtime_id = Some(name.clone());
                naming.name = Some(name);
            }
        }
        "firejail" => {
            let name = firejail_name(argv);
            if weak || naming.runtime.as_deref() == Some("firejail") {
                naming.runtime = Some("firejail".into());
                if name.is_some() {
                    naming.name = name;
                }
            }
        }
        // crun clones the container before it moves it into its cgroup: until then only its
        // command line (the payload's own, until exec) names it. Engines run them too, so
        // the walk goes on to the engine's process above.
        "runc" | "crun" => {
            if let Some(id) = oci_create_id(argv).filter(|_| weak) {
                naming.runtime = Some(prog.to_string());
                naming.runtime_id = Some(id.to_string());
                naming.name = Some(id.to_string());
            }
            return false;
        }
        "bwrap" => {
            let host = bwrap_hostname(argv);
            if weak || naming.runtime.as_deref() == Some("bubblewrap") {
                naming.runtime = Some("bubblewrap".into());
                if host.is_some() {
                    naming.name = host;
                }
            }
        }
        _ => return false,
    }
    true
}

fn set_containerd(naming: &mut Naming, ns: &str, id: &str) {
    naming.runtime = Some("containerd".into());
    naming.namespace = Some(ns.to_string());
    naming.runtime_id = Some(id.to_string());
    naming.name = Some(id.to_string());
}

/// The command lines of `pid` and of up to [`ANCESTORS`] of its ancestors, nearest first,
/// stopping below PID 1 and kthreadd.
fn ancestry(proc_root: &Path, pid: u32) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut p = pid;
    for _ in 0..=ANCESTORS {
        if p <= 2 {
            break;
        }
        let dir = proc_root.join(p.to_string());
        out.push(split_cmdline(
            &std::fs::read(dir.join("cmdline")).unwrap_or_default(),
        ));
        match std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| stat_ppid(&s))
        {
            Some(pp) => p = pp,
            None => break,
        }
    }
    out
}

/// The parent pid from the text of /proc/PID/stat (comm may hold spaces and parentheses).
pub fn stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// /proc/PID/cmdline split at NULs.
pub fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The value of option `name` in `argv`: `name VALUE` or `name=VALUE`.
fn opt<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            return None;
        }
        if a == name {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
    }
    None
}

/// What docker keeps of a container, from its config.v2.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerContainer {
    /// The full id.
    pub id: String,
    /// The name as `docker ps` prints it (no leading slash).
    pub name: String,
    /// The image as the user gave it (`Config.Image`).
    pub image: Option<String>,
}

/// Parses docker's `containers/<id>/config.v2.json`.
pub fn docker_config(json: &[u8]) -> Option<DockerContainer> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "Image")]
        image: Option<String>,
    }
    #[derive(Deserialize)]
    struct V2 {
        #[serde(rename = "ID")]
        id: String,
        #[serde(rename = "Name")]
        name: String,
        #[serde(rename = "Config")]
        config: Option<Config>,
    }
    let v: V2 = serde_json::from_slice(json).ok()?;
    Some(DockerContainer {
        id: v.id,
        name: v.name.trim_start_matches('/').to_string(),
        image: v.config.and_then(|c| c.image).filter(|i| !i.is_empty()),
    })
}

/// conmon's command line, as podman starts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conmon {
    /// The container id (`-c`).
    pub id: String,
    /// The container name (`-n`).
    pub name: Option<String>,
    /// The OCI bundle (`-b`): `<storage root>/<driver>-containers/<id>/userdata`.
    pub bundle: Option<PathBuf>,
}

impl Conmon {
    /// Parses conmon's argv; None without a `-c` id.
    pub fn parse(argv: &[String]) -> Option<Conmon> {
        let prog = argv.first()?;
        if prog.rsplit('/').next() != Some("conmon") {
            return None;
        }
        let get = |short: &str, long: &str| opt(argv, short).or_else(|| opt(argv, long));
        Some(Conmon {
            id: get("-c", "--cid")?.to_string(),
            name: get("-n", "--name").map(str::to_string),
            bundle: get("-b", "--bundle").map(PathBuf::from),
        })
    }

    /// libpod's database: `<storage root>/libpod/bolt_state.db`, the storage root being
    /// three levels above the bundle.
    pub fn bolt_db(&self) -> Option<PathBuf> {
        let root = self.bundle.as_deref()?.parent()?.parent()?.parent()?;
        Some(root.join("libpod/bolt_state.db"))
    }
}

/// What libpod's database says of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibpodContainer {
    /// Its name.
    pub name: String,
    /// Its pod's id, if it is in one.
    pub pod: Option<String>,
    /// The image as `podman ps` prints it (`rootfsImageName`).
    pub image: Option<String>,
}

/// Container `id`'s config in libpod's bolt database (`bolt_state.db`). Bolt keeps each
/// value as contiguous bytes (pages of one value are consecutive), and libpod stores a
/// container's config as one JSON object beginning `{"spec":` and holding
/// `"id":"<id>","name":…`: found by searching the file, read with a streaming JSON parser
/// that stops at the object's end. Ids are unique, so a stale copy in a freed page says
/// the same.
pub fn libpod_container(db: &[u8], id: &str) -> Option<LibpodContainer> {
    #[derive(Deserialize)]
    struct Cfg {
        id: String,
        name: String,
        pod: Option<String>,
        #[serde(rename = "rootfsImageName")]
        image: Option<String>,
    }
    let needle = format!("\"id\":\"{id}\",\"name\":\"");
    for at in find_all(db, needle.as_bytes()) {
        let Some(start) = rfind(&db[..at], b"{\"spec\":") else {
            continue;
        };
        let mut s = serde_json::Deserializer::from_slice(&db[start..]).into_iter::<Cfg>();
        if let Some(Ok(c)) = s.next() {
            if c.id == id {
                return Some(LibpodContainer {
                    name: c.name,
                    pod: c.pod.filter(|p| !p.is_empty()),
                    image: c.image.filter(|i| !i.is_empty()),
                });
            }
        }
    }
    None
}

/// Pod `id`'s name in libpod's bolt database: its config is a JSON object beginning
/// `{"id":"<id>","name":"<name>"`.
pub fn libpod_pod_name(db: &[u8], id: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Pod {
        id: String,
        name: String,
    }
    let needle = format!("{{\"id\":\"{id}\",\"name\":\"");
    for at in find_all(db, needle.as_bytes()) {
        let mut s = serde_json::Deserializer::from_slice(&db[at..]).into_iter::<Pod>();
        if let Some(Ok(p)) = s.next() {
            if p.id == id {
                return Some(p.name);
            }
        }
    }
    None
}

fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let i = hay
            .get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)?;
        let at = from + i;
        from = at + 1;
        Some(at)
    })
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// (namespace, id) from a containerd shim's command line (`-namespace NS -id ID`).
pub fn shim_args(argv: &[String]) -> Option<(&str, &str)> {
    Some((opt(argv, "-namespace")?, opt(argv, "-id")?))
}

/// (namespace, id) when `path` has the shape of containerd's default cgroupsPath,
/// `/<namespace>/<id>`. Any two-component path has it: the caller confirms with
/// containerd's state.
pub fn containerd_cgroup(path: &str) -> Option<(&str, &str)> {
    let (ns, id) = path.strip_prefix('/')?.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    (ok(ns) && ok(id)).then_some((ns, id))
}

/// Which OCI runtime keeps state for container `id` under `run`: crun in `crun/<id>`, runc
/// in `runc/<id>` (their default roots).
pub fn oci_runtime(run: &Path, id: &str) -> Option<&'static str> {
    if id.is_empty() || id.contains('/') {
        return None;
    }
    if run.join("crun").join(id).is_dir() {
        Some("crun")
    } else if run.join("runc").join(id).is_dir() {
        Some("runc")
    } else {
        None
    }
}

/// The machine name of a systemd-nspawn command line: `-M`/`--machine`, else the last
/// component of the `-D`/`--directory` (or `-i`/`--image`) it boots, as nspawn itself
/// defaults.
pub fn nspawn_machine(argv: &[String]) -> Option<String> {
    if let Some(m) = opt(argv, "-M").or_else(|| opt(argv, "--machine")) {
        return Some(m.to_string());
    }
    for a in argv.iter().take_while(|a| *a != "--") {
        if let Some(m) = a.strip_prefix("-M").filter(|m| !m.is_empty()) {
            return Some(m.to_string());
        }
    }
    let dir = ["-D", "--directory", "-i", "--image"]
        .iter()
        .find_map(|o| opt(argv, o))?;
    let base = Path::new(dir.trim_end_matches('/')).file_name()?.to_str()?;
    Some(base.to_string())
}

/// firejail's `--name=NAME`.
pub fn firejail_name(argv: &[String]) -> Option<String> {
    opt(argv, "--name").map(str::to_string)
}

/// The container id of a `runc`/`crun` command line that makes one (`run`, `create`): its
/// last argument, after the global and the subcommand's options.
pub fn oci_create_id(argv: &[String]) -> Option<&str> {
    let sub = argv
        .iter()
        .skip(1)
        .position(|a| a == "run" || a == "create")?;
    let id = argv.last()?;
    (sub + 2 < argv.len() && !id.starts_with('-')).then_some(id.as_str())
}

/// bubblewrap's `--hostname NAME`.
pub fn bwrap_hostname(argv: &[String]) -> Option<String> {
    opt(argv, "--hostname").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/runtime_state")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    const DOCKER_ID: &str = "633ef3e1d18f90fddb5a9c5c9fea74b7b90a0543a6e4b41a59495da2998c9808";
    const POD_CT: &str = "003372eaa932bebaad96fcf26a9bd3533b4ecc8ecc934f4edbe82ac3f2aa2234";
    const POD: &str = "54b7b9e45a0c10d09bd829678316c602e782c8861f6cf245212e20322d3b639f";
    const LONE_CT: &str = "abcfc6fa62f6b8eeb67f797f168f809d67a2b096e98c205ce4a528fd507b0b8f";

    #[test]
    fn docker_config_gives_name_image_and_id() {
        let c = docker_config(&fixture("docker-config.v2.json")).unwrap();
        assert_eq!(c.id, DOCKER_ID);
        assert_eq!(c.name, "nswdk1");
        assert_eq!(c.image.as_deref(), Some("nswatch-busybox:test"));
        assert_eq!(docker_config(b"{}"), None);
        assert_eq!(docker_config(b"not json"), None);
    }

    #[test]
    fn conmon_command_line() {
        let raw = fixture("conmon.cmdline");
        let c = Conmon::parse(&split_cmdline(&raw)).unwrap();
        assert_eq!(c.id, LONE_CT);
        assert_eq!(c.name.as_deref(), Some("nswpd1"));
        assert_eq!(
            c.bolt_db().unwrap(),
            Path::new("/var/lib/containers/storage/libpod/bolt_state.db")
        );
        let rootless = fixture("conmon-rootless.cmdline");
        let c = Conmon::parse(&split_cmdline(&rootless)).unwrap();
        assert_eq!(c.name.as_deref(), Some("nswrl1"));
        assert_eq!(
            c.bolt_db().unwrap(),
            Path::new("/home/nswpodman/.local/share/containers/storage/libpod/bolt_state.db")
        );
        assert_eq!(Conmon::parse(&argv("/usr/bin/sleep -c x")), None);
    }

    #[test]
    fn libpod_database_gives_pod_and_image() {
        let db = fixture("bolt_state.excerpt");
        let c = libpod_container(&db, POD_CT).unwrap();
        assert_eq!(c.name, "nswpodc1");
        assert_eq!(c.pod.as_deref(), Some(POD));
        assert_eq!(c.image.as_deref(), Some("localhost/nswatch-busybox:test"));
        assert_eq!(libpod_pod_name(&db, POD).as_deref(), Some("nswpod1"));
        let lone = libpod_container(&db, LONE_CT).unwrap();
        assert_eq!(lone.name, "nswpd1");
        assert_eq!(lone.pod, None);
        // A prefix of an id is not the id.
        assert_eq!(libpod_container(&db, &POD_CT[..12]), None);
        assert_eq!(libpod_pod_name(&db, &POD[..12]), None);
    }

    #[test]
    fn containerd_shim_and_cgroup() {
        let shim = argv(
            "/usr/bin/containerd-shim-runc-v2 -namespace default -id web1 -address /run/containerd/containerd.sock",
        );
        assert_eq!(shim_args(&shim), Some(("default", "web1")));
        assert_eq!(
            containerd_cgroup("/default/web1"),
            Some(("default", "web1"))
        );
        assert_eq!(containerd_cgroup("/k8s.io/abc"), Some(("k8s.io", "abc")));
        assert_eq!(containerd_cgroup("/payload"), None);
        assert_eq!(containerd_cgroup("/a/b/c"), None);
        assert_eq!(containerd_cgroup("/a/.."), None);
        assert_eq!(containerd_cgroup("/"), None);
    }

    #[test]
    fn nspawn_firejail_bwrap_names() {
        let nspawn = argv(
            "/usr/bin/systemd-nspawn -D /tmp/root --read-only --register=no --keep-unit --as-pid2 -M web2 -q -- /bin/sleep 1",
        );
        assert_eq!(nspawn_machine(&nspawn).as_deref(), Some("web2"));
        assert_eq!(
            nspawn_machine(&argv("systemd-nspawn --machine=db -D /x")).as_deref(),
            Some("db")
        );
        assert_eq!(
            nspawn_machine(&argv("systemd-nspawn -D /var/lib/machines/deb12/ -- sh")).as_deref(),
            Some("deb12")
        );
        // Options after -- belong to the payload.
        assert_eq!(nspawn_machine(&argv("systemd-nspawn -- sh -M x")), None);
        let fj = argv("firejail --noprofile --quiet --name=fj1 --net=none -- /bin/sleep 1");
        assert_eq!(firejail_name(&fj).as_deref(), Some("fj1"));
        let bw = argv("bwrap --unshare-uts --hostname box7 --ro-bind / / -- /bin/sleep 1");
        assert_eq!(bwrap_hostname(&bw).as_deref(), Some("box7"));
        assert_eq!(bwrap_hostname(&argv("bwrap -- sh --hostname x")), None);
    }

    #[test]
    fn runc_and_crun_ids_from_their_command_lines() {
        assert_eq!(oci_create_id(&argv("crun run web1")), Some("web1"));
        let podman = argv(
            "/usr/bin/crun --root /run/crun --log-format json create --bundle /b --pid-file /p 8a1f",
        );
        assert_eq!(oci_create_id(&podman), Some("8a1f"));
        assert_eq!(
            oci_create_id(&argv("runc run -d --pid-file /p c2")),
            Some("c2")
        );
        // `runc init` (runc's re-exec inside the container) and id-less lines name nothing.
        assert_eq!(oci_create_id(&argv("runc init")), None);
        assert_eq!(oci_create_id(&argv("crun run")), None);
        assert_eq!(oci_create_id(&argv("crun run -d")), None);
        assert_eq!(oci_create_id(&argv("runc kill c2 KILL")), None);
    }

    #[test]
    fn ppid_from_stat_with_odd_comm() {
        assert_eq!(stat_ppid("42 (a) b (c)) S 7 42 42 0"), Some(7));
        assert_eq!(stat_ppid("garbage"), None);
    }

    /// A /proc with processes (pid, ppid, argv) and state roots, in a temporary directory.
    struct FakeHost {
        dir: tempfile::TempDir,
    }

    impl FakeHost {
        fn new(procs: &[(u32, u32, &[u8])]) -> FakeHost {
            let dir = tempfile::tempdir().unwrap();
            for (pid, ppid, cmdline) in procs {
                let p = dir.path().join("proc").join(pid.to_string());
                std::fs::create_dir_all(&p).unwrap();
                std::fs::write(p.join("cmdline"), cmdline).unwrap();
                std::fs::write(p.join("stat"), format!("{pid} (x) S {ppid} 0 0")).unwrap();
            }
            FakeHost { dir }
        }

        fn roots(&self) -> Roots {
            Roots {
                docker: self.dir.path().join("docker"),
                containerd_tasks: self.dir.path().join("tasks"),
                run: self.dir.path().join("run"),
            }
        }

        fn refine(&self, pid: u32, mut naming: Naming) -> Naming {
            refine_at(
                &self.roots(),
                &self.dir.path().join("proc"),
                pid,
                &mut naming,
            );
            naming
        }

        fn mkdir(&self, rel: &str) {
            std::fs::create_dir_all(self.dir.path().join(rel)).unwrap();
        }
    }

    fn from_cgroup(runtime: &str, id: &str, cgroup: &str) -> Naming {
        Naming {
            runtime: Some(runtime.into()),
            runtime_id: Some(id.into()),
            name: Some(id.into()),
            cgroup: Some(cgroup.into()),
            ..Naming::default()
        }
    }

    #[test]
    fn docker_names_from_its_state() {
        let shim =
            format!("/usr/bin/containerd-shim-runc-v2\0-namespace\0moby\0-id\0{DOCKER_ID}\0");
        let h = FakeHost::new(&[
            (100, 50, shim.as_bytes()),
            (101, 100, b"/bin/sleep\x00100000\0"),
        ]);
        let dir = format!("docker/containers/{DOCKER_ID}");
        h.mkdir(&dir);
        std::fs::write(
            h.dir.path().join(&dir).join("config.v2.json"),
            fixture("docker-config.v2.json"),
        )
        .unwrap();
        let n = h.refine(
            101,
            from_cgroup("docker", DOCKER_ID, &format!("/docker/{DOCKER_ID}")),
        );
        assert_eq!(n.runtime.as_deref(), Some("docker"));
        assert_eq!(n.runtime_id.as_deref(), Some(DOCKER_ID));
        assert_eq!(n.name.as_deref(), Some("nswdk1"));
        assert_eq!(n.image.as_deref(), Some("nswatch-busybox:test"));
    }

    #[test]
    fn podman_pod_names_from_conmon_and_libpod() {
        let root = tempfile::tempdir().unwrap();
        let bundle = root
            .path()
            .join(format!("overlay-containers/{POD_CT}/userdata"));
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(root.path().join("libpod")).unwrap();
        std::fs::write(
            root.path().join("libpod/bolt_state.db"),
            fixture("bolt_state.excerpt"),
        )
        .unwrap();
        let conmon = format!(
            "/usr/bin/conmon\0--api-version\x001\0-c\0{POD_CT}\0-u\0{POD_CT}\0-r\0/usr/bin/crun\0-b\0{}\0-n\0nswpodc1\0",
            bundle.display()
        );
        let h = FakeHost::new(&[(200, 1, conmon.as_bytes()), (201, 200, b"/bin/sleep\0")]);
        // Rootless: no cgroup of its own, nothing named yet.
        // Named by its creating command so far (crun, census's fallback).
        let n = h.refine(
            201,
            Naming {
                runtime: Some("crun".into()),
                ..Naming::default()
            },
        );
        assert_eq!(n.runtime.as_deref(), Some("podman"));
        assert_eq!(n.runtime_id.as_deref(), Some(POD_CT));
        assert_eq!(n.name.as_deref(), Some("nswpodc1"));
        assert_eq!(n.pod_id.as_deref(), Some(POD));
        assert_eq!(n.pod_name.as_deref(), Some("nswpod1"));
        assert_eq!(n.image.as_deref(), Some("localhost/nswatch-busybox:test"));
    }

    #[test]
    fn ctr_names_from_shim_or_confirmed_cgroup() {
        let shim = b"/usr/bin/containerd-shim-runc-v2\0-namespace\0default\0-id\0web1\0";
        let h = FakeHost::new(&[(300, 1, shim), (301, 300, b"/bin/sleep\0")]);
        let n = h.refine(
            301,
            Naming {
                cgroup: Some("/default/web1".into()),
                ..Naming::default()
            },
        );
        assert_eq!(n.runtime.as_deref(), Some("containerd"));
        assert_eq!(n.namespace.as_deref(), Some("default"));
        assert_eq!(n.runtime_id.as_deref(), Some("web1"));
        assert_eq!(n.name.as_deref(), Some("web1"));

        // Reparented away from its shim: the cgroup, confirmed by containerd's state.
        let h = FakeHost::new(&[(301, 1, b"/bin/sleep\0")]);
        let cg = Naming {
            cgroup: Some("/default/web1".into()),
            ..Naming::default()
        };
        assert_eq!(h.refine(301, cg.clone()).runtime, None, "unconfirmed");
        h.mkdir("tasks/default/web1");
        assert_eq!(h.refine(301, cg).namespace.as_deref(), Some("default"));
    }

    #[test]
    fn crun_told_from_runc_by_state_dir() {
        let h = FakeHost::new(&[(400, 1, b"/bin/sleep\0")]);
        let n = from_cgroup("runc", "c1", "/c1");
        assert_eq!(h.refine(400, n.clone()).runtime.as_deref(), Some("runc"));
        h.mkdir("run/crun/c1");
        assert_eq!(h.refine(400, n.clone()).runtime.as_deref(), Some("crun"));
        h.mkdir("run/runc/c2");
        let n2 = from_cgroup("runc", "c2", "/c2");
        assert_eq!(h.refine(400, n2).runtime.as_deref(), Some("runc"));
    }

    #[test]
    fn nspawn_without_systemd_is_no_runc_payload() {
        let sup = b"/usr/bin/systemd-nspawn\0-D\0/r\0--keep-unit\0-M\0web2\0--\0/bin/sleep\0";
        let h = FakeHost::new(&[
            (500, 1, sup),
            (501, 500, b"sleep\0"),
            (502, 501, b"/bin/sleep\0"),
        ]);
        let n = h.refine(501, from_cgroup("runc", "payload", "/payload"));
        assert_eq!(n.runtime.as_deref(), Some("nspawn"));
        assert_eq!(n.runtime_id.as_deref(), Some("web2"));
        assert_eq!(n.name.as_deref(), Some("web2"));
    }

    const POD_UID: &str = "5d2c6e3a-7b41-4f0e-9a8c-2e6f1b3d4c5a";
    const CRIO_UID: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
    const CD_CT: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    const CD_SB: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    const CRIO_CT: &str = "19b7277b9d905f981af64396c9c6bed34d39504ac63e53a75417cb5746887c21";

    #[test]
    fn containerd_cri_annotations() {
        let c = pod_names(&fixture("containerd-container.config.json")).unwrap();
        assert_eq!(
            c,
            PodNames {
                namespace: Some("shop".into()),
                pod_name: "web-7d4b9c8f6-x2x9q".into(),
                pod_uid: Some(POD_UID.into()),
                container: Some("nginx".into()),
                sandbox: false,
                image: Some("docker.io/library/nginx:1.25".into()),
            }
        );
        let s = pod_names(&fixture("containerd-sandbox.config.json")).unwrap();
        assert!(s.sandbox);
        assert_eq!(s.container.as_deref(), Some(POD_SANDBOX_NAME));
        assert_eq!(s.pod_name, "web-7d4b9c8f6-x2x9q");
        assert_eq!(s.namespace.as_deref(), Some("shop"));
        assert_eq!(s.pod_uid.as_deref(), Some(POD_UID));
        assert_eq!(s.image, None);
    }

    #[test]
    fn crio_annotations() {
        let c = pod_names(&fixture("crio-container.config.json")).unwrap();
        assert_eq!(
            c,
            PodNames {
                namespace: Some("db".into()),
                pod_name: "cache-0".into(),
                pod_uid: Some(CRIO_UID.into()),
                container: Some("redis".into()),
                sandbox: false,
                image: Some("docker.io/library/redis:7".into()),
            }
        );
        let s = pod_names(&fixture("crio-sandbox.config.json")).unwrap();
        assert!(s.sandbox);
        assert_eq!(s.container.as_deref(), Some(POD_SANDBOX_NAME));
        assert_eq!(s.pod_name, "cache-0");
        assert_eq!(s.namespace.as_deref(), Some("db"));
        assert_eq!(s.pod_uid.as_deref(), Some(CRIO_UID));
    }

    #[test]
    fn crio_names_without_the_kubelet_labels() {
        // A pod made with crictl: no io.kubernetes.pod.* labels, only CRI-O's own names.
        let spec = br#"{"annotations": {
            "io.kubernetes.cri-o.ContainerType": "container",
            "io.kubernetes.cri-o.Name": "k8s_podsandbox1-redis_podsandbox1_redhat.test.crio_redhat-test-crio_0",
            "io.kubernetes.cri-o.SandboxName": "k8s_podsandbox1_redhat.test.crio_redhat-test-crio_1",
            "io.kubernetes.cri-o.ImageName": "docker.io/library/redis:alpine"}}"#;
        let c = pod_names(spec).unwrap();
        assert_eq!(c.pod_name, "podsandbox1");
        assert_eq!(c.namespace.as_deref(), Some("redhat.test.crio"));
        assert_eq!(c.pod_uid.as_deref(), Some("redhat-test-crio"));
        assert_eq!(c.container.as_deref(), Some("podsandbox1-redis"));
        assert_eq!(c.image.as_deref(), Some("docker.io/library/redis:alpine"));
    }

    #[test]
    fn specs_of_no_pod() {
        // runc's own spec, ctr's and podman's: no pod name, no pod.
        assert_eq!(
            pod_names(br#"{"ociVersion":"1.0.2","process":{"args":["sh"]}}"#),
            None
        );
        assert_eq!(pod_names(br#"{"annotations":null}"#), None);
        let podman = br#"{"annotations":{"io.container.manager":"libpod",
            "io.kubernetes.cri-o.ContainerType":"container","io.kubernetes.cri-o.TTY":"false"}}"#;
        assert_eq!(pod_names(podman), None);
        assert_eq!(pod_names(b"{\"annotations\":"), None);
        // Malformed kubelet-style names give nothing rather than shifted parts.
        let bad = br#"{"annotations":{"io.kubernetes.cri-o.SandboxName":"k8s_a_b"}}"#;
        assert_eq!(pod_names(bad), None);
    }

    #[test]
    fn bundles_from_runc_and_crun_state() {
        let state = br#"{"id":"x","init_process_pid":7,"config":{"rootfs":"/b/rootfs",
            "labels":["io.kubernetes.cri.sandbox-name=web","bundle=/run/b"]}}"#;
        assert_eq!(runc_bundle(state), Some(PathBuf::from("/run/b")));
        assert_eq!(
            runc_bundle(br#"{"config":{"labels":["bundle=rel"]}}"#),
            None
        );
        assert_eq!(runc_bundle(br#"{"config":{}}"#), None);
        let status = br#"{"pid":7,"cgroup-path":"/x","rootfs":"/b/rootfs","bundle":"/run/b","owner":"root"}"#;
        assert_eq!(crun_bundle(status), Some(PathBuf::from("/run/b")));
        assert_eq!(crun_bundle(b"{}"), None);
    }

    #[test]
    fn kubernetes_names_from_containerd_task_dir() {
        // A pod's container under the shim the pod shares: `-id` is the sandbox's.
        let shim = format!(
            "/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0-id\0{CD_SB}\0-address\0/run/containerd/containerd.sock\0"
        );
        let h = FakeHost::new(&[(900, 1, shim.as_bytes()), (901, 900, b"nginx\0")]);
        let task = format!("tasks/k8s.io/{CD_CT}");
        h.mkdir(&task);
        std::fs::write(
            h.dir.path().join(&task).join("config.json"),
            fixture("containerd-container.config.json"),
        )
        .unwrap();
        let slice = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CD_CT}.scope",
            POD_UID.replace('-', "_")
        );
        let mut from_path = from_cgroup("containerd", CD_CT, &slice);
        from_path.pod_uid = Some(POD_UID.into());
        let n = h.refine(901, from_path);
        assert_eq!(n.runtime.as_deref(), Some("containerd"));
        assert_eq!(n.runtime_id.as_deref(), Some(CD_CT), "not the shim's id");
        assert_eq!(n.name.as_deref(), Some("nginx"));
        assert_eq!(n.namespace.as_deref(), Some("shop"));
        assert_eq!(n.pod_name.as_deref(), Some("web-7d4b9c8f6-x2x9q"));
        assert_eq!(n.pod_uid.as_deref(), Some(POD_UID));
        assert_eq!(n.image.as_deref(), Some("docker.io/library/nginx:1.25"));
    }

    #[test]
    fn kubernetes_names_from_runc_state_and_conmon() {
        // A bare id under a pod (cgroupfs driver): runc's state names the bundle.
        let h = FakeHost::new(&[(910, 1, b"nginx\0")]);
        h.mkdir("bundle");
        std::fs::write(
            h.dir.path().join("bundle/config.json"),
            fixture("containerd-sandbox.config.json"),
        )
        .unwrap();
        h.mkdir(&format!("run/runc/{CD_SB}"));
        let state = serde_json::json!({"id": CD_SB, "config": {"labels": [
            format!("bundle={}", h.dir.path().join("bundle").display())]}});
        std::fs::write(
            h.dir.path().join(format!("run/runc/{CD_SB}/state.json")),
            state.to_string(),
        )
        .unwrap();
        let mut from_path = from_cgroup(
            "kubernetes",
            CD_SB,
            &format!("/kubepods/burstable/pod{POD_UID}/{CD_SB}"),
        );
        from_path.pod_uid = Some(POD_UID.into());
        let n = h.refine(910, from_path);
        assert_eq!(n.runtime.as_deref(), Some("runc"));
        assert_eq!(n.name.as_deref(), Some(POD_SANDBOX_NAME));
        assert_eq!(n.pod_name.as_deref(), Some("web-7d4b9c8f6-x2x9q"));
        assert_eq!(n.namespace.as_deref(), Some("shop"));

        // CRI-O: conmon's bundle.
        let bundle = h.dir.path().join("userdata");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            fixture("crio-container.config.json"),
        )
        .unwrap();
        let conmon = format!(
            "/usr/bin/conmon\0-b\0{}\0-c\0{CRIO_CT}\0-n\0k8s_redis_cache-0_db_{CRIO_UID}_0\0-r\0/usr/bin/runc\0",
            bundle.display()
        );
        let h2 = FakeHost::new(&[(920, 1, conmon.as_bytes()), (921, 920, b"redis-server\0")]);
        let mut from_path = from_cgroup(
            "cri-o",
            CRIO_CT,
            &format!("/kubepods/besteffort/pod{CRIO_UID}/crio-{CRIO_CT}"),
        );
        from_path.pod_uid = Some(CRIO_UID.into());
        let n = h2.refine(921, from_path);
        assert_eq!(n.runtime.as_deref(), Some("cri-o"));
        assert_eq!(n.runtime_id.as_deref(), Some(CRIO_CT));
        assert_eq!(n.name.as_deref(), Some("redis"));
        assert_eq!(n.pod_name.as_deref(), Some("cache-0"));
        assert_eq!(n.namespace.as_deref(), Some("db"));

        // A plain runc container keeps its names: its spec has no pod.
        h.mkdir("run/runc/plain");
        h.mkdir("plain");
        std::fs::write(
            h.dir.path().join("plain/config.json"),
            b"{\"ociVersion\":\"1.0.2\"}",
        )
        .unwrap();
        let state = serde_json::json!({"config": {"labels": [
            format!("bundle={}", h.dir.path().join("plain").display())]}});
        std::fs::write(
            h.dir.path().join("run/runc/plain/state.json"),
            state.to_string(),
        )
        .unwrap();
        let plain = from_cgroup("runc", "plain", "/plain");
        assert_eq!(h.refine(910, plain.clone()), plain);
    }

    #[test]
    fn kubernetes_names_while_runc_makes_the_container() {
        // Before runc writes its state: `runc run` above `runc init` has the bundle as its
        // working directory; containerd's shim passes --bundle and --root.
        assert_eq!(oci_create(&argv("runc init")), None);
        assert_eq!(oci_create(&argv("/usr/bin/sleep run")), None);
        assert_eq!(
            oci_create(&argv("runc --root /run/containerd/runc/k8s.io --log /x create --bundle /b --pid-file /p id")),
            Some(("runc", Some(PathBuf::from("/b"))))
        );
        assert_eq!(oci_create(&argv("crun run -d id")), Some(("crun", None)));
        let h = FakeHost::new(&[
            (930, 1, b"runc\0run\0-d\0--pid-file\0/p\0c1\0"),
            (931, 930, b"runc\0init\0"),
            (932, 931, b"runc\0init\0"),
        ]);
        h.mkdir("bundle");
        std::fs::write(
            h.dir.path().join("bundle/config.json"),
            fixture("containerd-container.config.json"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            h.dir.path().join("bundle"),
            h.dir.path().join("proc/930/cwd"),
        )
        .unwrap();
        let mut from_path = from_cgroup("kubernetes", "c1", &format!("/kubepods/pod{POD_UID}/c1"));
        from_path.pod_uid = Some(POD_UID.into());
        let n = h.refine(932, from_path);
        assert_eq!(n.runtime.as_deref(), Some("runc"));
        assert_eq!(n.name.as_deref(), Some("nginx"));
        assert_eq!(n.pod_name.as_deref(), Some("web-7d4b9c8f6-x2x9q"));
    }

    #[test]
    fn firejail_and_bwrap_names_from_the_outer_process() {
        let fj = b"firejail\0--noprofile\0--name=fj1\0--\0/bin/sleep\0";
        let h = FakeHost::new(&[(600, 1, fj), (601, 600, fj), (602, 601, b"/bin/sleep\0")]);
        let n = h.refine(
            601,
            Naming {
                runtime: Some("firejail".into()),
                ..Naming::default()
            },
        );
        assert_eq!(n.runtime.as_deref(), Some("firejail"));
        assert_eq!(n.name.as_deref(), Some("fj1"));
        let bw = b"bwrap\0--unshare-uts\0--hostname\0box7\0--\0/bin/sleep\0";
        let h = FakeHost::new(&[(700, 1, bw), (701, 700, bw)]);
        let n = h.refine(701, Naming::default());
        assert_eq!(n.runtime.as_deref(), Some("bubblewrap"));
        assert_eq!(n.name.as_deref(), Some("box7"));
        // A plain process under no runtime is left as it was.
        let h = FakeHost::new(&[(800, 1, b"bash\0"), (801, 800, b"sleep\0")]);
        assert_eq!(h.refine(801, Naming::default()), Naming::default());
    }
}
