//! The cause of each namespace change: an eBPF program on setns, unshare, clone, clone3,
//! fork and vfork
//! (bpf/nswatch.bpf.c), its records decoded ([`event`]), loaded and read ([`probe`]), and
//! matched with the perf NAMESPACES record each successful call makes ([`correlate`]); and
//! the bootstrap's task iterator (bpf/nswatch_iter.bpf.c, [`iter`]).

pub mod correlate;
pub mod event;
#[cfg(feature = "live")]
pub mod iter;
#[cfg(feature = "live")]
pub mod probe;

pub use event::Cause;
#[cfg(feature = "live")]
pub use probe::{Hook, Probe, Unavailable, HOOK_ENV};
