#!/usr/bin/env bash
# The whole comparison of docs/benchmarks.md on one machine: Monchero
# against Nagios Core 4, Icinga 2 and Monit (from Debian's packages) and
# against the spawn limit, ending in the table of ratios and targets.
#
# On a fresh machine it installs the peers itself (with no service started
# by the packages), builds the release binary, then runs:
#   1. throughput: each system alone, 1000 checks at the shortest interval
#      it takes, against the spawn limit with 2 workers (peers.py; the
#      chart);
#   2. steady: 1000 checks every 10 s, all four systems at the same time,
#      so the machine's noise falls on all alike (peers.py);
#   3. idle: 1000 checks every 60 s, all four at the same time (peers.py);
#   4. Monchero alone at 1000 checks every 10 s: start lateness and
#      `status` time; and at 1000 checks every second: the cost of the
#      state file writes (agent-load.sh).
# About 7 minutes of runs, plus the build and installs.
#
# Usage: sudo bench/compare.sh [OUT_DIR]   (default: a new temp directory;
#        the chart is OUT_DIR/peers.svg)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "needs root: the peers run in PID namespaces" >&2; exit 1; }
out=${1:-$(mktemp -d -t monchero-compare-XXXXXX)}
mkdir -p "$out"
started=$SECONDS
step() { printf '==> %s (%ds)\n' "$*" $((SECONDS - started)); }

packages=(monitoring-plugins-basic nagios4-core icinga2-bin monit gcc python3 util-linux procps)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep "install ok installed" >/dev/null \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    step "apt-get install ${missing[*]}"
    apt-get update -qq
    # The peers' packages start their services on install; a benchmark
    # must start each by hand under its own config, so none may start.
    policy=/usr/sbin/policy-rc.d
    added_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        added_policy=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if $added_policy; then rm -f "$policy"; fi
fi

step "cargo build --release"
cargo build --release --quiet --bin monchero

step "throughput: each system alone at its shortest interval"
python3 bench/peers.py --no-build --mode throughput --checks 1000 --warmup 10 --window 20 \
    --json "$out/throughput.json" --svg "$out/peers.svg" | tee "$out/throughput.txt"
step "steady: 1000 checks every 10 s, side by side"
python3 bench/peers.py --no-build --mode steady --checks 1000 --interval 10 --warmup 15 --window 45 \
    --json "$out/steady.json" | tee "$out/steady.txt"
step "idle: 1000 checks every 60 s, side by side"
python3 bench/peers.py --no-build --mode idle --checks 1000 --interval 60 --warmup 15 --window 60 \
    --json "$out/idle.json" | tee "$out/idle.txt"
step "Monchero alone: lateness and status time"
AGENT_LOAD_JSON="$out/agent.json" bench/agent-load.sh 1000 10s 40 | tee "$out/agent.txt"
step "Monchero alone: 1000 checks a second"
AGENT_LOAD_JSON="$out/agent-1s.json" bench/agent-load.sh 1000 1s 30 | tee "$out/agent-1s.txt"

step "done"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda name: json.load(open(f"{out}/{name}.json"))
throughput, steady, idle, agent = load("throughput"), load("steady"), load("idle"), load("agent")
per_second = load("agent-1s")

def row(doc, system):
    return next((r for r in doc["rows"] if r["system"] == system), None)

def peers(doc):
    return [r for r in doc["rows"] if r["system"] != "Monchero"]

lines = []
def target(what, value, goal, met):
    lines.append(f"| {what} | {value} | {goal} | {'met' if met else 'missed'} |")

ours = row(steady, "Monchero")
best = min(peers(steady), key=lambda r: r["cpu_ms_per_check"], default=None)
if ours and best:
    ratio = ours["cpu_ms_per_check"] / best["cpu_ms_per_check"]
    target(f"agent CPU per check vs the best peer ({best['system']}), 1000 checks / 10 s",
           f"{ratio:.2f}", "≤ 0.10", ratio <= 0.10)
fast = row(throughput, "Monchero")
if fast:
    limit = throughput["limits"]["check_dummy_2"][1]
    share = fast["checks_per_s"] / limit
    target("throughput vs the spawn limit with 2 workers",
           f"{fast['checks_per_s']:.0f}/s of {limit:.0f}/s = {share:.0%}", "≥ 80%", share >= 0.8)
monit = row(steady, "Monit")
if ours and monit:
    ratio = ours["rss_mib"] / monit["rss_mib"]
    target("RSS with 1000 checks vs Monit's", f"{ours['rss_mib']:.1f} / {monit['rss_mib']:.1f} MiB = {ratio:.2f}",
           "< 1", ratio < 1)
p99 = agent["lateness_p99_s"] * 1000
target("p99 start lateness, 1000 checks / 10 s", f"{p99:.0f} ms", "≤ 50 ms", p99 <= 50)
target("`status --json` with 1000 checks", f"{agent['status_ms']:.1f} ms (`true`: {agent['true_ms']:.1f} ms)",
       "≤ 10 ms", agent["status_ms"] <= 10)

state = per_second["state_encoding_ms_per_s"]
lines.append(f"| state file writes at {per_second['checks_per_s']:.0f} checks/s | "
             f"{per_second['state_writes_per_s']:.2f} writes/s, {state:.2f} ms of the main loop per second | – | |")

print("\n| target | measured | goal | |\n| --- | --- | --- | --- |")
print("\n".join(lines))
print("\n| system | throughput checks/s | CPU per check (ms), steady | RSS MiB, steady | idle CPU s/min | idle RSS MiB |")
print("| --- | --- | --- | --- | --- | --- |")
for r in steady["rows"]:
    t, i = row(throughput, r["system"]), row(idle, r["system"])
    print(f"| {r['system']} | {t['checks_per_s']:.0f} | {r['cpu_ms_per_check']:.3f} | {r['rss_mib']:.1f} | "
          f"{i['cpu_s_per_minute']:.2f} | {i['rss_mib']:.1f} |" if t and i else f"| {r['system']} | – | – | – | – | – |")
limits = throughput["limits"]
print(f"\nspawn limit (check_dummy): {limits['check_dummy_1'][1]:.0f}/s with 1 worker, "
      f"{limits['check_dummy_2'][1]:.0f}/s with 2; parent CPU {limits['check_dummy_1'][0]:.4f} ms per execution")
print(f"figures and chart in {out}")
PY
