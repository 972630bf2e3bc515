//! Naming groups from cgroup paths.
//!
//! Namespace identity decides which tasks form a group; the cgroup path only says what the
//! runtime calls that group. This module turns the text of `/proc/PID/cgroup` (or one path,
//! as a perf CGROUP record carries it) into a [`CgroupName`]: runtime, container id or
//! machine name, Kubernetes pod UID and QoS class. It is pure and total: any input gives an
//! answer, never a panic, and the same path always gives the same name.
//!
//! Recognized layouts (systemd and cgroupfs drivers, cgroup v1, v2 and hybrid):
//!
//! | runtime | path component(s) |
//! |---|---|
//! | docker | `docker-<hex>.scope`; `docker/<hex>` |
//! | containerd | `cri-containerd-<hex>.scope`; `nerdctl-<hex>.scope`; `k8s.io/<id>`; `default/<64 hex>` |
//! | CRI-O | `crio-<hex>[.scope]`; monitor: `crio-conmon-<hex>[.scope]` |
//! | podman | `libpod-<hex>[.scope]`, `libpod-payload-<hex>`; monitor: `libpod-conmon-<hex>[.scope]`; pods: `*libpod_pod_<id>.slice` |
//! | systemd-nspawn | `machine-<escaped name>.scope`, `systemd-nspawn@<escaped name>.service`; monitor: its `supervisor` child |
//! | LXC | `lxc.payload.<name>`, `lxc.payload/<name>`, `lxc/<name>`; monitor: `lxc.monitor.<name>`, `lxc.monitor/<name>` |
//! | runc by hand | `runc-<id>.scope`, `crun-<id>.scope`; a lone top-level `/<id>` (a guess) |
//! | Kubernetes | `*kubepods[-<qos>]-pod<uid>.slice`; `kubepods[/<qos>]/pod<uid>`; a bare `<64 hex>` under a pod |
//!
//! The deepest recognized component wins, so a container nested in another (docker in
//! LXC, kind or k3d nodes in docker) is named by the inner one, and the sub-cgroups that
//! runtimes create under their container (crun's `container`, nspawn's `payload`, a
//! guest systemd's `init.scope` and `system.slice`) keep the container's name.

use std::borrow::Cow;
use std::fmt;

/// The runtime a cgroup path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Docker (moby), either cgroup driver, rootful or rootless.
    Docker,
    /// containerd: its CRI plugin (`cri-containerd-`), nerdctl, or its `k8s.io` and
    /// `default` namespaces under the cgroupfs driver.
    Containerd,
    /// CRI-O.
    CriO,
    /// Podman (libpod), rootful or rootless.
    Podman,
    /// A machine registered with systemd-machined: systemd-nspawn, but also anything else
    /// that registers (libvirt's `qemu-…` and `lxc-…` machines look the same).
    Nspawn,
    /// LXC (and LXD, which names its containers the same way).
    Lxc,
    /// An OCI runtime (runc, crun) run by hand, outside any engine.
    Runc,
    /// A Kubernetes pod whose runtime the path does not say (the cgroupfs driver names
    /// containers by bare id, whichever runtime made them: k3s, RKE2, dockershim…).
    Kubernetes,
    /// A path that is no known layout and no host systemd unit; the path is the name.
    Unknown,
}

impl Runtime {
    /// Lower-case name, as shown and as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Nspawn => "nspawn",
            Runtime::Lxc => "lxc",
            Runtime::Runc => "runc",
            Runtime::Kubernetes => "kubernetes",
            Runtime::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kubernetes QoS class of a pod, from the kubelet's cgroup tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosClass {
    /// Pod directly under `kubepods`: requests equal limits.
    Guaranteed,
    /// Pod under `kubepods/burstable`.
    Burstable,
    /// Pod under `kubepods/besteffort`.
    BestEffort,
}

impl QosClass {
    /// The class as the kubelet spells it in cgroup names.
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "guaranteed",
            QosClass::Burstable => "burstable",
            QosClass::BestEffort => "besteffort",
        }
    }
}

impl fmt::Display for QosClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of a container a cgroup holds. Runtimes put their per-container monitor
/// (conmon, `lxc-start`, the nspawn supervisor) in a cgroup of its own that names the same
/// container; its tasks run in the host's namespaces and must not be counted as the
/// container's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// The container's own processes (or not a container at all).
    #[default]
    Payload,
    /// The runtime's monitor for that container: `crio-conmon-`, `libpod-conmon-`,
    /// `lxc.monitor.`, nspawn's `supervisor`.
    Monitor,
}

/// How much of the path the reader of `/proc/PID/cgroup` could see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Visibility {
    /// An ordinary path from the root of the hierarchy.
    #[default]
    Full,
    /// Every hierarchy reads `/`: the root cgroup (kernel threads), or a cgroup namespace
    /// that hides the path — the text alone cannot tell which; see
    /// [`CgroupName::in_private_cgroupns`].
    Root,
    /// The path reads `/` and the reader is known to be in a private cgroup namespace: the
    /// namespace hides the path, so there is no name to give.
    Hidden,
    /// The path starts with `/..`: the task is outside the reader's cgroup namespace and
    /// the path is relative to that namespace's root. Naming still works on what follows.
    Relative,
}

