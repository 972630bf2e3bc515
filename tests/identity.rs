//! Group identity and nesting against real runtimes: one namespace is one group however often
//! it is left and entered again (a thread flipping its uts namespace, `ip netns exec` after
//! `ip netns exec`); a process that unshares its mount and pid namespaces inside a docker or
//! LXC container makes groups nested in that container, in no pod; a podman pod's
//! containers are one pod; and `nswatch ps`, `nswatch record` and the library's Session give
//! the same id to the same task. Needs root: skips with the reason otherwise, fails under
//! NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::recording::{group_of, ps, Recording};
use common::runtimes::{ns_of, runtime_ok, Container, Runtime};
use nswatch::session::{Session, SessionOptions, Update};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The events of `evs` of type `ty` whose group is `id`.
fn of_group<'a>(evs: &'a [Value], ty: &str, id: &str) -> Vec<&'a Value> {
    evs.iter()
        .filter(|e| e["type"] == ty && e["container"] == id)
        .collect()
}

/// Whether the recording says it lost records (then counts can only be lower bounds).
fn lost_any(evs: &[Value]) -> bool {
    evs.iter().any(|e| e["type"] == "lost")
}

#[test]
fn a_thread_flipping_its_uts_namespace_is_one_group() {
    if !common::live_ok("uts_flip") {
        return;
    }
    const FLIPS: usize = 1000;
    let bin = common::build_c("fixtures/src/uts_flip.c");
    let host_uts = ns_of(std::process::id(), "uts").unwrap();
    let rec = Recording::start();
    let mut child = Command::new(&bin)
        .arg(FLIPS.to_string())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Single-threaded: its tid is its pid.
    let tid = child.id();
    assert!(child.wait().unwrap().success());
    let (evs, err) = rec.stop();
    let flips: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "namespaces" && e["tid"] == tid)
        .filter(|e| e["ns"]["uts"]["ino"] != host_uts.1)
        .collect();
    // The unshare and every flip back.
    if lost_any(&evs) {
        assert!(!flips.is_empty(), "{err}");
    } else {
        assert_eq!(flips.len(), FLIPS + 1, "{err}");
    }
    let ino = flips[0]["ns"]["uts"]["ino"].as_u64().unwrap();
    let id = flips[0]["container"].as_str().unwrap().to_string();
    assert_eq!(id, format!("sb-{ino}"), "named by the namespace it made");
    for e in &flips {
        assert_eq!(e["ns"]["uts"]["ino"], ino, "one namespace made: {e}");
        assert_eq!(e["container"], id.as_str(), "{e}");
    }
    // Back in the host's: the host's events.
    for e in evs
        .iter()
        .filter(|e| e["type"] == "namespaces" && e["tid"] == tid)
        .filter(|e| e["ns"]["uts"]["ino"] == host_uts.1)
    {
        assert_eq!(e["container"], "host", "{e}");
    }
    // The label names the namespace by its number: an earlier group of another test may
    // have had it while it was another namespace's. This thread's group is the one it
    // leads.
    let led = |kind: &str| -> Vec<&Value> {
        of_group(&evs, kind, &id)
            .into_iter()
            .filter(|e| e["tid"] == tid)
            .collect()
    };
    let starts = led("container_start");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["kind"], "sandbox");
    assert_eq!(starts[0]["owns"], serde_json::json!(["uts"]));
    assert_eq!(led("container_exit").len(), 1);
}

#[test]
fn the_recorded_uts_flip_is_one_group() {
    let text = common::nswatch(&[
        "report",
        "--format",
        "ndjson",
        common::fixture("uts-flip.data").to_str().unwrap(),
    ]);
    let evs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let flipper: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "namespaces" && e["comm"] == "nswatch-uts-fli")
        .collect();
    let tid = flipper.first().expect("the flipping thread's events")["tid"].clone();
    let mut by_uts: Vec<(u64, String, usize)> = Vec::new();
    for e in evs
        .iter()
        .filter(|e| e["type"] == "namespaces" && e["tid"] == tid)
    {
        let ino = e["ns"]["uts"]["ino"].as_u64().unwrap();
        let id = e["container"].as_str().unwrap().to_string();
        match by_uts.iter_mut().find(|(i, g, _)| *i == ino && *g == id) {
            Some(c) => c.2 += 1,
            None => by_uts.push((ino, id, 1)),
        }
    }
    // fixtures/uts-flip.cmd: 500 flips, so 501 entries into the made namespace (the unshare
    // and each setns back) and the rest in the host's, each uts namespace one group.
    assert_eq!(by_uts.len(), 2, "{by_uts:?}");
    let made = by_uts.iter().find(|(_, g, _)| g != "host").unwrap();
    assert_eq!(made.1, format!("sb-{}", made.0));
    assert_eq!(made.2, 501);
    assert_eq!(of_group(&evs, "container_start", &made.1).len(), 1);
    assert_eq!(of_group(&evs, "container_exit", &made.1).len(), 1);
}

