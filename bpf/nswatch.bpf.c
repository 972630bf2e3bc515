// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The cause of every namespace change: setns, unshare, clone, clone3, fork and vfork, each
// seen on entry (arguments, what a setns fd refers to, the namespace set before) and on exit
// (result, the set after), sent to user space as one record through a BPF ring buffer; and
// execve/execveat where they move the caller into its time_for_children (the one change of
// namespace at exec, for which perf writes no record).
//
// Two ways in, one chosen at load time by src/bpf/probe.rs, sharing every line that builds
// the record (enter() and leave() below):
// - fentry/fexit (BPF trampolines) on the syscalls' own entry functions, __x64_sys_* or
//   __arm64_sys_*: only these six calls pay anything. They are the syscall table's targets
//   on every kernel with syscall wrappers (4.17+), never inlined, and take the user's
//   registers as a struct pt_regs, so the arguments are read the same way on every kernel;
//   fexit also gets the return value. They need BTF and trampoline support.
// - raw_tp/sys_enter and raw_tp/sys_exit, filtered by syscall number: the fallback where
//   no trampoline can attach. These tracepoints set the syscall-work flag on every task, so
//   every syscall of the machine takes the slow path and runs the first lines of both
//   programs. (The tp/syscalls/* tracepoints would need tracefs mounted for libbpf to find
//   their ids, and these machines do not mount it.)
//
// The record layout is read field by field in src/bpf/event.rs: change both together.

#include "nswatch_core.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#if defined(__TARGET_ARCH_x86)
#define NR_CLONE 56
#define NR_UNSHARE 272
#define NR_SETNS 308
#define NR_CLONE3 435
#define NR_FORK 57
#define NR_VFORK 58
#define NR_EXECVE 59
#define NR_EXECVEAT 322
/* The functions the syscall table calls: SYSCALL_DEFINE0 ones (fork, vfork) may exist in BTF
 * only as their alias __do_sys_*, which probe.rs substitutes when it must. */
#define SYS_FN(name) "__x64_sys_" #name
#define ARG0(r) BPF_CORE_READ(r, di)
#define ARG1(r) BPF_CORE_READ(r, si)
#define SYSCALL_NR(r) BPF_CORE_READ(r, orig_ax)
/* 32-bit tasks use other numbers (ia32 308 is pselect6): leave them out. */
#define IS_COMPAT(r) (BPF_CORE_READ(r, cs) == 0x23)
#elif defined(__TARGET_ARCH_arm64)
#define NR_CLONE 220
#define NR_UNSHARE 97
#define NR_SETNS 268
#define NR_CLONE3 435
/* No fork or vfork syscall on arm64 (the C library forks with clone): numbers no call has. */
#define NR_FORK (-1000)
#define NR_VFORK (-1001)
#define NR_EXECVE 221
#define NR_EXECVEAT 281
#define SYS_FN(name) "__arm64_sys_" #name
#define ARG0(r) BPF_CORE_READ(r, regs[0])
#define ARG1(r) BPF_CORE_READ(r, regs[1])
#define SYSCALL_NR(r) BPF_CORE_READ(r, syscallno)
#define IS_COMPAT(r) 0
#else
#error "nswatch's BPF program knows the syscall numbers of x86_64 and arm64 only"
#endif

#define NSFS_MAGIC 0x6e736673
#define PIDFS_MAGIC 0x50494446

#define CLONE_NEWTIME 0x00000080
#define CLONE_VM 0x00000100
#define CLONE_NEWNS 0x00020000
#define CLONE_NEWCGROUP 0x02000000
#define CLONE_NEWUTS 0x04000000
#define CLONE_NEWIPC 0x08000000
#define CLONE_NEWUSER 0x10000000
#define CLONE_NEWPID 0x20000000
#define CLONE_NEWNET 0x40000000
/* Without CLONE_NEWTIME: in clone()'s flags that bit is part of the exit signal. */
#define CLONE_NEW_ANY (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
		       CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

