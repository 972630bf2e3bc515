//! A namespace syscall as the stream carries it: the "cause" of a NAMESPACES event, or an
//! "ns_syscall" event of its own. The eBPF probe decodes its records into a [`Cause`]
//! (`crate::bpf::event`); the writers, the model and the views read it from here.

use crate::json::{push_i64, push_u64, Digits, RecentTexts, TimeHigh};

/// Slots of a [`NsIds`]: perf's 7 links in kernel index order, then what perf leaves out.
pub const SLOT_NAMES: [&str; 10] = [
    "net",
    "uts",
    "ipc",
    "pid",
    "user",
    "mnt",
    "cgroup",
    "time",
    "pid_for_children",
    "time_for_children",
];

/// A task's namespaces as inode numbers of the nsfs (0: unknown or absent), indexed like
/// [`SLOT_NAMES`]. The device is the same for every namespace (one nsfs superblock), so it
/// is kept once, in [`Cause::dev`].
///
/// ```
/// use nswatch::event::cause::{NsIds, Target};
///
/// let mut ids: NsIds = [0; 10];
/// ids[0] = 4026531840; // the first slot: the target's network namespace
/// let target = Target::Pidfd { pid: 42, ns: Some(ids) };
/// assert!(matches!(target, Target::Pidfd { pid: 42, ns: Some(_) }));
/// ```
pub type NsIds = [u32; 10];

/// Which syscall.
///
/// ```
/// use nswatch::event::cause::Syscall;
///
/// assert_eq!(Syscall::from_name("setns"), Some(Syscall::Setns));
/// assert_eq!(Syscall::Clone3.name(), "clone3");
/// assert!(Syscall::Clone.creates_task() && !Syscall::Setns.creates_task());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// setns(fd, nstype)
    Setns,
    /// unshare(flags)
    Unshare,
    /// clone(flags, …)
    Clone,
    /// clone3(&clone_args, size)
    Clone3,
    /// fork(): no flags; seen only when the child lands in other namespaces (the caller's
    /// pid_for_children or time_for_children).
    Fork,
    /// vfork(): as fork (the C library's vfork() on x86_64 is this syscall).
    Vfork,
    /// execve(): seen only when it moved the caller into its time_for_children, the one
    /// namespace change an exec makes (a thread or vfork child created after
    /// unshare(CLONE_NEWTIME) enters the new time namespace there). perf writes no record.
    Execve,
    /// execveat(): as execve.
    Execveat,
}

impl Syscall {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Setns => "setns",
            Syscall::Unshare => "unshare",
            Syscall::Clone => "clone",
            Syscall::Clone3 => "clone3",
            Syscall::Fork => "fork",
            Syscall::Vfork => "vfork",
            Syscall::Execve => "execve",
            Syscall::Execveat => "execveat",
        }
    }

    /// The syscall of that name.
    pub fn from_name(name: &str) -> Option<Syscall> {
        [
            Syscall::Setns,
            Syscall::Unshare,
            Syscall::Clone,
            Syscall::Clone3,
            Syscall::Fork,
            Syscall::Vfork,
            Syscall::Execve,
            Syscall::Execveat,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// clone, clone3, fork or vfork: the perf record that follows is the child's.
    pub fn creates_task(self) -> bool {
        matches!(
            self,
            Syscall::Clone | Syscall::Clone3 | Syscall::Fork | Syscall::Vfork
        )
    }

    /// Whether a successful call makes perf write a NAMESPACES record (the caller's or the
    /// child's) that its cause travels in; an exec makes none.
    pub fn makes_record(self) -> bool {
        !matches!(self, Syscall::Execve | Syscall::Execveat)
    }
}

/// What setns()'s fd referred to when the call began.
///
/// ```
/// use nswatch::event::cause::{Cause, Syscall, Target};
///
/// let call = Cause {
///     syscall: Syscall::Setns,
///     target: Some((3, Target::Nsfs { ns_type: 0x0400_0000, ino: 4026532177 })),
///     ..Cause::blank()
/// };
/// assert!(matches!(call.target, Some((3, Target::Nsfs { ino: 4026532177, .. }))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The fd was not open (the kernel returns EBADF).
    Closed,
    /// A namespace file (/proc/PID/ns/*, a bind mount of one): its type as a CLONE_NEW*
    /// flag and its inode.
    Nsfs {
        /// CLONE_NEW* of the namespace.
        ns_type: u32,
        /// Inode number in the nsfs.
        ino: u32,
    },
    /// A pidfd: the process it refers to (pid in the initial pid namespace) and that
    /// process's namespaces, `None` when it had exited.
    Pidfd {
        /// Host pid.
        pid: u32,
        /// The target's namespaces.
        ns: Option<NsIds>,
    },
    /// Any other file (the kernel returns EINVAL).
    Other,
}