#[test]
fn ip_netns_exec_after_ip_netns_exec_is_one_sandbox() {
    if !runtime_ok("netns_reentry", Runtime::Netns) {
        return;
    }
    let name = common::runtimes::unique_name("reent");
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let rec = Recording::start();
    assert!(Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap()
        .success());
    let _netns = Netns(name.clone());
    let mut pids = Vec::new();
    let mut ps_ids = Vec::new();
    for _ in 0..3 {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &name, "sleep", "0.5"])
            .spawn()
            .unwrap();
        let pid = child.id();
        // ip netns exec execs sleep in its own process once in the namespace.
        let t0 = Instant::now();
        while common::runtimes::cmdline(pid).first().map(String::as_str) != Some("sleep") {
            assert!(t0.elapsed() < Duration::from_secs(10), "no sleep in {name}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let g = group_of(&ps(), pid).unwrap_or_else(|| panic!("ps has no group of {pid}"));
        assert_eq!(g["name"], name.as_str(), "{g}");
        assert_eq!(g["kind"], "sandbox", "{g}");
        ps_ids.push(g["id"].as_str().unwrap().to_string());
        assert!(child.wait().unwrap().success());
        pids.push(pid);
    }
    let (evs, err) = rec.stop();
    assert!(ps_ids.iter().all(|i| *i == ps_ids[0]), "ps: {ps_ids:?}");
    let id = ps_ids[0].as_str();
    for pid in &pids {
        let mine: Vec<&Value> = evs
            .iter()
            .filter(|e| e["type"] == "comm" && e["pid"] == *pid && e["comm"] == "sleep")
            .collect();
        assert!(!mine.is_empty(), "no exec of sleep by {pid}\n{err}");
        for e in mine {
            assert_eq!(e["container"], id, "{e}");
        }
    }
    // Every start of it (one per entry after it lingered empty) has the one id and the
    // netns name; no other group has that name.
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "container_start" && e["name"] == name.as_str())
        .collect();
    assert!(!starts.is_empty() && starts.len() <= 4, "{starts:?}");
    for s in starts {
        assert_eq!(s["container"], id, "{s}");
        assert_eq!(s["runtime"], "ip-netns", "{s}");
    }
}