#define RINGBUF_SIZE (1024 * 1024)

enum { SYS_SETNS = 1, SYS_UNSHARE = 2, SYS_CLONE = 3, SYS_CLONE3 = 4, SYS_FORK = 5, SYS_VFORK = 6,
       SYS_EXECVE = 7, SYS_EXECVEAT = 8 };
/* An exec in flight is kept under its process id with this bit: a thread that execs takes
 * the process id as its tid (de_thread), so its exit is seen under another tid. */
#define EXEC_KEY 0x80000000u
enum { FD_NONE = 1, FD_NSFS = 2, FD_PIDFD = 3, FD_OTHER = 4 };
/* Slots of a namespace set: perf's 7 in kernel index order, then what perf leaves out. */
enum { NS_NET, NS_UTS, NS_IPC, NS_PID, NS_USER, NS_MNT, NS_CGROUP, NS_TIME,
       NS_PID_CHILDREN, NS_TIME_CHILDREN, NS_SLOTS };
enum { ST_CLONE3_ARGS_UNREAD = 1, ST_NO_NSPROXY = 2, ST_TARGET_GONE = 4 };

struct nsw_event {
	u64 enter_ns;
	u64 exit_ns;
	s64 ret;
	u64 flags;
	u32 pid;
	u32 tid;
	u32 syscall;
	s32 fd;
	u32 fd_kind;
	u32 target_type;
	u32 target_ino;
	u32 target_pid;
	u32 cpu;
	u32 status;
	u32 before[NS_SLOTS];
	u32 after[NS_SLOTS];
	u32 target[NS_SLOTS];
	char comm[16];
	/* For a call that made namespaces: the caller's cgroup (v2) when it returned, which a
	 * clone's child starts in. Its first task may be gone before the reader looks. */
	u64 cgroup;
};
_Static_assert(sizeof(struct nsw_event) == 216, "src/bpf/event.rs reads 216 bytes");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, struct nsw_event);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_SIZE);
} events SEC(".maps");

/* Calls that could not be reported: the ring buffer was full, the in-flight table was full.
 * Globals (.bss, mapped by user space) rather than a per-CPU array: the reader checks them
 * after every wake-up with two loads instead of two bpf() syscalls, and the program writes
 * them only when it loses a call. */
volatile u64 drops_ringbuf = 0;
volatile u64 drops_inflight = 0;

/* Calls between their enter and exit. While none is, sys_exit returns after this one load
 * instead of reading the syscall number out of pt_regs. */
volatile s64 inflight_n = 0;
/* The network namespaces the last two setns calls that woke the reader entered (see
 * leave()). */
volatile u32 joined_net_woke[2] = {};

/* pidfd_fops: how a pidfd is told before pidfs (Linux 6.9); 0 where the kernel has none. */
extern const void pidfd_fops __ksym __weak;

static __always_inline void count_drop(u32 which)
{
	__sync_fetch_and_add(which ? &drops_inflight : &drops_ringbuf, 1);
}

static __always_inline u32 ns_type(struct ns_common *ns)
{
	if (bpf_core_field_exists(ns->ns_type))
		return BPF_CORE_READ(ns, ns_type);
	struct ns_common___old *old = (void *)ns;
	return BPF_CORE_READ(old, ops, type);
}

/* The task's own (deepest) pid namespace, or 0. */
static __always_inline struct pid_namespace *active_pid_ns_of(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	if (!pid)
		return 0;
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};
	/* numbers[level]: the pid in the task's own (deepest) pid namespace. */
	if (level > 32)
		return 0;
	bpf_probe_read_kernel(&up, sizeof(up),
			      (void *)pid + bpf_core_field_offset(struct pid, numbers) +
				      level * bpf_core_type_size(struct upid));
	return up.ns;
}

static __always_inline u32 active_pid_ns(struct task_struct *task)
{
	struct pid_namespace *ns = active_pid_ns_of(task);
	return ns ? BPF_CORE_READ(ns, ns.inum) : 0;
}

