//! What the daemon-based runtimes need from the machine before a test can start a container:
//! containerd and dockerd running (started here when they are not: there is no systemd),
//! cgroup controllers crun accepts, a podman configuration that works in this VM, a user
//! for rootless podman, and images imported from the busybox rootfs. Done once per machine
//! and left in place, under a lock file, since several test binaries run at once.
//! docs/runtimes.md says why each step is needed.

use super::rootfs;
use super::runtimes::{command, resolve};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Shared state of the harness: the lock, podman's configuration, the rootfs tarball, the
/// daemons' logs. World-readable: the rootless podman user reads the tarball and config.
pub const STATE: &str = "/run/nswatch-tests";
/// containerd's default socket.
pub const CONTAINERD_SOCK: &str = "/run/containerd/containerd.sock";
/// dockerd's default socket.
pub const DOCKER_SOCK: &str = "/var/run/docker.sock";
/// The user rootless podman runs as (made here, with subordinate ids).
pub const ROOTLESS_USER: &str = "nswpodman";
/// The repository of the images imported from the busybox rootfs; the tag names the rootfs.
pub const IMAGE_REPO: &str = "nswatch-busybox";

/// Holds the machine-wide lock (flock on STATE/lock) until dropped.
pub struct Lock(File);

impl Lock {
    /// Waits for the lock.
    pub fn take() -> Lock {
        std::fs::create_dir_all(STATE).unwrap();
        std::fs::set_permissions(STATE, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = File::create(Path::new(STATE).join("lock")).unwrap();
        // SAFETY: a valid open fd; flock blocks until the lock is ours.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        Lock(f)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: the fd is still open.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn answers(sock: &str) -> bool {
    std::os::unix::net::UnixStream::connect(sock).is_ok()
}

/// Starts `cmd` as a daemon (own session, no stdin, output to STATE/NAME.log) unless
/// `sock` answers, and waits until it does. The daemon outlives the test.
fn ensure_daemon(name: &str, sock: &str, mut cmd: Command) -> Result<(), String> {
    if answers(sock) {
        return Ok(());
    }
    let _lock = Lock::take();
    if answers(sock) {
        return Ok(());
    }
    let log_path = Path::new(STATE).join(format!("{name}.log"));
    let log = File::create(&log_path).map_err(|e| e.to_string())?;
    // SAFETY: setsid is async-signal-safe; the child detaches from the test's session so
    // that it is not killed with the test's process group.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    let end = Instant::now() + Duration::from_secs(30);
    while !answers(sock) {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "{name} exited ({st}): {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        if Instant::now() > end {
            return Err(format!("{name}: {sock} does not answer after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Left running on purpose; its exit status is reaped by PID 1 once the test exits.
    std::mem::forget(child);
    Ok(())
}

/// containerd at its default socket and state (/run/containerd, /var/lib/containerd).
pub fn ensure_containerd() -> Result<(), String> {
    ensure_daemon("containerd", CONTAINERD_SOCK, command("containerd"))
}

/// dockerd at its default socket and data root (/var/lib/docker), on the shared containerd.
pub fn ensure_dockerd() -> Result<(), String> {
    ensure_containerd()?;
    let mut cmd = command("dockerd");
    cmd.arg(format!("--containerd={CONTAINERD_SOCK}"));
    ensure_daemon("dockerd", DOCKER_SOCK, cmd)
}

/// The docker client: Debian's /usr/bin/docker, which speaks the API of Debian's dockerd
/// (a newer client elsewhere on PATH may not).
pub fn docker() -> Command {
    if Path::new("/usr/bin/docker").is_file() {
        Command::new("/usr/bin/docker")
    } else {
        command("docker")
    }
}

/// crun refuses hybrid cgroups while the v2 hierarchy has controllers ("cgroups in hybrid
/// mode not supported, drop all controllers from cgroupv2"). systemd's hybrid mode mounts
/// every controller as v1; this machine leaves some (hugetlb) in v2. Mounts each such
/// controller at /sys/fs/cgroup/NAME as systemd would, which takes it out of v2.
pub fn ensure_crun_cgroups() -> Result<(), String> {
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    let Ok(text) = std::fs::read_to_string(unified) else {
        // Pure v2 (or pure v1): crun handles those.
        return Ok(());
    };
    if text.trim().is_empty() {
        return Ok(());
    }
    let _lock = Lock::take();
    for c in std::fs::read_to_string(unified)
        .unwrap_or_default()
        .split_whitespace()
    {
        let dir = PathBuf::from("/sys/fs/cgroup").join(c);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "cgroup", "-o", c, "cgroup"])
            .arg(&dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "mount cgroup {c}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// podman's configuration for this VM (CONTAINERS_CONF): rlimits no higher than the
/// caller's (the VM grants no CAP_SYS_RESOURCE, and podman's defaults raise nofile and
/// nproc), the cgroupfs manager and the file events logger (no systemd, no journald), crun.
pub fn podman_conf() -> PathBuf {
    let path = Path::new(STATE).join("containers.conf");
    let text = "[containers]\n\
                default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
                [engine]\n\
                cgroup_manager = \"cgroupfs\"\n\
                events_logger = \"file\"\n\
                runtime = \"crun\"\n";
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        // Written whole and renamed into place: no lock needed (callers may hold it).
        std::fs::create_dir_all(STATE).unwrap();
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// A podman command, rootful or as [`ROOTLESS_USER`], with [`podman_conf`].
pub fn podman(rootless: bool) -> Command {
    let conf = podman_conf();
    if rootless {
        let uid = user_id(ROOTLESS_USER).expect("rootless user");
        let mut cmd = command("runuser");
        cmd.args(["-u", ROOTLESS_USER, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR=/run/user/{uid}"))
            .arg(format!("HOME=/home/{ROOTLESS_USER}"))
            .arg(format!("CONTAINERS_CONF={}", conf.display()))
            .arg(resolve("podman"))
            // runuser keeps the caller's cwd, which the user may not enter.
            .current_dir("/");
        cmd
    } else {
        let mut cmd = command("podman");
        cmd.env("CONTAINERS_CONF", conf);
        cmd
    }
}

fn user_id(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?
    })
}

fn run_ok(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The user for rootless podman, with subordinate uids and gids and a runtime directory
/// (no systemd-logind to make /run/user/UID).
pub fn ensure_rootless_user() -> Result<u32, String> {
    let _lock = Lock::take();
    if user_id(ROOTLESS_USER).is_none() {
        let mut cmd = command("useradd");
        cmd.args(["-m", "-s", "/bin/sh", ROOTLESS_USER]);
        run_ok(cmd, "useradd")?;
    }
    let uid = user_id(ROOTLESS_USER).ok_or("useradd made no user")?;
    for (file, flag) in [
        ("/etc/subuid", "--add-subuids"),
        ("/etc/subgid", "--add-subgids"),
    ] {
        let has = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("{ROOTLESS_USER}:")));
        if !has {
            let mut cmd = command("usermod");
            cmd.args([flag, "200000-265535", ROOTLESS_USER]);
            run_ok(cmd, "usermod")?;
        }
    }
    let run = PathBuf::from(format!("/run/user/{uid}"));
    if !run.is_dir() {
        std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(&run, Some(uid), Some(uid)).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
    }
    Ok(uid)
}

/// The image tag for the current busybox rootfs (its directory name: busybox's size and
/// mtime), so a new busybox gets a new image.
pub fn image() -> String {
    let root = rootfs::busybox_rootfs();
    let tag = root
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .replace('_', "-");
    format!("{IMAGE_REPO}:{tag}")
}

/// A world-readable tarball of the busybox rootfs, for `docker import` / `podman import`.
fn rootfs_tar() -> Result<PathBuf, String> {
    let root = rootfs::busybox_rootfs();
    let tar = Path::new(STATE).join(format!(
        "{}.tar",
        root.file_name().unwrap().to_str().unwrap()
    ));
    if !tar.exists() {
        let tmp = tar.with_extension(format!("tmp{}", std::process::id()));
        let mut cmd = Command::new("tar");
        cmd.arg("-C").arg(root).arg("-cf").arg(&tmp).arg(".");
        run_ok(cmd, "tar")?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &tar).map_err(|e| e.to_string())?;
    }
    Ok(tar)
}

/// Imports [`image`] into docker unless it is there.
pub fn ensure_docker_image() -> Result<String, String> {
    let image = image();
    let _lock = Lock::take();
    let mut cmd = docker();
    cmd.args(["image", "inspect", &image]).stdout(Stdio::null());
    if run_ok(cmd, "docker image inspect").is_err() {
        let mut cmd = docker();
        cmd.arg("import").arg(rootfs_tar()?).arg(&image);
        run_ok(cmd, "docker import")?;
    }
    Ok(image)
}

/// Imports [`image`] into podman (rootful or the rootless user's store) unless it is there.
/// podman names it `localhost/<image>`.
pub fn ensure_podman_image(rootless: bool) -> Result<String, String> {
    let image = image();
    let _lock = Lock::take();
    let mut cmd = podman(rootless);
    cmd.args(["image", "exists", &image]);
    if run_ok(cmd, "podman image exists").is_err() {
        let mut cmd = podman(rootless);
        cmd.arg("import").arg(rootfs_tar()?).arg(&image);
        run_ok(cmd, "podman import")?;
    }
    Ok(format!("localhost/{image}"))
}
