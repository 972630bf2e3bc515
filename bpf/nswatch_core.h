/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The few kernel types nswatch's BPF program reads, declared by hand instead of a generated
 * vmlinux.h: libbpf relocates every access against the running kernel's BTF
 * (/sys/kernel/btf/vmlinux), so only the names of the fields matter here, never their
 * offsets, and no machine needs bpftool to build nswatch.
 */
#ifndef NSWATCH_CORE_H
#define NSWATCH_CORE_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum { BPF_ANY = 0 };
enum { BPF_RB_NO_WAKEUP = 1, BPF_RB_FORCE_WAKEUP = 2 };
enum { BPF_RB_AVAIL_DATA = 0 };

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
	unsigned long cs;
};
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	u64 regs[31];
	u64 syscallno;
};
#endif

struct proc_ns_operations;

struct ns_common {
	u32 ns_type; /* Linux 6.18 and later; older kernels keep it in ops->type */
	const struct proc_ns_operations *ops;
	unsigned int inum;
};

/* The layout before Linux 6.18, found by CO-RE when ns_common has no ns_type. */
struct proc_ns_operations___old {
	int type;
};
struct ns_common___old {
	const struct proc_ns_operations___old *ops;
};

struct uts_namespace { struct ns_common ns; };
struct ipc_namespace { struct ns_common ns; };
struct mnt_namespace { struct ns_common ns; };
struct pid_namespace { struct ns_common ns; };
struct net { struct ns_common ns; };
struct time_namespace { struct ns_common ns; };
struct cgroup_namespace { struct ns_common ns; };
struct user_namespace { struct ns_common ns; };

struct nsproxy {
	struct uts_namespace *uts_ns;
	struct ipc_namespace *ipc_ns;
	struct mnt_namespace *mnt_ns;
	struct pid_namespace *pid_ns_for_children;
	struct net *net_ns;
	struct time_namespace *time_ns;
	struct time_namespace *time_ns_for_children;
	struct cgroup_namespace *cgroup_ns;
};

struct cred {
	struct user_namespace *user_ns;
};

struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct hlist_node {
	struct hlist_node *next;
};

struct hlist_head {
	struct hlist_node *first;
};

struct pid {
	unsigned int level;
	struct hlist_head tasks[4];
	struct upid numbers[0];
};

struct super_block {
	unsigned long s_magic;
};

struct inode {
	struct super_block *i_sb;
	void *i_private;
};

struct file_operations;

struct file {
	struct inode *f_inode;
	const struct file_operations *f_op;
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	int pid;
	int tgid;
	u64 start_boottime;
	char comm[16];
	struct task_struct *real_parent;
	struct pid *thread_pid;
	struct hlist_node pid_links[4];
	const struct cred *real_cred;
	const struct cred *cred;
	struct files_struct *files;
	struct nsproxy *nsproxy;
};

#pragma clang attribute pop

/*
 * A task iterator's context (kernel/bpf/task_iter.c), for bpf/nswatch_iter.bpf.c. Outside
 * preserve_access_index on purpose: its layout is fixed since iterators came (5.8), and
 * each relocated type costs libbpf a scan of every type in the kernel's BTF at load time,
 * which is most of the bootstrap's fixed cost.
 */
struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
};

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

#endif
