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
            } else if weak || naming.runtime.as_deref() == Some("containerd") {
                set_containerd(naming, ns, id);
            } else {
                // Kubernetes: the cgroup gave the pod, the shim still knows the namespace.
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