/* Returns false when the task has no nsproxy any more (it is exiting). */
static __always_inline bool read_set(struct task_struct *task, u32 *out)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
	if (!nsp)
		return false;
	out[NS_NET] = BPF_CORE_READ(nsp, net_ns, ns.inum);
	out[NS_UTS] = BPF_CORE_READ(nsp, uts_ns, ns.inum);
	out[NS_IPC] = BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	out[NS_PID] = active_pid_ns(task);
	out[NS_USER] = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	out[NS_MNT] = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	out[NS_CGROUP] = BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	if (bpf_core_field_exists(nsp->time_ns)) {
		out[NS_TIME] = BPF_CORE_READ(nsp, time_ns, ns.inum);
		out[NS_TIME_CHILDREN] = BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
	}
	out[NS_PID_CHILDREN] = BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	return true;
}

/* What setns()'s fd refers to, looked up in the caller's fd table as the kernel will. */
static __always_inline void classify_fd(struct task_struct *task, int fd, struct nsw_event *e)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file *file = 0;
	if (fd >= 0 && fdt && (unsigned int)fd < BPF_CORE_READ(fdt, max_fds)) {
		struct file **fds = BPF_CORE_READ(fdt, fd);
		bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	}
	if (!file) {
		e->fd_kind = FD_NONE;
		return;
	}
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
	struct pid *pid = 0;
	if (magic == NSFS_MAGIC) {
		struct ns_common *ns = BPF_CORE_READ(inode, i_private);
		e->fd_kind = FD_NSFS;
		e->target_type = ns_type(ns);
		e->target_ino = BPF_CORE_READ(ns, inum);
		return;
	} else if (magic == PIDFS_MAGIC) {
		pid = BPF_CORE_READ(inode, i_private);
	} else if (&pidfd_fops && BPF_CORE_READ(file, f_op) == (void *)&pidfd_fops) {
		pid = BPF_CORE_READ(file, private_data);
	} else {
		e->fd_kind = FD_OTHER;
		return;
	}
	e->fd_kind = FD_PIDFD;
	if (!pid)
		return;
	/* numbers[0]: the pid as the initial pid namespace (the host) numbers it. */
	e->target_pid = BPF_CORE_READ(pid, numbers[0].nr);
	struct hlist_node *first = BPF_CORE_READ(pid, tasks[0].first);
	if (!first) {
		e->status |= ST_TARGET_GONE;
		return;
	}
	/* container_of(first, struct task_struct, pid_links[PIDTYPE_PID]) */
	struct task_struct *target =
		(void *)first - bpf_core_field_offset(struct task_struct, pid_links);
	if (!read_set(target, e->target))
		e->status |= ST_TARGET_GONE;
}

/* For a fork, a thread or an exec: whether it can put a task in a namespace other than the
 * caller's. Only what tells is read, and compared as pointers (the pid and time namespaces
 * and those for children: at most seven loads, where read_set() takes some thirty, each
 * a helper call here): nearly every such call stops here. A task without an nsproxy
 * (exiting) compares as read_set()'s zeros do: nothing differs. */
static __always_inline bool may_change(struct task_struct *task, u32 syscall, u64 flags,
				       bool flags_unread)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
	void *time = 0, *time_children = 0;
	if (nsp && bpf_core_field_exists(nsp->time_ns)) {
		time = BPF_CORE_READ(nsp, time_ns);
		time_children = BPF_CORE_READ(nsp, time_ns_for_children);
	}
	bool time_waits = time != time_children;
	if (syscall == SYS_EXECVE || syscall == SYS_EXECVEAT)
		/* Only an exec after unshare(CLONE_NEWTIME) changes a namespace. */
		return time_waits;
	/* A plain fork or thread is no namespace change unless the child lands in the
	 * caller's pid_for_children, or in its time_for_children: a CLONE_VM child (a
	 * thread, vfork) shares its creator's namespaces and stays in the old time
	 * namespace, entering the new one only at exec. */
	u64 mask = syscall == SYS_CLONE3 ? CLONE_NEW_ANY | CLONE_NEWTIME :
		   syscall == SYS_CLONE	 ? CLONE_NEW_ANY :
					   0;
	if ((flags & mask) || flags_unread)
		return true;
	bool shares_vm = syscall == SYS_VFORK || (syscall != SYS_FORK && (flags & CLONE_VM));
	if (time_waits && !shares_vm)
		return true;
	if (!nsp)
		return false;
	return (void *)active_pid_ns_of(task) != (void *)BPF_CORE_READ(nsp, pid_ns_for_children);
}

