// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The bootstrap: one record per task of the machine, written by a BPF task iterator
// (iter/task) that user space reads like a file (src/bpf/iter.rs). /proc gives the same
// facts at a cost of 7 path lookups and 7 proc inodes per thread for the namespace links
// alone; here they are a few loads per task.
//
// Its own object, apart from bpf/nswatch.bpf.c: `nswatch ps` needs only this program, so it
// neither verifies the syscall hooks nor allocates their ring buffer and in-flight table,
// and a kernel without task iterators (before 5.8) still runs the probe.
//
// The record layout is read field by field in src/bpf/iter.rs: change both together.

#include "nswatch_core.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Slots of a namespace set, as in bpf/nswatch.bpf.c: perf's 7 in kernel index order, then
 * what perf leaves out. */
enum { NS_NET, NS_UTS, NS_IPC, NS_PID, NS_USER, NS_MNT, NS_CGROUP, NS_TIME,
       NS_PID_CHILDREN, NS_TIME_CHILDREN, NS_SLOTS };

struct nsw_task {
	u64 start_ns;
	u32 pid;
	u32 tid;
	u32 ppid;
	u32 nspid;
	u32 ns[NS_SLOTS];
	char comm[16];
};
_Static_assert(sizeof(struct nsw_task) == 80, "src/bpf/iter.rs reads 80 bytes");

/* bpf_probe_read (BPF_CORE_READ) rather than loads through the task's BTF pointers: those
 * cost the verifier a search of the kernel's BTF by name per pointer loaded from a trusted
 * one (btf_nested_type_is_trusted), about 10 ms at each load, for a saving of about as much
 * at 10,000 tasks; `nswatch ps` on a small machine would pay it for nothing. */
SEC("iter/task")
int nsw_iter_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);
	/* Exiting: its links are gone, and /proc shows none either. */
	if (!nsp)
		return 0;
	struct nsw_task r = {};
	r.pid = BPF_CORE_READ(task, tgid);
	r.tid = BPF_CORE_READ(task, pid);
	r.ppid = BPF_CORE_READ(task, real_parent, tgid);
	/* The boot-based time /proc/PID/stat's starttime is made from (in clock ticks there). */
	r.start_ns = BPF_CORE_READ(task, start_boottime);
	BPF_CORE_READ_STR_INTO(&r.comm, task, comm);

	/* numbers[level]: the task's number in its own (deepest) pid namespace, which is also
	 * the namespace /proc/PID/ns/pid names (task_active_pid_ns), not pid_for_children. */
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	if (pid) {
		unsigned int level = BPF_CORE_READ(pid, level);
		struct upid up = {};
		if (level <= 32 &&
		    !bpf_probe_read_kernel(&up, sizeof(up),
					   (void *)pid + bpf_core_field_offset(struct pid, numbers) +
						   level * bpf_core_type_size(struct upid))) {
			r.nspid = up.nr;
			r.ns[NS_PID] = BPF_CORE_READ(up.ns, ns.inum);
		}
	}
	r.ns[NS_NET] = BPF_CORE_READ(nsp, net_ns, ns.inum);
	r.ns[NS_UTS] = BPF_CORE_READ(nsp, uts_ns, ns.inum);
	r.ns[NS_IPC] = BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	/* real_cred, as /proc/PID/ns/user and perf (userns_get reads __task_cred): cred differs
	 * only while the kernel acts with borrowed credentials (override_creds). */
	r.ns[NS_USER] = BPF_CORE_READ(task, real_cred, user_ns, ns.inum);
	r.ns[NS_MNT] = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	r.ns[NS_CGROUP] = BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	if (bpf_core_field_exists(nsp->time_ns)) {
		r.ns[NS_TIME] = BPF_CORE_READ(nsp, time_ns, ns.inum);
		r.ns[NS_TIME_CHILDREN] = BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
	}
	r.ns[NS_PID_CHILDREN] = BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
