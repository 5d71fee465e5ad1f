//! The reusable core of the Monchero monitoring agent.
//!
//! # Brief overview
//!
//! Monchero runs checks (Nagios/Icinga plugins or built-in checks) and keeps
//! a state for each. This crate holds the parts another Rust tool can embed:
//!
//! - [`state`]: the four states, their exit codes and severity order;
//! - [`threshold`]: Nagios threshold ranges (`10`, `10:`, `~:10`, `10:20`,
//!   `@10:20`) and their evaluation;
//! - [`perfdata`]: the performance data grammar, parsed without allocating;
//! - [`output`]: splitting plugin output into summary, long output and
//!   perfdata;
//! - [`schedule`]: when each check runs next, from one timer queue;
//! - [`backoff`]: how long to wait before retrying a delivery;
//! - [`metric_name`]: the Prometheus name, type and base unit of a perfdata
//!   item;
//! - `spool` (feature `spool`, on by default): the durable on-disk queue of
//!   records waiting to be pushed to a server, with checksums, batched fsync
//!   and a size bound;
//! - [`event`]: what actions receive on a hard change or flapping, and the
//!   triggers they subscribe to;
//! - [`template`]: `{{field}}` templates over an event, for notification
//!   bodies, subjects and headers;
//! - [`ratelimit`]: how many notifications an action may send per window,
//!   and coalescing of the ones kept back;
//! - `nrpe` (feature `nrpe`, on by default): the NRPE packet codec of
//!   protocol versions 2 to 4 and what a `check_nrpe` query asks for;
//! - [`result`]: the owned result of one check run and how a process's
//!   termination maps to a state;
//! - [`tracker`]: soft/hard states per check, Nagios-style debouncing and flap detection;
//! - `builtin` (feature `builtin`, on by default): native checks of load, CPU, memory,
//!   swap, disks, inodes, network interfaces, processes, files, log files, TCP
//!   services, the clock against NTP, and systemd units;
//! - `command` and `runner` (feature `runner`, on by default): runs a plugin on tokio under
//!   the agent's execution policy: command lines split with shell quoting
//!   but no shell, own process group, timeout, output cap; `plugin_path`
//!   finds plugins named without a directory.
//!
//! The protocol modules do no I/O and need no runtime: build with
//! `default-features = false` to get only them.
//!
//! ```
//! use monchero_core::{output, State};
//!
//! let out = output::parse("DISK WARNING - free space: / 180 MB (9%) | /=1820MB;1800;1900;0;2000");
//! assert_eq!(out.summary, "DISK WARNING - free space: / 180 MB (9%)");
//! let disk = out.perfdata().next().unwrap().unwrap();
//! assert_eq!(disk.label, "/");
//! assert_eq!(disk.value, Some(1820.0));
//! assert_eq!(disk.uom, "MB");
//! assert_eq!(disk.thresholds().unwrap().evaluate(1820.0), State::Warning);
//! ```

pub mod backoff;
#[cfg(feature = "builtin")]
pub mod builtin;
#[cfg(feature = "runner")]
pub mod cgroup;
pub mod collected;
#[cfg(feature = "runner")]
pub mod command;
pub mod event;
pub mod metric_name;
#[cfg(feature = "nrpe")]
pub mod nrpe;
pub mod output;
pub mod perfdata;
#[cfg(feature = "runner")]
pub mod plugin_path;
#[cfg(feature = "runner")]
mod process_group;
pub mod ratelimit;
pub mod result;
#[cfg(feature = "runner")]
pub mod runner;
pub mod schedule;
#[cfg(feature = "spool")]
pub mod spool;
pub mod state;
pub mod template;
pub mod threshold;
pub mod tracker;

pub use result::CheckResult;
pub use state::State;