/* Takes the entry half of a call: the caller's set before and what it asked for, kept by
 * tid until leave(). `a0` and `a1` are the syscall's first two arguments. */
static __always_inline int enter(u32 syscall, u64 a0, u64 a1)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	/* fork, vfork and exec take no flags: they stay 0. */
	u64 flags = 0;
	bool flags_unread = false;
	if (syscall == SYS_SETNS) {
		flags = (u32)a1;
	} else if (syscall == SYS_UNSHARE || syscall == SYS_CLONE) {
		flags = a0;
	} else if (syscall == SYS_CLONE3) {
		/* struct clone_args starts with its u64 flags. */
		if (a1 < 8 || bpf_probe_read_user(&flags, 8, (void *)a0) < 0) {
			flags = 0;
			flags_unread = true;
		}
	}
	if (syscall != SYS_SETNS && syscall != SYS_UNSHARE &&
	    !may_change(task, syscall, flags, flags_unread))
		return 0;
	struct nsw_event e = {};
	u64 id = bpf_get_current_pid_tgid();
	e.enter_ns = bpf_ktime_get_ns();
	e.pid = id >> 32;
	e.tid = (u32)id;
	e.syscall = syscall;
	e.flags = flags;
	if (flags_unread)
		e.status |= ST_CLONE3_ARGS_UNREAD;
	if (syscall == SYS_SETNS) {
		e.fd = (int)a0;
		classify_fd(task, e.fd, &e);
	}
	if (!read_set(task, e.before))
		e.status |= ST_NO_NSPROXY;
	bool exec = syscall == SYS_EXECVE || syscall == SYS_EXECVEAT;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	u32 key = exec ? e.pid | EXEC_KEY : e.tid;
	bool again = bpf_map_lookup_elem(&inflight, &key) != 0;
	if (bpf_map_update_elem(&inflight, &key, &e, BPF_ANY) < 0) {
		count_drop(1);
		return 0;
	}
	if (!again)
		__sync_fetch_and_add(&inflight_n, 1);
	return 0;
}

/* Completes the call entered by this tid (`exec`: by this process) with its return value and
 * the set after, and sends the record. */
