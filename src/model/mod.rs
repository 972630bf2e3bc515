//! The container model: tasks, their namespace-set history, and the groups (host, pods,
//! containers, sandboxes) they form. Pure: fed events, asked questions; no I/O here.

pub mod attributor;
pub mod cgroup;
pub mod group;
pub mod json;
pub mod recorded;
pub mod task;
pub mod tree;

pub use attributor::{
    Attribution, Attributor, Change, ChangeKind, Pod, TaskSnapshot, DEFAULT_GRACE_NS,
    DEFAULT_HISTORY_NS, EXIT_TAIL_NS, MIN_HISTORY_NS,
};
pub use group::{is_kernel_thread, Group, GroupId, Kind, Naming};
pub use task::{Interval, Origin, Task};