/// What a cgroup path says about the group its task belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CgroupName {
    /// `None`: not a container's cgroup (the root, host systemd units such as
    /// `/system.slice/containerd.service`, user sessions). `Some(Runtime::Unknown)`: a
    /// path that is neither, named by itself.
    pub runtime: Option<Runtime>,
    /// Container id (hex, as the runtime gives it), machine name (unescaped) or LXC name.
    pub id: Option<String>,
    /// Kubernetes pod UID in its API form (dashes, also when the systemd driver wrote
    /// underscores), or the podman pod id.
    pub pod_uid: Option<String>,
    /// Kubernetes QoS class, when the path is under `kubepods`.
    pub qos: Option<QosClass>,
    /// Payload or the runtime's monitor.
    pub role: Role,
    /// Whether the path was seen whole.
    pub visibility: Visibility,
    /// True when the name rests on a guess rather than a layout: a single top-level
    /// component taken as a runc container id (runc's default `cgroupsPath` is
    /// `/<container id>`, but any top-level cgroup looks the same).
    pub guessed: bool,
    /// The path the name was read from, as the kernel wrote it.
    pub path: String,
}

impl CgroupName {
    /// A short name for people: `docker:0123456789ab`, `nspawn:web`, `lxc:db (monitor)`,
    /// `pod:<uid>` for a pod-level cgroup, the path itself for anything else.
    pub fn display_name(&self) -> Cow<'_, str> {
        if self.visibility == Visibility::Hidden {
            return Cow::Borrowed("(cgroup namespace hides path)");
        }
        let runtime = match self.runtime {
            Some(r) if r != Runtime::Unknown => r,
            _ => return Cow::Borrowed(&self.path),
        };
        let monitor = if self.role == Role::Monitor {
            " (monitor)"
        } else {
            ""
        };
        match (&self.id, &self.pod_uid) {
            (Some(id), _) => Cow::Owned(format!("{runtime}:{}{monitor}", short_id(id))),
            (None, Some(pod)) => Cow::Owned(format!("pod:{pod}")),
            (None, None) => Cow::Borrowed(&self.path),
        }
    }

    /// True when the path names one container's payload: a known runtime and an id.
    pub fn is_container(&self) -> bool {
        matches!(self.runtime, Some(r) if r != Runtime::Unknown)
            && self.id.is_some()
            && self.role == Role::Payload
    }

    /// Reinterpret for a reader (nswatch) whose own cgroup namespace is not the host's: a
    /// path that reads `/` is then the namespace hiding it, not the root cgroup. The caller
    /// knows this from the namespace links; the text of `/proc/PID/cgroup` does not say.
    pub fn in_private_cgroupns(mut self) -> Self {
        if self.visibility == Visibility::Root {
            self.visibility = Visibility::Hidden;
        }
        self
    }
}

impl fmt::Display for CgroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())
    }
}

/// Names the task whose `/proc/PID/cgroup` text this is; `None` when no line has the
/// `hierarchy-id:controllers:/path` form.
///
/// Several hierarchies may disagree (hybrid systems, or a runtime that only set up some v1
/// controllers), so the most informative path wins: the first, in the order v2 line,
/// `name=systemd` line, then other v1 lines as listed, that matches a layout; else the
/// first that the runc guess accepts; else the first that is not `/`; else `/`.
pub fn parse_proc_cgroup(text: &str) -> Option<CgroupName> {
    // One pass, keeping the best so far by (strength, not root, hierarchy rank); ties go
    // to the earlier line. Cheaper than ordering the lines first: this runs once per task
    // at discovery, for every task on the machine.
    let mut best: Option<((Strength, bool, Hierarchy), Classified<'_>)> = None;
    let mut last_path: Option<&str> = None;
    for line in text.split('\n') {
        let Some((h, path)) = parse_line(line) else {
            continue;
        };
        // v1 controllers mostly repeat one path, in consecutive lines.
        if last_path == Some(path) {
            continue;
        }
        last_path = Some(path);
        let c = classify(path);
        let key = (c.strength, c.depth > 0 || c.relative, h);
        if key.0 == Strength::Layout && h == Hierarchy::V2 {
            return Some(c.into_name());
        }
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, c));
        }
    }
    best.map(|(_, c)| c.into_name())
}

/// Names one cgroup path (as in `/proc/PID/cgroup` after the second colon, or in a perf
/// CGROUP record).
pub fn name_path(path: &str) -> CgroupName {
    classify(path).into_name()
}

/// Ranked by how much a hierarchy's path tells: v2 is the one every process is in and the
/// one runtimes always set up; name=systemd is where systemd puts scopes on v1 and hybrid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Hierarchy {
    Other,
    Systemd,
    V2,
}

