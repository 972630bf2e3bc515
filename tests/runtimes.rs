//! The real-runtime harness itself, runtime by runtime: each starts on the busybox rootfs,
//! its tasks live in the namespaces it is known to make, a process started later joins
//! them, a fork/exec loop runs inside, and after stop nothing of it is left. Needs root:
//! skips with the reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.
//! Run with --nocapture to see each runtime's /proc/PID/cgroup lines (docs/runtimes.md).

mod common;
use common::machine;
use common::runtimes::{
    cgroup_lines, command, hierarchies, host_ns, inner_pid, ns_of, runtime_ok, Container, Proc,
    Runtime, KINDS,
};
use std::path::Path;
use std::process::Command;

/// Tasks that must be gone, told from a later process with the same pid.
fn snapshot(tids: &[u32]) -> Vec<Proc> {
    tids.iter().filter_map(|&t| Proc::of(t)).collect()
}

fn smoke(rt: Runtime) {
    let what = format!("smoke_{}", rt.label());
    if !runtime_ok(&what, rt) {
        return;
    }
    let mut c = Container::start(rt, "");
    let (init, payload) = (c.init_pid(), c.payload_pid());
    eprintln!("{what}: {c:?}");
    eprintln!(
        "{what}: payload cgroup:\n  {}",
        cgroup_lines(payload).join("\n  ")
    );

    // The payload's namespaces: exactly the expected ones differ from the host's.
    for k in KINDS {
        let differs = c.ns(k) != host_ns(k);
        assert_eq!(
            differs,
            rt.isolated().contains(k),
            "{what}: {k} of payload {payload} differs from the host's: {differs}"
        );
        assert_eq!(ns_of(init, k), Some(c.ns(k)), "{what}: init {init} {k}");
    }
    if rt.has_pid_ns() {
        assert_eq!(inner_pid(init), Some(1), "{what}: init is PID 1 inside");
    }

    // Every task the process tree gives is inside: the isolated namespaces are the payload's.
    let tasks = c.tasks();
    assert!(
        tasks.contains(&init) && tasks.contains(&payload),
        "{tasks:?}"
    );
    for &t in &tasks {
        for k in rt.isolated() {
            assert_eq!(ns_of(t, k), Some(c.ns(k)), "{what}: task {t} {k}");
        }
    }

    // The name can be read back from inside where the runtime sets the hostname.
    if matches!(
        rt,
        Runtime::Runc
            | Runtime::Crun
            | Runtime::Lxc
            | Runtime::Nspawn
            | Runtime::NspawnBare
            | Runtime::Bwrap
    ) {
        let out = c.run("cat /proc/sys/kernel/hostname");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            c.id(),
            "{what}: hostname {out:?}"
        );
    }

    // A process started later joins the payload's namespaces and is one of its tasks.
    let exec = c.exec(&["/bin/sleep", "100001"]);
    eprintln!(
        "{what}: exec {exec} cgroup:\n  {}",
        cgroup_lines(exec).join("\n  ")
    );
    for k in rt.exec_shares() {
        assert_eq!(ns_of(exec, k), Some(c.ns(k)), "{what}: exec {exec} {k}");
    }
    if rt.has_pid_ns() {
        assert_ne!(inner_pid(exec), Some(1), "{what}: exec is not init");
        assert_ne!(inner_pid(exec), Some(exec), "{what}: exec has an inner pid");
    }
    assert!(c.pids().contains(&exec), "{what}: {:?}", c.pids());
    assert_cgroups(&c, exec);
    if rt == Runtime::Runc {
        // runc's own account (its cgroup) agrees with the process tree's.
        let out = command("runc")
            .args(["ps", "--format", "json", c.id()])
            .output()
            .unwrap();
        let mut theirs: Vec<u32> = serde_json::from_slice(&out.stdout).unwrap();
        theirs.sort_unstable();
        assert_eq!(theirs, c.pids(), "runc ps vs process tree");
    }

    // Short-lived tasks inside.
    let out = c.fork_loop(200);
    assert!(String::from_utf8_lossy(&out.stdout).contains("done 200"));

    let before = snapshot(&c.tasks());
    assert!(before.len() >= 2, "{what}: {before:?}");
    c.stop();
    let left: Vec<&Proc> = before.iter().filter(|p| p.alive()).collect();
    assert!(left.is_empty(), "{what}: alive after stop: {left:?}");
    assert_nothing_left(&c);
}