/// A namespace syscall, entry to exit.
///
/// ```
/// use nswatch::event::cause::{Cause, Syscall};
///
/// let call = Cause {
///     syscall: Syscall::Unshare,
///     flags: 0x0400_0000, // CLONE_NEWUTS
///     ret: 0,
///     ..Cause::blank()
/// };
/// assert!(call.ok());
/// assert_eq!(call.syscall.name(), "unshare");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Which call.
    pub syscall: Syscall,
    /// CLONE_* flags (setns: nstype).
    pub flags: u64,
    /// setns: the fd and what it referred to.
    pub target: Option<(i32, Target)>,
    /// Return value: 0 or a pid for success, -errno for failure.
    pub ret: i64,
    /// CLOCK_MONOTONIC at entry, ns.
    pub enter_ns: u64,
    /// CLOCK_MONOTONIC at exit, ns.
    pub exit_ns: u64,
    /// Process id (initial pid namespace).
    pub pid: u32,
    /// Thread id (initial pid namespace).
    pub tid: u32,
    /// CPU at exit.
    pub cpu: u32,
    /// Command name.
    pub comm: String,
    /// Namespaces before the call.
    pub before: NsIds,
    /// Namespaces after the call.
    pub after: NsIds,
    /// clone's child (host tid), learned from perf's FORK record.
    pub child_tid: Option<u32>,
    /// st_dev shared by every nsfs inode.
    pub dev: u64,
    /// clone3's flags could not be read from user memory.
    pub flags_unread: bool,
    /// For a call that made namespaces, the id of the caller's cgroup (v2) as it returned,
    /// which a clone's child starts in; 0 otherwise.
    pub cgroup: u64,
}

impl Cause {
    /// An empty cause, to be filled field by field (or by the probe's `Cause::parse_into`).
    pub fn blank() -> Cause {
        Cause {
            syscall: Syscall::Setns,
            flags: 0,
            target: None,
            ret: 0,
            enter_ns: 0,
            exit_ns: 0,
            pid: 0,
            tid: 0,
            cpu: 0,
            comm: String::new(),
            before: [0; 10],
            after: [0; 10],
            child_tid: None,
            dev: 0,
            flags_unread: false,
            cgroup: 0,
        }
    }

    /// The call succeeded.
    pub fn ok(&self) -> bool {
        self.ret >= 0
    }

    /// Appends the cause's fields (without braces) to a JSON object being written.
    ///
    /// Numbers are written by the event writer's digit routine and names appended from
    /// static tables: a setns storm writes one of these per line, and formatting them
    /// through `format!` (26 calls, as many allocations) costs more than the rest of the
    /// pipeline. `cache`, a [`crate::event::JsonWriter`]'s, keeps the text of the parts a
    /// storm repeats (see [`CauseCache`]).
    pub fn write_fields(&self, out: &mut Vec<u8>, cache: Option<&mut CauseCache>) {
        let Some(cache) = cache else {
            self.write_call(out);
            out.extend_from_slice(b",\"enter_ns\":");
            push_u64(out, self.enter_ns);
            out.extend_from_slice(b",\"exit_ns\":");
            push_u64(out, self.exit_ns);
            return self.write_sets(out);
        };
        let call = self.call_key();
        out.extend_from_slice(cache.calls.text(
            |k| *k == call,
            |text| {
                self.write_call(text);
                call.clone()
            },
        ));
        out.extend_from_slice(b",\"enter_ns\":");
        cache.times.push(out, self.enter_ns);
        out.extend_from_slice(b",\"exit_ns\":");
        cache.times.push(out, self.exit_ns);
        let sets = (self.dev, self.before, self.after);
        out.extend_from_slice(cache.sets.text(
            |k| *k == sets,
            |text| {
                self.write_sets(text);
                sets
            },
        ));
    }

