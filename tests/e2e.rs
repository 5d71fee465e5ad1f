//! End-to-end tests of the real `monchero` binary.
//!
//! One test binary (see `monchero-agent/Cargo.toml`) with a module per
//! subcommand, so the suite links once.

#![allow(clippy::unwrap_used)]

mod util;

// `monchero check-now -- COMMAND`: the plugin execution policy, seen from
// the outside.
mod check_now;
// Arguments, exit statuses and output conventions shared by all commands.
mod cli;
// `monchero run` driven through `status` and `check-now NAME`.
mod daemon;
// Actions on state changes, through the daemon.
mod actions;
// `collect` actions: output gathered at a failure, attached to its events.
mod collect;
// Webhook and email notifiers against real servers on 127.0.0.1.
mod notifiers;
// The HTTP and SMTP servers those tests deliver to.
mod receivers;
// `monchero check list [--plugins]`.
mod check_list;
// The plugin definitions of plugins-compat/conf.d/, loaded and run.
mod dropins;
// `[pull]` and `[metrics]` with curl and a real Prometheus.
mod pull;
// builtin:http against a loopback server, and its options in a config.
mod http;
// Built-in checks stuck in the kernel: time-bounded, one thread at most.
mod blocked;
// builtin:systemd over D-Bus: no bus, a silent bus, a stand-in for systemd.
mod systemd;
// Push: delivery to the reference receiver through outages, SIGKILL and damage.
mod push;
// Push to Icinga 2 and to Prometheus remote write, the real servers from Debian.
mod sinks;
// Certificate enrolment with `ca serve` and `cert enrol`, renewal, CRL refresh.
mod certificates;
// [nrpe] with the real check_nrpe, malformed packets, `monchero import nrpe`.
mod nrpe;
// Faults injected into a running agent: a broken state directory, clock
// jumps, fork failures, unkillable plugins, signal storms, hostile clients.
mod faults;
// The measures of docs/security.md: untrusted files refused as root,
// secrets never shown.
mod security;