/// The v2 cgroup line of `pid` ("0::/path").
fn unified(pid: u32) -> String {
    cgroup_lines(pid)
        .into_iter()
        .find(|l| l.starts_with("0::"))
        .unwrap_or_else(|| panic!("no v2 line for {pid}"))
}

/// The cgroup paths docs/runtimes.md gives for the payload and an exec'd process.
fn assert_cgroups(c: &Container, exec: u32) {
    let id = c.id();
    let mine = unified(std::process::id());
    let (payload, joined) = match c.runtime() {
        Runtime::Runc => (format!("0::/{id}"), format!("0::/{id}")),
        Runtime::Lxc => (
            format!("0::/lxc.payload.{id}"),
            format!("0::/lxc.payload.{id}/.lxc"),
        ),
        // nsenter moves no cgroup: the exec'd process stays where its caller was.
        Runtime::Nspawn => (
            format!("0::/machine.slice/machine-{id}.scope/payload"),
            mine.clone(),
        ),
        Runtime::NspawnBare => {
            let under = if mine == "0::/" { "0::" } else { &mine };
            (format!("{under}/payload"), mine.clone())
        }
        Runtime::Bwrap
        | Runtime::Firejail
        | Runtime::FirejailHostNet
        | Runtime::Netns
        | Runtime::PodmanRootless => (mine.clone(), mine.clone()),
        Runtime::Crun => (format!("0::/{id}"), format!("0::/{id}")),
        Runtime::Ctr => (format!("0::/default/{id}"), format!("0::/default/{id}")),
        Runtime::Docker => {
            let p = format!("0::/docker/{}", c.full_id().unwrap());
            (p.clone(), p)
        }
        Runtime::Podman => {
            let p = format!("0::/libpod_parent/libpod-{}", c.full_id().unwrap());
            (p.clone(), p)
        }
        Runtime::PodmanPod => {
            let p = format!(
                "0::/libpod_parent/{}/libpod-{}",
                c.pod().unwrap().1,
                c.full_id().unwrap()
            );
            (p.clone(), p)
        }
    };
    assert_eq!(unified(c.payload_pid()), payload, "{id}: payload cgroup");
    assert_eq!(unified(exec), joined, "{id}: exec'd process's cgroup");
    if c.runtime() == Runtime::Runc {
        // Every v1 hierarchy too, thanks to the absolute cgroupsPath.
        for l in cgroup_lines(c.payload_pid()) {
            assert!(l.ends_with(&format!(":/{id}")), "{l}");
        }
    }
}

/// What the runtime kept after stop (state, cgroups, netns) is gone too.
fn assert_nothing_left(c: &Container) {
    let id = c.id();
    for h in hierarchies() {
        for dir in [
            h.join(id),
            h.join(format!("lxc.payload.{id}")),
            h.join(format!("lxc.monitor.{id}")),
            h.join(format!("machine.slice/machine-{id}.scope")),
        ] {
            assert!(!dir.exists(), "{} left", dir.display());
        }
    }
    assert!(
        !Path::new("/run/netns").join(id).exists(),
        "netns {id} left"
    );
    if c.runtime() == Runtime::Runc {
        let st = command("runc").args(["state", id]).output().unwrap();
        assert!(!st.status.success(), "runc still knows {id}");
    }
    if c.runtime() == Runtime::Lxc {
        assert!(
            !c.dir().join("lxc").join(id).exists(),
            "lxc dir of {id} left"
        );
    }
    // The runtime no longer knows it.
    let asks: Vec<(Command, &str)> = match c.runtime() {
        Runtime::Crun => vec![(command("crun"), "state")],
        Runtime::Docker => vec![(machine::docker(), "inspect")],
        Runtime::Podman | Runtime::PodmanRootless => vec![(
            machine::podman(c.runtime() == Runtime::PodmanRootless),
            "container exists",
        )],
        Runtime::PodmanPod => vec![
            (machine::podman(false), "container exists"),
            (machine::podman(false), "pod exists"),
        ],
        Runtime::Ctr => vec![(command("ctr"), "container info")],
        _ => vec![],
    };
    for (mut cmd, ask) in asks {
        let name = if ask == "pod exists" {
            c.pod().unwrap().0.to_string()
        } else {
            id.to_string()
        };
        let out = cmd.args(ask.split(' ')).arg(&name).output().unwrap();
        assert!(!out.status.success(), "{ask} {name}: still known: {out:?}");
    }
}

