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
// `monchero check list [--plugins]`.
mod check_list;
// The plugin definitions of plugins-compat/conf.d/, loaded and run.
mod dropins;
// Push: delivery to the reference receiver through outages, SIGKILL and damage.
mod push;