fn parse_line(line: &str) -> Option<(Hierarchy, &str)> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.splitn(3, ':');
    let id = parts.next()?;
    let controllers = parts.next()?;
    // The path may itself hold colons; splitn keeps them.
    let path = parts.next()?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || !path.starts_with('/') {
        return None;
    }
    let h = if id == "0" && controllers.is_empty() {
        Hierarchy::V2
    } else if controllers.split(',').any(|c| c == "name=systemd") {
        Hierarchy::Systemd
    } else {
        Hierarchy::Other
    };
    Some((h, path))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    /// No container layout (root, host units, unknown paths).
    None,
    /// Only the lone-top-level-component runc guess.
    Guess,
    /// A recognized layout.
    Layout,
}

/// What one path component says.
enum Part<'a> {
    Container {
        runtime: Runtime,
        id: Cow<'a, str>,
        role: Role,
    },
    Pod {
        uid: Cow<'a, str>,
        qos: Option<QosClass>,
        podman: bool,
    },
    Other,
}

/// A classification that still borrows the path, so that choosing among the lines of
/// `/proc/PID/cgroup` allocates only for the winner.
struct Classified<'a> {
    path: &'a str,
    runtime: Option<Runtime>,
    id: Option<Cow<'a, str>>,
    pod: Option<(Cow<'a, str>, Option<QosClass>)>,
    role: Role,
    strength: Strength,
    depth: usize,
    relative: bool,
}

impl Classified<'_> {
    fn into_name(self) -> CgroupName {
        let visibility = if self.relative {
            Visibility::Relative
        } else if self.depth == 0 {
            Visibility::Root
        } else {
            Visibility::Full
        };
        let (pod_uid, qos) = match self.pod {
            Some((uid, qos)) => (Some(uid.into_owned()), qos),
            None => (None, None),
        };
        CgroupName {
            runtime: self.runtime,
            id: self.id.map(Cow::into_owned),
            pod_uid,
            qos,
            role: self.role,
            visibility,
            guessed: self.strength == Strength::Guess,
            path: self.path.to_owned(),
        }
    }
}

fn classify(path: &str) -> Classified<'_> {
    let mut relative = false;
    let mut depth = 0usize;
    let mut first = "";
    let mut prev = "";
    let mut prev_was_pod = false;
    let mut all_units = true;
    // (runtime, id, role, depth at which it was found)
    let mut container: Option<(Runtime, Cow<'_, str>, Role, usize)> = None;
    let mut pod: Option<(Cow<'_, str>, Option<QosClass>, bool)> = None;

    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        // A task outside the reader's cgroup namespace reads `/../../<rest>`.
        if comp == ".." && depth == 0 {
            relative = true;
            continue;
        }
        depth += 1;
        if depth == 1 {
            first = comp;
        }
        if !is_unit_name(comp) {
            all_units = false;
        }
        // The nspawn supervisor sits in a `supervisor` child of the machine's cgroup.
        if comp == "supervisor" {
            if let Some((Runtime::Nspawn, _, role, d)) = &mut container {
                if *d + 1 == depth {
                    *role = Role::Monitor;
                }
            }
        }
        let part = component(comp, prev, prev_was_pod);
        prev_was_pod = matches!(part, Part::Pod { .. });
        match part {
            Part::Container { runtime, id, role } => container = Some((runtime, id, role, depth)),
            Part::Pod { uid, qos, podman } => {
                // A pod below a container (kind, k3d) is deeper context than that
                // container: the task is in the pod, not in the node container.
                container = None;
                pod = Some((uid, qos, podman));
            }
            Part::Other => {}
        }
        prev = comp;
    }

    let mut c = Classified {
        path,
        runtime: None,
        id: None,
        pod: None,
        role: Role::Payload,
        strength: Strength::None,
        depth,
        relative,
    };
    let pod_is_podman = matches!(pod, Some((_, _, true)));
    c.pod = pod.map(|(uid, qos, _)| (uid, qos));
    if let Some((runtime, id, role, _)) = container {
        c.runtime = Some(runtime);
        c.id = Some(id);
        c.role = role;
        c.strength = Strength::Layout;
    } else if c.pod.is_some() {
        c.runtime = Some(if pod_is_podman {
            Runtime::Podman
        } else {
            Runtime::Kubernetes
        });
        c.strength = Strength::Layout;
    } else if depth == 0 || all_units {
        // Root, or host systemd units (slices, services, sessions): not a container.
    } else if depth == 1 && is_runc_id(first) && !is_reserved_top(first) {
        c.runtime = Some(Runtime::Runc);
        c.id = Some(Cow::Borrowed(first));
        c.strength = Strength::Guess;
    } else {
        c.runtime = Some(Runtime::Unknown);
    }
    c
}

