#!/usr/bin/env bash
# Push at fleet scale, in one process: many simulated agents, each with its
# own spool, sending realistic result records in batches to the reference
# receiver on 127.0.0.1 (push-receiver/benches/push_load.rs). Reports
# records per second through the whole path and bytes per record on the
# wire; docs/push-protocol.md's arithmetic for 10,000 agents uses the
# latter.
#
# Usage: bench/push-load.sh [AGENTS=200] [CHECKS_PER_BATCH=100] [ROUNDS=5]
# (17 records per batch is the default push interval of 10 s at 100 checks
# a minute; 100 is an interval of 60 s.)
set -euo pipefail
cd "$(dirname "$0")/.."
PUSH_LOAD_AGENTS=${1:-200} PUSH_LOAD_CHECKS=${2:-100} PUSH_LOAD_ROUNDS=${3:-5} \
    cargo bench -p monchero-push-receiver --bench push_load