#[test]
fn smoke_runc() {
    smoke(Runtime::Runc);
}

#[test]
fn smoke_lxc() {
    smoke(Runtime::Lxc);
}

#[test]
fn smoke_nspawn() {
    smoke(Runtime::Nspawn);
}

#[test]
fn smoke_bwrap() {
    smoke(Runtime::Bwrap);
}

#[test]
fn smoke_firejail() {
    smoke(Runtime::Firejail);
}

#[test]
fn smoke_firejail_host_net() {
    smoke(Runtime::FirejailHostNet);
}

#[test]
fn smoke_netns() {
    smoke(Runtime::Netns);
}

#[test]
fn smoke_nspawn_without_systemd() {
    smoke(Runtime::NspawnBare);
}

#[test]
fn smoke_docker() {
    smoke(Runtime::Docker);
}

#[test]
fn smoke_podman() {
    smoke(Runtime::Podman);
}

#[test]
fn smoke_podman_pod() {
    smoke(Runtime::PodmanPod);
}

#[test]
fn smoke_podman_rootless() {
    smoke(Runtime::PodmanRootless);
}

#[test]
fn smoke_ctr() {
    smoke(Runtime::Ctr);
}

#[test]
fn smoke_crun() {
    smoke(Runtime::Crun);
}

#[test]
fn runc_pod_shares_net_only() {
    if !runtime_ok("runc_pod_shares_net_only", Runtime::Runc) {
        return;
    }
    let mut a = Container::start(Runtime::Runc, "poda");
    let mut b = Container::start_runc_joining_net(&a, "podb");
    assert_eq!(a.ns("net"), b.ns("net"));
    assert_ne!(a.ns("net"), host_ns("net"));
    for k in ["mnt", "pid", "ipc", "uts"] {
        assert_ne!(a.ns(k), b.ns(k), "{k} shared");
        assert_ne!(b.ns(k), host_ns(k), "{k} is the host's");
    }
    // Both stay whole when the one whose namespace is shared stops first: the net
    // namespace lives on through the second.
    let net = b.ns("net");
    let b_tasks = snapshot(&b.tasks());
    a.stop();
    assert!(
        b_tasks.iter().all(Proc::alive),
        "{b:?}: {:?} gone after {a:?} stopped",
        b_tasks.iter().filter(|p| !p.alive()).collect::<Vec<_>>()
    );
    assert_eq!(b.ns("net"), net);
    b.stop();
    assert!(!b_tasks.iter().any(Proc::alive));
}

#[test]
fn two_of_a_kind_at_once_are_distinct() {
    // Tests run concurrently: two nspawn machines (one rootfs, two scopes) and two LXC
    // containers must not share anything but the rootfs.
    for rt in [Runtime::Nspawn, Runtime::Lxc] {
        if !runtime_ok("two_of_a_kind_at_once_are_distinct", rt) {
            continue;
        }
        let mut a = Container::start(rt, "a");
        let mut b = Container::start(rt, "b");
        assert_ne!(a.id(), b.id());
        for k in rt.isolated() {
            assert_ne!(a.ns(k), b.ns(k), "{rt:?} {k}");
        }
        let (ca, cb) = (cgroup_lines(a.payload_pid()), cgroup_lines(b.payload_pid()));
        let unified = |l: &Vec<String>| l.iter().find(|l| l.starts_with("0::")).cloned();
        assert_ne!(unified(&ca), unified(&cb), "{rt:?}: one cgroup for two");
        assert!(
            unified(&ca).unwrap().contains(a.id()),
            "{rt:?}: the cgroup names the container: {ca:?}"
        );
        a.stop();
        b.stop();
        assert_nothing_left(&a);
        assert_nothing_left(&b);
    }
}

#[test]
fn drop_cleans_up_a_running_container() {
    if !runtime_ok("drop_cleans_up_a_running_container", Runtime::Runc) {
        return;
    }
    let c = Container::start(Runtime::Runc, "drop");
    let id = c.id().to_string();
    let tasks = snapshot(&c.tasks());
    drop(c);
    assert!(!tasks.iter().any(Proc::alive), "{tasks:?}");
    let st = command("runc").args(["state", &id]).output().unwrap();
    assert!(!st.status.success(), "runc still knows {id}");
}