    /// The fields from "syscall" to the result ("ok", "ret", "errno", "child_tid").
    fn write_call(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"syscall\":\"");
        out.extend_from_slice(self.syscall.name().as_bytes());
        out.extend_from_slice(b"\",\"flags\":\"");
        write_flag_names(self.syscall, self.flags, out);
        out.push(b'"');
        if self.flags_unread {
            out.extend_from_slice(b",\"flags_unread\":true");
        }
        if let Some((fd, t)) = &self.target {
            out.extend_from_slice(b",\"fd\":");
            push_i64(out, i64::from(*fd));
            out.extend_from_slice(b",\"target\":");
            match t {
                Target::Closed => out.extend_from_slice(b"{\"kind\":\"closed\"}"),
                Target::Other => out.extend_from_slice(b"{\"kind\":\"other\"}"),
                Target::Nsfs { ns_type, ino } => {
                    out.extend_from_slice(b"{\"kind\":\"nsfs\",\"type\":\"");
                    match ns_type_static(*ns_type) {
                        Some(name) => out.extend_from_slice(name.as_bytes()),
                        None => out.extend_from_slice(ns_type_name(*ns_type).as_bytes()),
                    }
                    out.extend_from_slice(b"\",\"dev\":");
                    push_u64(out, self.dev);
                    out.extend_from_slice(b",\"ino\":");
                    push_u64(out, u64::from(*ino));
                    out.push(b'}');
                }
                Target::Pidfd { pid, ns } => {
                    out.extend_from_slice(b"{\"kind\":\"pidfd\",\"pid\":");
                    push_u64(out, u64::from(*pid));
                    if let Some(ns) = ns {
                        out.extend_from_slice(b",\"ns\":");
                        write_ids_text(self.dev, ns, out);
                    }
                    out.push(b'}');
                }
            }
        }
        out.extend_from_slice(if self.ok() {
            b",\"ok\":true"
        } else {
            b",\"ok\":false"
        });
        out.extend_from_slice(b",\"ret\":");
        push_i64(out, self.ret);
        if !self.ok() {
            out.extend_from_slice(b",\"errno\":\"");
            out.extend_from_slice(errno_name(-self.ret).as_bytes());
            out.push(b'"');
        }
        if let Some(c) = self.child_tid {
            out.extend_from_slice(b",\"child_tid\":");
            push_u64(out, u64::from(c));
        }
    }

    /// The "before" and "after" fields.
    fn write_sets(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"before\":");
        write_ids_text(self.dev, &self.before, out);
        out.extend_from_slice(b",\"after\":");
        write_ids_text(self.dev, &self.after, out);
    }

    /// What [`Cause::write_call`] writes is made from.
    fn call_key(&self) -> CallKey {
        CallKey {
            syscall: self.syscall,
            flags: self.flags,
            flags_unread: self.flags_unread,
            target: self.target.clone(),
            ret: self.ret,
            child_tid: self.child_tid,
            dev: self.dev,
        }
    }
}

/// A set of links as a JSON object: `{"net":{"dev":4,"ino":…},…}`, the absent (0) left out.
fn write_ids_text(dev: u64, ids: &NsIds, out: &mut Vec<u8>) {
    // The device is the same for every link: its digits are made once.
    let dev = Digits::of(dev);
    out.push(b'{');
    let mut first = true;
    for (name, ino) in SLOT_NAMES.iter().zip(ids) {
        if *ino == 0 {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":{\"dev\":");
        dev.push_to(out);
        out.extend_from_slice(b",\"ino\":");
        push_u64(out, u64::from(*ino));
        out.push(b'}');
    }
    out.push(b'}');
}

/// The fields of a [`Cause`] that [`Cause::write_call`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CallKey {
    syscall: Syscall,
    flags: u64,
    flags_unread: bool,
    target: Option<(i32, Target)>,
    ret: i64,
    child_tid: Option<u32>,
    dev: u64,
}

/// The text of the parts of recent causes that a storm repeats, for [`Cause::write_fields`]:
/// its calls are a few calls (syscall, flags, target, result) again and again, going back
/// and forth between a few pairs of sets of links, at times that share their high digits.
/// Made every time, they were half of the CPU of writing a setns storm's lines (a line holds
/// two or three sets of ten links).
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct CauseCache {
    /// The fields from "syscall" to the result.
    calls: RecentTexts<CallKey>,
    /// `,"before":{…},"after":{…}`, by (device, before, after).
    sets: RecentTexts<(u64, NsIds, NsIds)>,
    /// The high digits of the last entry or exit time.
    times: TimeHigh,
}