fn component<'a>(comp: &'a str, prev: &str, prev_was_pod: bool) -> Part<'a> {
    let container = |runtime, id: &'a str, role| Part::Container {
        runtime,
        id: Cow::Borrowed(id),
        role,
    };
    let (stem, scope) = match comp.strip_suffix(".scope") {
        Some(s) => (s, true),
        None => (comp, false),
    };

    // Prefixes shared by the systemd (`.scope`) and cgroupfs forms; longer ones first,
    // since `crio-conmon-<id>` also starts with `crio-`.
    const HEX_PREFIXES: &[(&str, Runtime, Role)] = &[
        ("crio-conmon-", Runtime::CriO, Role::Monitor),
        ("crio-", Runtime::CriO, Role::Payload),
        ("libpod-conmon-", Runtime::Podman, Role::Monitor),
        ("libpod-payload-", Runtime::Podman, Role::Payload),
        ("libpod-", Runtime::Podman, Role::Payload),
    ];
    for &(prefix, runtime, role) in HEX_PREFIXES {
        if let Some(id) = stem.strip_prefix(prefix) {
            if is_hex(id) {
                return container(runtime, id, role);
            }
        }
    }

    if scope {
        const SCOPE_HEX_PREFIXES: &[(&str, Runtime)] = &[
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("nerdctl-", Runtime::Containerd),
        ];
        for &(prefix, runtime) in SCOPE_HEX_PREFIXES {
            if let Some(id) = stem.strip_prefix(prefix) {
                if is_hex(id) {
                    return container(runtime, id, Role::Payload);
                }
            }
        }
        if let Some(name) = stem.strip_prefix("machine-") {
            if !name.is_empty() {
                return Part::Container {
                    runtime: Runtime::Nspawn,
                    id: systemd_unescape(name),
                    role: Role::Payload,
                };
            }
        }
        // runc and crun with the systemd driver default to `<prefix>-<id>.scope`.
        for prefix in ["runc-", "crun-"] {
            if let Some(id) = stem.strip_prefix(prefix) {
                if is_runc_id(id) {
                    return container(Runtime::Runc, id, Role::Payload);
                }
            }
        }
        return Part::Other;
    }

    // `machinectl start` runs nspawn as systemd-nspawn@NAME.service with --keep-unit.
    if let Some(name) = comp
        .strip_prefix("systemd-nspawn@")
        .and_then(|s| s.strip_suffix(".service"))
    {
        if !name.is_empty() {
            return Part::Container {
                runtime: Runtime::Nspawn,
                id: systemd_unescape(name),
                role: Role::Payload,
            };
        }
    }
    if let Some(name) = comp.strip_prefix("lxc.payload.") {
        if !name.is_empty() {
            return container(Runtime::Lxc, name, Role::Payload);
        }
    }
    if let Some(name) = comp.strip_prefix("lxc.monitor.") {
        if !name.is_empty() {
            return container(Runtime::Lxc, name, Role::Monitor);
        }
    }
    if let Some(part) = kubepods_slice(comp) {
        return part;
    }
    if let Some(id) = comp
        .strip_suffix(".slice")
        .and_then(|s| s.find("libpod_pod_").map(|i| &s[i + "libpod_pod_".len()..]))
    {
        if is_hex(id) {
            return Part::Pod {
                uid: Cow::Borrowed(id),
                qos: None,
                podman: true,
            };
        }
    }

    // Components that only mean something under a known parent (cgroupfs drivers).
    match prev {
        "docker" if is_hex(comp) => return container(Runtime::Docker, comp, Role::Payload),
        "k8s.io" if is_runc_id(comp) => return container(Runtime::Containerd, comp, Role::Payload),
        "default" if is_hex(comp) && comp.len() == 64 => {
            return container(Runtime::Containerd, comp, Role::Payload)
        }
        "lxc" | "lxc.payload" => return container(Runtime::Lxc, comp, Role::Payload),
        "lxc.monitor" => return container(Runtime::Lxc, comp, Role::Monitor),
        "kubepods" | "burstable" | "besteffort" => {
            if let Some(uid) = comp.strip_prefix("pod") {
                if is_pod_uid(uid) {
                    let qos = match prev {
                        "burstable" => QosClass::Burstable,
                        "besteffort" => QosClass::BestEffort,
                        _ => QosClass::Guaranteed,
                    };
                    return Part::Pod {
                        uid: dashed(uid),
                        qos: Some(qos),
                        podman: false,
                    };
                }
            }
        }
        _ => {}
    }
    if prev_was_pod && is_hex(comp) {
        return container(Runtime::Kubernetes, comp, Role::Payload);
    }
    Part::Other
}

/// The kubelet's systemd driver: `[prefix-]kubepods[-<qos>]-pod<uid with _>.slice`. kind
/// nodes add a `kubelet-` prefix, so "kubepods" is searched for, not required first.
fn kubepods_slice(comp: &str) -> Option<Part<'_>> {
    let stem = comp.strip_suffix(".slice")?;
    let at = stem.find("kubepods")?;
    let rest = &stem[at + "kubepods".len()..];
    let (qos, rest) = if let Some(r) = rest.strip_prefix("-burstable") {
        (QosClass::Burstable, r)
    } else if let Some(r) = rest.strip_prefix("-besteffort") {
        (QosClass::BestEffort, r)
    } else {
        (QosClass::Guaranteed, rest)
    };
    let uid = rest.strip_prefix("-pod")?;
    if !is_pod_uid(uid) {
        return None;
    }
    Some(Part::Pod {
        uid: dashed(uid),
        qos: Some(qos),
        podman: false,
    })
}