/// A process that runs `unshare -m -p -f sleep` inside `c` (busybox's unshare, from the
/// container's own filesystem): the unsharing process (new mount namespace, the container's
/// pid namespace) and its child (new mount and pid namespaces) are each a group nested in
/// `c`, in no pod, and `c` is in none.
fn unshare_inside_is_nested(what: &str, mut c: Container, rec: Recording) {
    let payload = c.payload_pid();
    let unshare = c.exec(&["unshare", "-m", "-p", "-f", "sleep", "60"]);
    let t0 = Instant::now();
    let child = loop {
        let kids = common::runtimes::descendants(unshare);
        if let Some(&k) = kids
            .iter()
            .find(|&&k| k != unshare && common::runtimes::cmdline(k) == ["sleep", "60"])
        {
            break k;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}: no child");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ns_of(unshare, "pid"), Some(c.ns("pid")));
    assert_ne!(ns_of(child, "pid"), Some(c.ns("pid")));

    let snap = ps();
    let outer = group_of(&snap, payload).unwrap();
    let mid = group_of(&snap, unshare).unwrap();
    let inner = group_of(&snap, child).unwrap();
    let ids = [&outer, &mid, &inner].map(|g| g["id"].as_str().unwrap().to_string());
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        3,
        "{what}: three groups: {ids:?}"
    );
    // Ids from the namespaces the test made: the container's by its pid namespace, the
    // unsharing process's by that pid namespace and its new mount namespace (it is no later
    // generation of the container), its child's by its new pid namespace.
    let pid_ino = c.ns("pid").1;
    assert_eq!(ids[0], format!("ct-{pid_ino}"));
    assert_eq!(
        ids[1],
        format!("ct-{pid_ino}-{}", ns_of(unshare, "mnt").unwrap().1)
    );
    assert_eq!(ids[2], format!("ct-{}", ns_of(child, "pid").unwrap().1));
    assert_eq!(outer["parent"], Value::Null, "{what}: {outer}");
    for g in [&outer, &mid, &inner] {
        assert_eq!(g["kind"], "container", "{what}: {g}");
        assert_eq!(g["pod"], Value::Null, "{what}: in a pod: {g}");
    }
    for g in [&mid, &inner] {
        assert_eq!(g["parent"], ids[0].as_str(), "{what}: parent of {g}");
    }
    for pod in snap["pods"].as_array().unwrap() {
        for m in pod["containers"].as_array().unwrap() {
            assert!(!ids.iter().any(|i| m == i.as_str()), "{what}: pod {pod}");
        }
    }
    // The text tree has them under it.
    let text = common::nswatch(&["ps"]);
    let line = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!("[{id}]")))
            .unwrap_or_else(|| panic!("{what}: {id} not in\n{text}"))
            .to_string()
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let outer_line = line(&ids[0]);
    for id in &ids[1..] {
        assert!(indent(&line(id)) > indent(&outer_line), "{what}:\n{text}");
    }

    c.stop();
    let (evs, err) = rec.stop();
    let label_of = |pid: u32| {
        evs.iter()
            .rev()
            .find(|e| e["type"] == "namespaces" && e["pid"] == pid)
            .unwrap_or_else(|| panic!("{what}: no namespaces event of {pid}\n{err}"))["container"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let rec_ids = [payload, unshare, child].map(label_of);
    for (r, p) in rec_ids.iter().zip(&ids) {
        assert_eq!(r, p, "{what}: record's {r}, ps's {p}");
    }
    // A label names a namespace by its number, which an earlier group of another test may
    // have had: each nested group's starts are those it led.
    for (id, leader) in rec_ids[1..].iter().zip([unshare, child]) {
        let starts: Vec<&Value> = of_group(&evs, "container_start", id)
            .into_iter()
            .filter(|e| e["tid"] == leader)
            .collect();
        assert!(!starts.is_empty(), "{what}: no container_start of {id}");
        for s in starts {
            assert_eq!(s["parent"], rec_ids[0].as_str(), "{what}: {s}");
            assert_eq!(s["kind"], "container", "{what}: {s}");
        }
    }
    for s in of_group(&evs, "container_start", &rec_ids[0])
        .into_iter()
        .filter(|e| e["tid"] == payload)
    {
        assert_eq!(s["parent"], Value::Null, "{what}: {s}");
    }
}

#[test]
fn unshare_in_a_docker_container_is_nested_in_it() {
    if !runtime_ok("nested_docker", Runtime::Docker) {
        return;
    }
    let rec = Recording::start();
    // Docker's default seccomp profile and capabilities forbid unshare(CLONE_NEWNS).
    let c = Container::start_engine_with(
        Runtime::Docker,
        "nest",
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
        ],
    );
    unshare_inside_is_nested("docker", c, rec);
}

#[test]
fn unshare_in_an_lxc_container_is_nested_in_it() {
    if !runtime_ok("nested_lxc", Runtime::Lxc) {
        return;
    }
    let rec = Recording::start();
    let c = Container::start(Runtime::Lxc, "nest");
    unshare_inside_is_nested("lxc", c, rec);
}