impl Cause {
    /// Reads a cause back from the JSON [`Cause::write_fields`] wrote (a "namespaces"
    /// event's "cause" object, or an "ns_syscall" event, whose fields are the event's own),
    /// so that recorded streams replay with their causes. `pid`, `tid`, `cpu` and `comm`
    /// come from the event around it.
    pub fn from_json(
        v: &serde_json::Value,
        pid: u32,
        tid: u32,
        cpu: u32,
        comm: &str,
    ) -> Result<Cause, String> {
        use serde_json::Value;
        let name = v.get("syscall").and_then(Value::as_str);
        let syscall = name
            .and_then(Syscall::from_name)
            .ok_or_else(|| format!("cause: syscall {name:?}"))?;
        let flags = v
            .get("flags")
            .and_then(Value::as_str)
            .ok_or("cause: \"flags\" missing")
            .and_then(|f| parse_flags(f).ok_or("cause: flags not understood"))
            .map_err(str::to_string)?;
        let u64_of = |k: &str| v.get(k).and_then(Value::as_u64);
        let mut dev = 0;
        let mut ids = |k: &str| -> NsIds {
            let mut out = [0; 10];
            if let Some(o) = v.get(k).and_then(Value::as_object) {
                for (i, name) in SLOT_NAMES.iter().enumerate() {
                    if let Some(l) = o.get(*name) {
                        out[i] = l.get("ino").and_then(Value::as_u64).unwrap_or(0) as u32;
                        dev = l.get("dev").and_then(Value::as_u64).unwrap_or(dev);
                    }
                }
            }
            out
        };
        let before = ids("before");
        let after = ids("after");
        let target = match (v.get("fd").and_then(Value::as_i64), v.get("target")) {
            (Some(fd), Some(t)) => {
                let t = match t.get("kind").and_then(Value::as_str) {
                    Some("closed") => Target::Closed,
                    Some("other") => Target::Other,
                    Some("nsfs") => {
                        let ty = t.get("type").and_then(Value::as_str).unwrap_or("");
                        Target::Nsfs {
                            ns_type: parse_ns_type(ty).ok_or("cause: target type")?,
                            ino: t.get("ino").and_then(Value::as_u64).unwrap_or(0) as u32,
                        }
                    }
                    Some("pidfd") => {
                        let ns = t.get("ns").map(|_| {
                            let wrapped = serde_json::json!({ "ns": t["ns"] });
                            let mut out = [0; 10];
                            for (i, name) in SLOT_NAMES.iter().enumerate() {
                                out[i] = wrapped["ns"][*name]["ino"].as_u64().unwrap_or(0) as u32;
                            }
                            out
                        });
                        Target::Pidfd {
                            pid: t.get("pid").and_then(Value::as_u64).unwrap_or(0) as u32,
                            ns,
                        }
                    }
                    k => return Err(format!("cause: target kind {k:?}")),
                };
                Some((fd as i32, t))
            }
            _ => None,
        };
        Ok(Cause {
            syscall,
            flags,
            target,
            ret: v
                .get("ret")
                .and_then(Value::as_i64)
                .ok_or("cause: \"ret\" missing")?,
            enter_ns: u64_of("enter_ns").unwrap_or(0),
            exit_ns: u64_of("exit_ns").unwrap_or(0),
            pid,
            tid,
            cpu,
            comm: comm.to_string(),
            before,
            after,
            child_tid: u64_of("child_tid").map(|t| t as u32),
            dev,
            flags_unread: v
                .get("flags_unread")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            // Not in the stream: only the live session names from it.
            cgroup: 0,
        })
    }
}

/// The inverse of [`flag_names`].
fn parse_flags(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut flags = 0;
    for part in text.split('|') {
        flags |= if let Some((bit, _)) = CLONE_FLAGS.iter().find(|(_, n)| *n == part) {
            *bit
        } else if part == "CLONE_INTO_CGROUP" {
            0x200000000
        } else if let Some(hex) = part.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()?
        } else if let Some(n) = part.strip_prefix("signal ") {
            n.parse().ok()?
        } else {
            (match part {
                "SIGCHLD" => libc::SIGCHLD,
                "SIGKILL" => libc::SIGKILL,
                "SIGTERM" => libc::SIGTERM,
                "SIGUSR1" => libc::SIGUSR1,
                "SIGUSR2" => libc::SIGUSR2,
                _ => return None,
            }) as u64
        };
    }
    Some(flags)
}