/// Container ids from engines are hex (64 digits, sometimes shortened); the cap only keeps
/// absurd components from being taken for ids.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Pod UIDs are UUIDs (static pods use a 32-hex config hash); the systemd driver writes
/// `_` for `-`.
fn is_pod_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

/// runc accepts container ids of `[A-Za-z0-9_+.-]`.
fn is_runc_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 1024
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
}

/// Host systemd units (and their delegated sub-units) are not containers.
fn is_unit_name(comp: &str) -> bool {
    [".slice", ".service", ".scope", ".socket", ".mount", ".swap"]
        .iter()
        .any(|s| comp.len() > s.len() && comp.ends_with(s))
}

/// Top-level cgroups that engines and systems create for themselves, never a runc id.
fn is_reserved_top(comp: &str) -> bool {
    matches!(
        comp,
        "docker"
            | "kubepods"
            | "lxc"
            | "lxc.payload"
            | "lxc.monitor"
            | "lxc.pivot"
            | "libpod_parent"
            | "k8s.io"
            | "default"
            | "machine"
            | "user"
            | "system"
            | "init"
    )
}

fn dashed(uid: &str) -> Cow<'_, str> {
    if uid.contains('_') {
        Cow::Owned(uid.replace('_', "-"))
    } else {
        Cow::Borrowed(uid)
    }
}

