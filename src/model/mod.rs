//! The container model: tasks, their namespace-set history, and the groups (host, pods,
//! containers, sandboxes) they form. Pure: fed events, asked questions; no I/O here.

pub mod cgroup;