/// The inverse of [`ns_type_name`].
fn parse_ns_type(name: &str) -> Option<u32> {
    Some(
        (match name {
            "net" => libc::CLONE_NEWNET,
            "uts" => libc::CLONE_NEWUTS,
            "ipc" => libc::CLONE_NEWIPC,
            "pid" => libc::CLONE_NEWPID,
            "user" => libc::CLONE_NEWUSER,
            "mnt" => libc::CLONE_NEWNS,
            "cgroup" => libc::CLONE_NEWCGROUP,
            "time" => 0x80,
            hex => return u32::from_str_radix(hex.strip_prefix("0x")?, 16).ok(),
        }) as u32,
    )
}

/// CLONE_* flags by name, in bit order.
const CLONE_FLAGS: [(u64, &str); 26] = [
    (0x80, "CLONE_NEWTIME"),
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x400000, "CLONE_DETACHED"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
    (0x100000000, "CLONE_CLEAR_SIGHAND"),
];

/// `flags` spelled by name, joined by '|' ("CLONE_NEWNET|CLONE_NEWUTS"); bits without a
/// name as hex; "0" for none. clone()'s low byte is the exit signal, not a flag.
pub fn flag_names(syscall: Syscall, flags: u64) -> String {
    let mut out = Vec::new();
    write_flag_names(syscall, flags, &mut out);
    String::from_utf8(out).expect("flag names are ASCII")
}

/// [`flag_names`], appended to `out` without allocating (unless a signal or bits without
/// a name need formatting).
fn write_flag_names(syscall: Syscall, flags: u64, out: &mut Vec<u8>) {
    let start = out.len();
    let sep = |out: &mut Vec<u8>| {
        if out.len() > start {
            out.push(b'|');
        }
    };
    let mut rest = flags;
    if syscall == Syscall::Clone {
        let sig = flags & 0xff;
        rest &= !0xff;
        if sig != 0 {
            sep(out);
            out.extend_from_slice(signal_name(sig).as_bytes());
        }
    }
    for (bit, name) in CLONE_FLAGS {
        if rest & bit != 0 {
            sep(out);
            out.extend_from_slice(name.as_bytes());
            rest &= !bit;
        }
    }
    if rest & 0x200000000 != 0 {
        sep(out);
        out.extend_from_slice(b"CLONE_INTO_CGROUP");
        rest &= !0x200000000;
    }
    if rest != 0 {
        sep(out);
        out.extend_from_slice(format!("{rest:#x}").as_bytes());
    }
    if out.len() == start {
        out.push(b'0');
    }
}

fn signal_name(sig: u64) -> String {
    match sig as i32 {
        libc::SIGCHLD => "SIGCHLD".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        s => format!("signal {s}"),
    }
}

/// The kind a CLONE_NEW* flag stands for ("net", …), as setns()'s namespace types.
pub fn ns_type_name(t: u32) -> String {
    match ns_type_static(t) {
        Some(name) => name.into(),
        None => format!("{t:#x}"),
    }
}

/// [`ns_type_name`] of the types that have a name.
fn ns_type_static(t: u32) -> Option<&'static str> {
    Some(match t as i32 {
        libc::CLONE_NEWNET => "net",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWNS => "mnt",
        libc::CLONE_NEWCGROUP => "cgroup",
        0x80 => "time",
        _ => return None,
    })
}

/// An errno by its name ("EINVAL"); `E<n>` for one this table lacks.
pub fn errno_name(e: i64) -> String {
    let name = match e as i32 {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::EUSERS => "EUSERS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ERESTART => "ERESTART",
        512 => "ERESTARTSYS",
        513 => "ERESTARTNOINTR",
        _ => return format!("E{e}"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_and_errno_names() {
        assert_eq!(
            flag_names(Syscall::Clone, 0x01200000 | libc::SIGCHLD as u64),
            "SIGCHLD|CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID"
        );
        assert_eq!(flag_names(Syscall::Clone3, 1 << 40), "0x10000000000");
        assert_eq!(errno_name(libc::EPERM as i64), "EPERM");
        assert_eq!(errno_name(4000), "E4000");
        assert_eq!(ns_type_name(0x80), "time");
        assert!(parse_flags("CLONE_BOGUS").is_none());
    }
}