/// Undoes systemd's unit-name escaping (`\xNN`). A literal `-` in an escaped unit name
/// would stand for `/`, which machine names cannot hold, so it is left as `-`.
fn systemd_unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let (Some(hi), Some(lo)) = (hex_val(b[i + 2]), hex_val(b[i + 3])) {
                out.push(hi << 4 | lo);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Engine ids are shown shortened to 12 hex digits, as `docker ps` does; names are whole.
fn short_id(id: &str) -> &str {
    if id.len() > 12 && is_hex(id) {
        &id[..12]
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970";
    const ID2: &str = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d";

    fn named(path: &str) -> CgroupName {
        name_path(path)
    }

    fn assert_container(n: &CgroupName, runtime: Runtime, id: &str) {
        assert_eq!(n.runtime, Some(runtime), "{n:?}");
        assert_eq!(n.id.as_deref(), Some(id), "{n:?}");
        assert_eq!(n.role, Role::Payload, "{n:?}");
        assert!(n.is_container(), "{n:?}");
        assert!(!n.guessed);
    }

    /// A v1 file as a hybrid host with every controller in the same place writes it.
    fn v1_hybrid(path: &str) -> String {
        format!(
            "12:hugetlb:{path}\n11:perf_event:{path}\n10:net_cls,net_prio:{path}\n\
             9:name=systemd:{path}\n4:memory:{path}\n2:cpu,cpuacct:{path}\n1:pids:{path}\n0::{path}\n"
        )
    }

    #[test]
    fn docker_systemd_driver_v2() {
        let n = parse_proc_cgroup(&format!("0::/system.slice/docker-{ID}.scope\n")).unwrap();
        assert_container(&n, Runtime::Docker, ID);
        assert_eq!(n.display_name(), "docker:4f797c539e6c");
        assert_eq!(n.visibility, Visibility::Full);
    }

    #[test]
    fn docker_cgroupfs_driver_v1() {
        let text = format!(
            "10:net_prio:/docker/{ID}\n4:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n"
        );
        assert_container(&parse_proc_cgroup(&text).unwrap(), Runtime::Docker, ID);
    }

    #[test]
    fn docker_rootless_and_nested() {
        let n = named(&format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope"
        ));
        assert_container(&n, Runtime::Docker, ID);
        // docker in docker: the inner container names the task.
        assert_container(
            &named(&format!("/docker/{ID}/docker/{ID2}")),
            Runtime::Docker,
            ID2,
        );
    }

    #[test]
    fn containerd_cri_systemd_v2() {
        let n = named(&format!(
            "/kubepods.slice/kubepods-burstable.slice/\
             kubepods-burstable-pod8d9d4a5e_1f2b_4c3d_9e8f_0a1b2c3d4e5f.slice/cri-containerd-{ID}.scope"
        ));
        assert_container(&n, Runtime::Containerd, ID);
        assert_eq!(
            n.pod_uid.as_deref(),
            Some("8d9d4a5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f")
        );
        assert_eq!(n.qos, Some(QosClass::Burstable));
    }

    #[test]
    fn kubernetes_cgroupfs_v1_guaranteed_and_besteffort() {
        let uid = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
        let text = format!(
            "11:cpu,cpuacct:/kubepods/burstable/pod{uid}/{ID}\n\
             1:name=systemd:/kubepods/burstable/pod{uid}/{ID}\n0::/\n"
        );
        let n = parse_proc_cgroup(&text).unwrap();
        assert_container(&n, Runtime::Kubernetes, ID);
        assert_eq!(n.pod_uid.as_deref(), Some(uid));
        assert_eq!(n.qos, Some(QosClass::Burstable));

        let n = named(&format!("/kubepods/pod{uid}/{ID}"));
        assert_eq!(n.qos, Some(QosClass::Guaranteed));
        let n = named(&format!(
            "/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{ID}.scope",
            uid.replace('-', "_")
        ));
        assert_eq!(n.qos, Some(QosClass::Guaranteed));
        assert_eq!(n.pod_uid.as_deref(), Some(uid));
    }

    #[test]
    fn k3s_and_rke2_without_runtime_prefix() {
        let uid = "5c8f3e1a-2b4d-4f6e-8a0c-1d2e3f4a5b6c";
        let n = named(&format!("/kubepods/besteffort/pod{uid}/{ID}"));
        assert_container(&n, Runtime::Kubernetes, ID);
        assert_eq!(n.qos, Some(QosClass::BestEffort));
        assert_eq!(n.display_name(), "kubernetes:4f797c539e6c");
        assert_container(&named(&format!("/k8s.io/{ID}")), Runtime::Containerd, ID);
        assert_container(&named(&format!("/default/{ID}")), Runtime::Containerd, ID);
        // k3d: k3s inside a docker container.
        let n = named(&format!("/docker/{ID2}/kubepods/besteffort/pod{uid}/{ID}"));
        assert_container(&n, Runtime::Kubernetes, ID);
        assert_eq!(n.pod_uid.as_deref(), Some(uid));
    }

    #[test]
    fn kind_node_kubelet_prefix() {
        let n = named(&format!(
            "/system.slice/docker-{ID2}.scope/kubelet.slice/kubelet-kubepods.slice/\
             kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod1111_2222.slice/\
             cri-containerd-{ID}.scope"
        ));
        assert_container(&n, Runtime::Containerd, ID);
        assert_eq!(n.pod_uid.as_deref(), Some("1111-2222"));
        assert_eq!(n.qos, Some(QosClass::BestEffort));
    }

    #[test]
    fn pod_level_cgroup_has_no_container() {
        let n = named("/kubepods/burstable/podabc-def");
        assert_eq!(n.runtime, Some(Runtime::Kubernetes));
        assert_eq!(n.id, None);
        assert!(!n.is_container());
        assert_eq!(n.display_name(), "pod:abc-def");
    }

    #[test]
    fn crio_payload_and_conmon() {
        let base =
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12ab_34cd.slice";
        let n = named(&format!("{base}/crio-{ID}.scope"));
        assert_container(&n, Runtime::CriO, ID);
        assert_eq!(n.qos, Some(QosClass::BestEffort));
        let m = named(&format!("{base}/crio-conmon-{ID}.scope"));
        assert_eq!(m.runtime, Some(Runtime::CriO));
        assert_eq!(m.id.as_deref(), Some(ID));
        assert_eq!(m.role, Role::Monitor);
        assert!(!m.is_container());
        assert_eq!(m.display_name(), "cri-o:4f797c539e6c (monitor)");
        // cgroupfs driver, and crun's sub-cgroup under the systemd one.
        assert_container(
            &named(&format!("/kubepods/besteffort/pod12ab-34cd/crio-{ID}")),
            Runtime::CriO,
            ID,
        );
        assert_container(
            &named(&format!("{base}/crio-{ID}.scope/container")),
            Runtime::CriO,
            ID,
        );
    }

    #[test]
    fn podman_rootful_rootless_conmon_crun() {
        assert_container(
            &named(&format!("/machine.slice/libpod-{ID}.scope")),
            Runtime::Podman,
            ID,
        );
        let m = named(&format!("/machine.slice/libpod-conmon-{ID}.scope"));
        assert_eq!((m.runtime, m.role), (Some(Runtime::Podman), Role::Monitor));
        let rootless =
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope");
        assert_container(&named(&rootless), Runtime::Podman, ID);
        assert_container(
            &named(&format!("{rootless}/container")),
            Runtime::Podman,
            ID,
        );
        assert_container(
            &named(&format!("/libpod_parent/libpod-{ID}")),
            Runtime::Podman,
            ID,
        );
        assert_container(
            &named(&format!("/user.slice/libpod-payload-{ID}")),
            Runtime::Podman,
            ID,
        );
        // A podman pod's slice gives the pod id.
        let n = named(&format!(
            "/machine.slice/machine-libpod_pod_{ID2}.slice/libpod-{ID}.scope"
        ));
        assert_container(&n, Runtime::Podman, ID);
        assert_eq!(n.pod_uid.as_deref(), Some(ID2));
        // The hybrid machine: v2 holds the scope, v1 controllers too.
        let n = parse_proc_cgroup(&v1_hybrid(&format!(
            "/machine.slice/libpod-{ID}.scope/container"
        )))
        .unwrap();
        assert_container(&n, Runtime::Podman, ID);
    }

    #[test]
    fn nspawn_machine_scope_payload_supervisor() {
        let n = named("/machine.slice/machine-my\\x2dbox.scope");
        assert_container(&n, Runtime::Nspawn, "my-box");
        assert_eq!(n.display_name(), "nspawn:my-box");
        assert_container(
            &named("/machine.slice/machine-my\\x2dbox.scope/payload"),
            Runtime::Nspawn,
            "my-box",
        );
        assert_container(
            &named("/machine.slice/machine-foo.scope/payload/init.scope"),
            Runtime::Nspawn,
            "foo",
        );
        assert_container(
            &named("/machine.slice/machine-foo.scope/init.scope"),
            Runtime::Nspawn,
            "foo",
        );
        assert_container(
            &named("/machine.slice/machine-foo.scope/payload/system.slice/cron.service"),
            Runtime::Nspawn,
            "foo",
        );
        let m = named("/machine.slice/machine-foo.scope/supervisor");
        assert_eq!((m.runtime, m.role), (Some(Runtime::Nspawn), Role::Monitor));
        // machinectl start: systemd-nspawn@.service with --keep-unit.
        assert_container(
            &named("/machine.slice/systemd-nspawn@web\\x2d1.service/payload"),
            Runtime::Nspawn,
            "web-1",
        );
        // v1 hybrid: only name=systemd and some controllers carry it.
        let text = "9:name=systemd:/machine.slice/machine-foo.scope\n4:memory:/machine.slice/machine-foo.scope\n0::/\n";
        assert_container(&parse_proc_cgroup(text).unwrap(), Runtime::Nspawn, "foo");
    }

    #[test]
    fn lxc_payload_monitor_old() {
        assert_container(&named("/lxc.payload.web"), Runtime::Lxc, "web");
        assert_container(&named("/lxc.payload.web/init.scope"), Runtime::Lxc, "web");
        assert_container(
            &named("/lxc.payload.web/system.slice/systemd-journald.service"),
            Runtime::Lxc,
            "web",
        );
        assert_container(&named("/lxc/web"), Runtime::Lxc, "web");
        assert_container(&named("/lxc.payload/web"), Runtime::Lxc, "web");
        let m = named("/lxc.monitor.web");
        assert_eq!(m.runtime, Some(Runtime::Lxc));
        assert_eq!(m.id.as_deref(), Some("web"));
        assert_eq!(m.role, Role::Monitor);
        assert_eq!(m.display_name(), "lxc:web (monitor)");
        // docker inside an LXC container names by the inner one.
        assert_container(
            &named(&format!("/lxc.payload.web/system.slice/docker-{ID}.scope")),
            Runtime::Docker,
            ID,
        );
        let text = "12:memory:/lxc.payload.web\n1:name=systemd:/lxc.payload.web/init.scope\n0::/lxc.payload.web/init.scope\n";
        assert_container(&parse_proc_cgroup(text).unwrap(), Runtime::Lxc, "web");
    }

    #[test]
    fn runc_by_hand() {
        // Default cgroupsPath: /<id>, a guess.
        let n = parse_proc_cgroup(&v1_hybrid("/mycontainer")).unwrap();
        assert_eq!(n.runtime, Some(Runtime::Runc));
        assert_eq!(n.id.as_deref(), Some("mycontainer"));
        assert!(n.guessed);
        // The systemd driver's default: system.slice:runc:<id>.
        assert_container(
            &named("/system.slice/runc-mycontainer.scope"),
            Runtime::Runc,
            "mycontainer",
        );
        // A real layout on another line beats the guess.
        let text = format!("4:memory:/mycontainer\n0::/system.slice/docker-{ID}.scope\n");
        assert_container(&parse_proc_cgroup(&text).unwrap(), Runtime::Docker, ID);
        let text = format!("4:memory:/mycontainer\n1:cpu:/docker/{ID}\n");
        assert_container(&parse_proc_cgroup(&text).unwrap(), Runtime::Docker, ID);
        // Reserved top-level names and units are not runc ids.
        assert_eq!(named("/docker").runtime, Some(Runtime::Unknown));
        assert!(!named("/docker").guessed);
        assert_eq!(named("/init.scope").runtime, None);
    }

    #[test]
    fn host_units_are_not_containers() {
        for p in [
            "/system.slice/containerd.service",
            "/system.slice/docker.service",
            "/system.slice/crio.service",
            "/init.scope",
            "/user.slice/user-1000.slice/session-3.scope",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope",
            "/kubepods.slice/kubepods-burstable.slice",
            "/machine.slice",
        ] {
            let n = named(p);
            assert_eq!(n.runtime, None, "{p}");
            assert_eq!(n.display_name(), p);
            assert!(!n.is_container());
        }
    }

    #[test]
    fn this_machines_hybrid_layout() {
        let text = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
                    4:memory:/process_api/d9311bb74dbb4064cfd2685a3fed6848\n3:cpuset:/\n\
                    2:cpuacct:/\n1:cpu:/\n0::/\n";
        let n = parse_proc_cgroup(text).unwrap();
        assert_eq!(n.runtime, Some(Runtime::Unknown));
        assert_eq!(n.path, "/process_api/d9311bb74dbb4064cfd2685a3fed6848");
        assert_eq!(n.display_name(), n.path);
        assert!(!n.is_container());
    }

    #[test]
    fn private_cgroup_namespace() {
        let n = parse_proc_cgroup("0::/\n").unwrap();
        assert_eq!((n.runtime, n.visibility), (None, Visibility::Root));
        assert_eq!(n.display_name(), "/");
        let n = n.in_private_cgroupns();
        assert_eq!(n.visibility, Visibility::Hidden);
        assert_eq!(n.id, None);
        assert_eq!(n.display_name(), "(cgroup namespace hides path)");
        // All-root hybrid file too.
        let n = parse_proc_cgroup(&v1_hybrid("/"))
            .unwrap()
            .in_private_cgroupns();
        assert_eq!(n.visibility, Visibility::Hidden);
        // A named path stays named.
        let n = named(&format!("/docker-{ID}.scope")).in_private_cgroupns();
        assert_eq!(n.visibility, Visibility::Full);
        // Tasks outside the reader's namespace read /../…: named from what follows.
        let n = named(&format!("/../../system.slice/docker-{ID}.scope"));
        assert_container(&n, Runtime::Docker, ID);
        assert_eq!(n.visibility, Visibility::Relative);
    }

    #[test]
    fn malformed_input() {
        assert_eq!(parse_proc_cgroup(""), None);
        assert_eq!(parse_proc_cgroup("garbage\n:::\nx:y:/z\n"), None);
        // Colons in the path are kept; CRLF tolerated.
        let n = parse_proc_cgroup("0::/a:b/c\r\n").unwrap();
        assert_eq!(n.path, "/a:b/c");
        assert_eq!(
            named("/machine.slice/machine-\\x.scope").id.as_deref(),
            Some("\\x")
        );
        assert_eq!(
            named("/machine.slice/machine-\\xff.scope").id.as_deref(),
            Some("\u{fffd}")
        );
        assert_eq!(named("docker-.scope").runtime, None);
    }

    fn hex_id() -> impl Strategy<Value = String> {
        "[0-9a-f]{64}"
    }

    fn wrapper() -> impl Strategy<Value = (String, String)> {
        // (prefix, suffix) around a container component that must not change its id.
        let prefix = prop::sample::select(vec![
            "",
            "/system.slice",
            "/user.slice/user-1000.slice/user@1000.service/user.slice",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poda_b.slice",
            "/lxc.payload.outer",
            "/../..",
        ]);
        let suffix = prop::sample::select(vec!["", "/container", "/init.scope", "/payload"]);
        (prefix, suffix).prop_map(|(p, s)| (p.to_owned(), s.to_owned()))
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<String>()) {
            if let Some(n) = parse_proc_cgroup(&text) {
                let _ = n.display_name();
            }
            let n = name_path(&text);
            let _ = n.display_name();
            let _ = n.in_private_cgroupns();
        }

        #[test]
        fn never_panics_on_cgroup_like_text(
            lines in prop::collection::vec(
                ("[0-9]{1,2}", "(|name=systemd|memory|cpu,cpuacct)",
                 prop::collection::vec(
                     "(\\.\\.|docker|kubepods|burstable|pod[0-9a-f_-]{0,8}|lxc(\\.payload|\\.monitor)?(\\.[a-z]{0,3})?|machine-[a-z\\\\x0-9]{0,6}\\.scope|[a-z]{1,3}-[0-9a-f]{0,4}(\\.scope|\\.slice)?|kubepods-pod[0-9a-f_]{0,4}\\.slice|supervisor|[0-9a-f]{1,3}|\u{e9}\\\\x[0-9a-f]{0,2})",
                     0..6)),
                0..8)
        ) {
            let text: String = lines
                .iter()
                .map(|(h, c, comps)| format!("{h}:{c}:/{}\n", comps.join("/")))
                .collect();
            if let Some(n) = parse_proc_cgroup(&text) {
                let again = parse_proc_cgroup(&text).unwrap();
                prop_assert_eq!(&n, &again);
                prop_assert_eq!(n.display_name(), again.display_name());
            }
        }

        #[test]
        fn ids_are_stable_across_wrappings(id in hex_id(), w in wrapper(), v1 in any::<bool>()) {
            let (prefix, suffix) = w;
            for (runtime, comp) in [
                (Runtime::Docker, format!("docker-{id}.scope")),
                (Runtime::Containerd, format!("cri-containerd-{id}.scope")),
                (Runtime::CriO, format!("crio-{id}.scope")),
                (Runtime::Podman, format!("libpod-{id}.scope")),
            ] {
                let path = format!("{prefix}/{comp}{suffix}");
                let text = if v1 { v1_hybrid(&path) } else { format!("0::{path}\n") };
                let n = parse_proc_cgroup(&text).unwrap();
                prop_assert_eq!(n.runtime, Some(runtime));
                prop_assert_eq!(n.id.as_deref(), Some(id.as_str()));
                prop_assert_eq!(&n, &name_path(&path));
            }
        }
    }
}
