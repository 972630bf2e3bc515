//! Naming groups from cgroup paths (placeholder: being written).
