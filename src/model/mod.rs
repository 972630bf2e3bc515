//! The container model: tasks, their namespace-set history, and the groups (host, pods,
//! containers, sandboxes) they form. Pure: fed events, asked questions; no I/O here.

// The types are documented where they are re-exported, below; the files are the
// workspace's own (docs/DESIGN.md, "The library's API").
#[doc(hidden)]
pub mod attributor;
#[doc(hidden)]
pub mod cgroup;
#[doc(hidden)]
pub mod group;
#[doc(hidden)]
pub mod json;
#[doc(hidden)]
pub mod recorded;
#[doc(hidden)]
pub mod task;
#[doc(hidden)]
pub mod tree;

pub use attributor::{
    Attribution, Attributor, Change, ChangeKind, Pod, TaskSnapshot, DEFAULT_GRACE_NS,
    DEFAULT_HISTORY_NS, EXIT_TAIL_NS, MIN_HISTORY_NS,
};
pub use group::{is_kernel_thread, Group, GroupId, Kind, Naming};
pub use task::{Interval, Origin, Task, FORGET_ALL};