#[test]
fn a_podman_pods_containers_are_one_pod() {
    if !runtime_ok("podman_pod", Runtime::PodmanPod) {
        return;
    }
    let c = Container::start(Runtime::PodmanPod, "one");
    let (pod_name, pod_id) = c.pod().unwrap();
    let second = format!("{}-b", c.id());
    let out = common::machine::podman(false)
        .args(["inspect", "-f", "{{.State.Pid}}", &second])
        .output()
        .unwrap();
    let b: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let snap = ps();
    let ga = group_of(&snap, c.payload_pid()).unwrap();
    let gb = group_of(&snap, b).unwrap();
    assert_ne!(ga["id"], gb["id"]);
    let pod = ga["pod"].as_str().expect("in a pod");
    assert_eq!(gb["pod"], pod, "{gb}");
    let entry = snap["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == pod)
        .unwrap_or_else(|| panic!("{pod} not listed: {snap}"));
    let members: Vec<&str> = entry["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        members.contains(&ga["id"].as_str().unwrap())
            && members.contains(&gb["id"].as_str().unwrap()),
        "{entry}"
    );
    // Every member is one of this pod's containers (the two and podman's infra container).
    for m in &members {
        let g = snap["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == *m)
            .unwrap();
        assert_eq!(g["pod_id"], pod_id, "{g}");
        assert_eq!(g["pod_name"], pod_name, "{g}");
        assert_eq!(g["runtime"], "podman", "{g}");
    }
    assert_eq!(entry["net"]["ino"], c.ns("net").1);
    // One pod for the shared network namespace.
    let same_net = snap["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["net"] == entry["net"])
        .count();
    assert_eq!(same_net, 1);
}

/// The labels of a task's events from its last namespace change on (before it, the
/// runtime was still moving it in: host, a sandbox of the network made first).
fn settled(seq: &[(bool, String)]) -> BTreeSet<String> {
    let from = seq.iter().rposition(|(ns, _)| *ns).unwrap_or(0);
    seq[from..].iter().map(|(_, l)| l.clone()).collect()
}

/// For one runtime: a container started while `record` and a Session run gets the same id
/// from `ps`, from `record`'s events of its payload and from the Session's.
fn same_id_everywhere(rt: Runtime) {
    let what = format!("same_id_{}", rt.label());
    if !runtime_ok(&what, rt) {
        return;
    }
    let mut s = Session::start(SessionOptions::default()).unwrap();
    s.bootstrap(|_, _| {}).unwrap();
    let rec = Recording::start();
    let mut c = Container::start(rt, "same");
    let payload = c.payload_pid();
    let snap = ps();
    let ps_id = group_of(&snap, payload).unwrap_or_else(|| panic!("{what}: ps has no {payload}"))
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The Session's events of the payload until it caught up with the present.
    let mut session_seq = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) || session_seq.is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what}: no event of {payload} in the Session"
        );
        s.poll(Duration::from_millis(50), |model, u| {
            if let Update::Event {
                event,
                group: Some(g),
            } = u
            {
                if event.pid == Some(payload) && !event.synthesized {
                    let ns = event.body.type_name() == "namespaces";
                    session_seq.push((ns, model.group(g).label().to_string()));
                }
            }
        })
        .unwrap();
    }
    let session_now = s
        .model()
        .attribute(payload, payload, nswatch::live::monotonic_ns())
        .map(|a| s.model().group(a.group).label().to_string());
    c.stop();
    let (evs, err) = rec.stop();
    let record_seq: Vec<(bool, String)> = evs
        .iter()
        .filter(|e| e["pid"] == payload && !e["synthesized"].as_bool().unwrap_or(false))
        .filter_map(|e| {
            let label = e["container"].as_str()?.to_string();
            Some((e["type"] == "namespaces", label))
        })
        .collect();
    let record_ids = settled(&record_seq);
    let session_ids = settled(&session_seq);
    assert_eq!(record_ids.len(), 1, "{what}: record: {record_ids:?}\n{err}");
    assert_eq!(session_ids.len(), 1, "{what}: Session: {session_ids:?}");
    let recorded = record_ids.first().unwrap();
    assert_eq!(
        recorded, &ps_id,
        "{what}: record's {recorded}, ps's {ps_id}\n{err}"
    );
    let in_session = session_ids.first().unwrap();
    assert_eq!(
        in_session, &ps_id,
        "{what}: Session's {in_session}, ps's {ps_id}"
    );
    assert_eq!(session_now.as_ref(), Some(in_session), "{what}");
}

macro_rules! same_id {
    ($($name:ident: $rt:expr,)*) => {$(
        #[test]
        fn $name() {
            same_id_everywhere($rt);
        }
    )*};
}

same_id! {
    same_id_runc: Runtime::Runc,
    same_id_crun: Runtime::Crun,
    same_id_lxc: Runtime::Lxc,
    same_id_nspawn: Runtime::Nspawn,
    same_id_nspawn_without_systemd: Runtime::NspawnBare,
    same_id_bwrap: Runtime::Bwrap,
    same_id_firejail: Runtime::Firejail,
    same_id_firejail_host_net: Runtime::FirejailHostNet,
    same_id_ip_netns: Runtime::Netns,
    same_id_docker: Runtime::Docker,
    same_id_podman: Runtime::Podman,
    same_id_podman_pod: Runtime::PodmanPod,
    same_id_podman_rootless: Runtime::PodmanRootless,
    same_id_ctr: Runtime::Ctr,
}
