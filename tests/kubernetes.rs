//! Kubernetes names from what the node holds, against real runc containers. There is no
//! kubelet on this machine: each test builds what a kubelet's CRI runtime (containerd) would
//! leave, a runc container with a 64-hex id under a kubepods pod cgroup (the cgroupfs
//! driver's `/kubepods/burstable/pod<uid>/<id>`, or the systemd driver's
//! `kubepods.slice/…/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope` made as a
//! plain path, there being no systemd either) whose config.json carries containerd's CRI
//! annotations. `nswatch ps --format json` and a live `nswatch record` must name it with the
//! pod's namespace, name and UID, the container's name (`POD` for the pod's sandbox) and
//! image, and keep runc as its runtime (its state is runc's, /run/runc/<id>). Needs root:
//! skips with the reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::recording::{group_of, ps};
use common::runtimes::{runtime_ok, unique_hex_id, Container, RuncLayout, Runtime};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

/// One pod as a test lays it out: namespace, name and UID.
struct Pod {
    namespace: String,
    name: String,
    uid: String,
    /// The sandbox id containerd would give (the pause container's id).
    sandbox_id: String,
}

impl Pod {
    fn new(tag: &str) -> Pod {
        let hex = unique_hex_id(tag);
        // A UID of the API's shape (8-4-4-4-12), unique per process, test and time.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let t = tag
            .bytes()
            .fold(0u16, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        Pod {
            namespace: format!("ns-{tag}"),
            name: format!("web-{tag}-7d4b9"),
            uid: format!(
                "{:08x}-{t:04x}-4000-8000-{:012x}",
                std::process::id(),
                nanos & 0xffff_ffff_ffff
            ),
            sandbox_id: hex,
        }
    }

    /// containerd's CRI annotations for the pod's sandbox (`container == None`) or one of its
    /// containers, as pkg/cri/annotations writes them.
    fn annotations(&self, container: Option<(&str, &str)>) -> Vec<(String, String)> {
        let mut a = vec![
            ("io.kubernetes.cri.sandbox-id", self.sandbox_id.clone()),
            (
                "io.kubernetes.cri.sandbox-namespace",
                self.namespace.clone(),
            ),
            ("io.kubernetes.cri.sandbox-uid", self.uid.clone()),
            ("io.kubernetes.cri.sandbox-name", self.name.clone()),
        ];
        match container {
            None => {
                a.push((
                    "io.kubernetes.cri.sandbox-log-directory",
                    format!(
                        "/var/log/pods/{}_{}_{}",
                        self.namespace, self.name, self.uid
                    ),
                ));
                a.push(("io.kubernetes.cri.container-type", "sandbox".into()));
            }
            Some((name, image)) => {
                a.push(("io.kubernetes.cri.container-name", name.into()));
                a.push(("io.kubernetes.cri.image-name", image.into()));
                a.push(("io.kubernetes.cri.container-type", "container".into()));
            }
        }
        a.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// The names a group (from `ps`) or a container_start (from `record`) must carry.
fn expect_names(what: &str, g: &Value, c: &Container, pod: &Pod, name: &str, image: Option<&str>) {
    assert_eq!(g["kind"], "container", "{what}: {g}");
    assert_eq!(g["runtime"], "runc", "{what}: {g}");
    assert_eq!(g["namespace"], pod.namespace.as_str(), "{what}: {g}");
    assert_eq!(g["pod_name"], pod.name.as_str(), "{what}: {g}");
    assert_eq!(g["pod_uid"], pod.uid.as_str(), "{what}: {g}");
    assert_eq!(
        g["image"],
        image.map_or(Value::Null, Value::from),
        "{what}: {g}"
    );
    // ps gives the runtime's id and the name apart; record's name is the one for people.
    if g.get("runtime_id").is_some() {
        assert_eq!(g["runtime_id"], c.id(), "{what}: {g}");
        assert_eq!(g["name"], name, "{what}: {g}");
    } else {
        assert!(g["name"].as_str().unwrap().contains(name), "{what}: {g}");
    }
}

/// The container_start of the group process `pid` is in, in a recording: its label there is
/// that of the payload's own namespaces event (`ps` may give another: labels are namespace
/// inodes, which other tests' containers reuse, and a recording numbers the generations).
fn started(events: &[Value], pid: u32) -> Value {
    let label = events
        .iter()
        .rev()
        .find(|e| e["type"] == "namespaces" && e["pid"] == pid)
        .and_then(|e| e["container"].as_str())
        .unwrap_or_else(|| panic!("no namespaces event of {pid}"));
    events
        .iter()
        .rev()
        .find(|e| e["type"] == "container_start" && e["container"] == label)
        .cloned()
        .unwrap_or_else(|| panic!("no container_start of {label}"))
}

fn read_events(file: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A pod of two under the cgroupfs driver's layout: the sandbox and an app container that
/// joins its network namespace, each under `/kubepods/burstable/pod<uid>/<id>`.
#[test]
fn kubepods_cgroupfs_pod_is_named_from_cri_annotations() {
    let what = "kubepods_cgroupfs";
    if !runtime_ok(what, Runtime::Runc) {
        return;
    }
    let pod = Pod::new("kcg");
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut rec = common::start_recording(&[], file.path(), Stdio::piped());

    let under_pod = |id: &str| format!("/kubepods/burstable/pod{}/{id}", pod.uid);
    let sandbox = Container::start_runc_with(
        "ksb",
        RuncLayout {
            id: Some(pod.sandbox_id.clone()),
            cgroups_path: Some(under_pod(&pod.sandbox_id)),
            annotations: pod.annotations(None),
            join_net: None,
        },
    );
    let app_id = unique_hex_id("kapp");
    let image = "registry.k8s.io/nginx:1.25";
    let app = Container::start_runc_with(
        "kapp",
        RuncLayout {
            id: Some(app_id.clone()),
            cgroups_path: Some(under_pod(&app_id)),
            annotations: pod.annotations(Some(("nginx", image))),
            join_net: Some(format!("/proc/{}/ns/net", sandbox.payload_pid())),
        },
    );
    let line = common::runtimes::cgroup_lines(app.payload_pid());
    assert!(
        line.iter().any(|l| l.ends_with(&under_pod(&app_id))),
        "{what}: {line:?}"
    );

    let snap = ps();
    let gs = group_of(&snap, sandbox.payload_pid()).expect("the sandbox's group");
    let ga = group_of(&snap, app.payload_pid()).expect("the app's group");
    expect_names(what, &gs, &sandbox, &pod, "POD", None);
    expect_names(what, &ga, &app, &pod, "nginx", Some(image));
    assert_eq!(
        ga["cgroup"],
        under_pod(&app_id).as_str(),
        "{what}: the path it was named from"
    );
    // They share the sandbox's network namespace: one pod of two.
    assert!(ga["pod"].is_string(), "{what}: {ga}");
    assert_eq!(ga["pod"], gs["pod"], "{what}: {gs}");
    assert_eq!(ga["shares_with_pod"], serde_json::json!(["net"]), "{what}");

    std::thread::sleep(Duration::from_millis(300));
    let (status, err) = common::interrupt(&mut rec);
    assert!(status.success(), "{err}");
    let events = read_events(file.path());
    let ss = started(&events, sandbox.payload_pid());
    let sa = started(&events, app.payload_pid());
    expect_names(what, &ss, &sandbox, &pod, "POD", None);
    expect_names(what, &sa, &app, &pod, "nginx", Some(image));
    drop(app);
    drop(sandbox);
}

/// One container under the systemd driver's layout (made as a plain cgroupfs path: no
/// systemd here), `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with
/// _>.slice/cri-containerd-<id>.scope`. The path says containerd, but its state is runc's.
#[test]
fn kubepods_systemd_form_is_named_from_cri_annotations() {
    let what = "kubepods_systemd";
    if !runtime_ok(what, Runtime::Runc) {
        return;
    }
    let pod = Pod::new("ksd");
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut rec = common::start_recording(&[], file.path(), Stdio::piped());
    let id = unique_hex_id("ksdc");
    let path = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
        pod.uid.replace('-', "_")
    );
    let image = "docker.io/library/redis:7";
    let c = Container::start_runc_with(
        "ksdc",
        RuncLayout {
            id: Some(id.clone()),
            cgroups_path: Some(path.clone()),
            annotations: pod.annotations(Some(("cache", image))),
            join_net: None,
        },
    );
    let g = group_of(&ps(), c.payload_pid()).expect("the container's group");
    expect_names(what, &g, &c, &pod, "cache", Some(image));
    assert_eq!(g["cgroup"], path.as_str(), "{what}: {g}");

    std::thread::sleep(Duration::from_millis(300));
    let (status, err) = common::interrupt(&mut rec);
    assert!(status.success(), "{err}");
    let events = read_events(file.path());
    let s = started(&events, c.payload_pid());
    expect_names(what, &s, &c, &pod, "cache", Some(image));
    drop(c);
}