static __always_inline int leave(s64 ret, bool exec)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u32 key = exec ? (u32)(id >> 32) | EXEC_KEY : tid;
	struct nsw_event *in = bpf_map_lookup_elem(&inflight, &key);
	if (!in)
		return 0;
	__sync_fetch_and_add(&inflight_n, -1);
	if (exec && ret < 0) {
		/* A failed exec changed nothing, and a PATH search fails at every directory
		 * before the one that holds the program. */
		bpf_map_delete_elem(&inflight, &key);
		return 0;
	}
	struct nsw_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(0);
		bpf_map_delete_elem(&inflight, &key);
		return 0;
	}
	__builtin_memcpy(e, in, sizeof(*e));
	bpf_map_delete_elem(&inflight, &key);
	e->tid = tid;
	e->exit_ns = bpf_ktime_get_ns();
	e->ret = ret;
	e->cpu = bpf_get_smp_processor_id();
	if (!read_set((struct task_struct *)bpf_get_current_task(), e->after))
		e->status |= ST_NO_NSPROXY;
	/* Wake the reader only past half the ring, as its perf rings do: a storm of calls is
	 * read in batches, and the reader's tick bounds the wait. A call that made namespaces
	 * (a container, a sandbox being born) wakes it at once: its first process may live a
	 * millisecond, and the reader names the new group from /proc while it lives. */
	u64 used = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bool made = ret >= 0 && !exec &&
		    (e->syscall == SYS_UNSHARE ? (e->flags & (CLONE_NEW_ANY | CLONE_NEWTIME)) != 0 :
						 e->syscall != SYS_SETNS);
	/* A setns into a network namespace (`ip netns exec`) wakes it too, unless one of the
	 * last two that did entered the same namespace: the reader looks at /run/netns while
	 * the name is there, which `ip netns add` writes after making the namespace, and a
	 * storm going back and forth between two namespaces stays batched. */
	u32 net = e->after[NS_NET];
	bool joined_net = ret >= 0 && e->syscall == SYS_SETNS && (e->flags & CLONE_NEWNET) &&
			  net != joined_net_woke[0] && net != joined_net_woke[1];
	if (joined_net) {
		joined_net_woke[1] = joined_net_woke[0];
		joined_net_woke[0] = net;
	}
	e->cgroup = made ? bpf_get_current_cgroup_id() : 0;
	bpf_ringbuf_submit(e, used >= RINGBUF_SIZE / 2 || made || joined_net ?
				      BPF_RB_FORCE_WAKEUP :
				      BPF_RB_NO_WAKEUP);
	return 0;
}

/* ---- fentry/fexit: the arguments come from the user's registers the wrapper receives. */

#define TRAMPOLINES(name, code, exec)                                                    \
	SEC("fentry/" SYS_FN(name))                                                      \
	int BPF_PROG(nsw_fentry_##name, struct pt_regs *regs)                            \
	{                                                                                \
		return enter(code, ARG0(regs), ARG1(regs));                              \
	}                                                                                \
	SEC("fexit/" SYS_FN(name))                                                       \
	int BPF_PROG(nsw_fexit_##name, struct pt_regs *regs, long ret)                   \
	{                                                                                \
		return leave(ret, exec);                                                 \
	}

TRAMPOLINES(setns, SYS_SETNS, false)
TRAMPOLINES(unshare, SYS_UNSHARE, false)
TRAMPOLINES(clone, SYS_CLONE, false)
TRAMPOLINES(clone3, SYS_CLONE3, false)
TRAMPOLINES(fork, SYS_FORK, false)
TRAMPOLINES(vfork, SYS_VFORK, false)
TRAMPOLINES(execve, SYS_EXECVE, true)
TRAMPOLINES(execveat, SYS_EXECVEAT, true)

/* ---- raw_tp: every syscall of the machine comes here first; all but eight leave at once. */

static __always_inline u32 syscall_of(long nr)
{
	switch (nr) {
	case NR_SETNS: return SYS_SETNS;
	case NR_UNSHARE: return SYS_UNSHARE;
	case NR_CLONE: return SYS_CLONE;
	case NR_CLONE3: return SYS_CLONE3;
	case NR_FORK: return SYS_FORK;
	case NR_VFORK: return SYS_VFORK;
	case NR_EXECVE: return SYS_EXECVE;
	case NR_EXECVEAT: return SYS_EXECVEAT;
	default: return 0;
	}
}

SEC("raw_tp/sys_enter")
int nsw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u32 syscall = syscall_of(ctx->args[1]);
	if (!syscall)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	if (IS_COMPAT(regs))
		return 0;
	return enter(syscall, ARG0(regs), ARG1(regs));
}

SEC("raw_tp/sys_exit")
int nsw_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	if (!inflight_n)
		return 0;
	u32 syscall = syscall_of(SYSCALL_NR((struct pt_regs *)ctx->args[0]));
	if (!syscall)
		return 0;
	return leave((s64)ctx->args[1], syscall == SYS_EXECVE || syscall == SYS_EXECVEAT);
}
