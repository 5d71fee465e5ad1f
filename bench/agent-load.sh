#!/usr/bin/env bash
# The agent under load, side by side with the spawn floor.
#
# Starts `monchero run` with K checks of check_dummy at one interval for a
# window, after a warm-up, and reports from outside:
#   - the agent's own CPU time per executed check (utime+stime of the
#     daemon from /proc, the plugins it reaped excluded), and its ratio to
#     the spawn floor's CPU per execution (bench/spawn_floor.c, same run);
#   - RSS (current and peak);
#   - start lateness p50/p99 against the planned times (from the agent's
#     own `builtin:agent` check, power-of-two buckets);
#   - the time of `monchero status` with K checks, and its ratio to the
#     time of `true` started the same way.
#
# Usage: bench/agent-load.sh [K=1000] [INTERVAL=10s] [WINDOW_SECONDS=60]
# With AGENT_LOAD_JSON=FILE the figures are also written to FILE as JSON.
# Needs: monitoring-plugins-basic (check_dummy), a C compiler, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

checks=${1:-1000}
interval=${2:-10s}
window=${3:-60}
plugin=/usr/lib/nagios/plugins/check_dummy
[ -x "$plugin" ] || { echo "needs $plugin: apt-get install monitoring-plugins-basic" >&2; exit 1; }

cargo build --release --quiet --bin monchero
bin=$PWD/target/release/monchero
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

cc -O2 -o "$work/spawn_floor" bench/spawn_floor.c

{
    printf '[agent]\nstate_dir = "%s/state"\nmax_concurrent = 64\n\n' "$work"
    printf '[[check]]\nname = "agent"\ncommand = "builtin:agent"\ninterval = "5s"\n\n'
    for i in $(seq 1 "$checks"); do
        printf '[[check]]\nname = "dummy-%d"\ncommand = "%s 0 '"'"'OK - fine | load=0.5;1;2;0;'"'"'"\ninterval = "%s"\n\n' "$i" "$plugin" "$interval"
    done
} > "$work/agent.toml"

"$bin" run --config "$work/agent.toml" 2> "$work/agent.log" &
pid=$!

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
runs() { "$bin" status --json --config "$work/agent.toml" | python3 -c '
import json, sys
status = json.load(sys.stdin)
agent = next(c for c in status["checks"] if c["name"] == "agent")
print(" ".join("%s=%s" % (p["label"], p["value"]) for p in agent["perfdata"]))'; }
perf() { runs | tr ' ' '\n' | sed -n "s/^$1=//p"; }

warmup=$(( $(echo "$interval" | tr -dc 0-9) * 2 ))
sleep "$warmup"
"$bin" check-now --config "$work/agent.toml" agent > /dev/null
ticks0=$(cpu_ticks); runs0=$(perf runs); t0=$(date +%s.%N)
writes0=$(perf state_writes); encoding0=$(perf state_encoding)
sleep "$window"
"$bin" check-now --config "$work/agent.toml" agent > /dev/null
ticks1=$(cpu_ticks); runs1=$(perf runs); t1=$(date +%s.%N)
writes1=$(perf state_writes); encoding1=$(perf state_encoding)
hz=$(getconf CLK_TCK)

"$work/spawn_floor" 2000 "$plugin" 0 'OK - fine | load=0.5;1;2;0;' > "$work/floor.txt"

status_ms() {
    python3 - "$@" <<'PY'
import subprocess, sys, time
cmd = sys.argv[1:]
times = []
for _ in range(30):
    t = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False); times.append(time.perf_counter() - t)
times.sort()
print("%.2f" % (times[len(times) // 2] * 1000))
PY
}
status_time=$(status_ms "$bin" status --json --config "$work/agent.toml")
true_time=$(status_ms /bin/true)

p50=$(perf lateness_p50); p99=$(perf lateness_p99); skipped=$(perf skipped)
python3 - "$ticks0" "$ticks1" "$runs0" "$runs1" "$t0" "$t1" "$hz" "$work/floor.txt" "$pid" "$status_time" "$true_time" "$checks" "$interval" "$p50" "$p99" "$skipped" "$writes0" "$writes1" "$encoding0" "$encoding1" <<'PY'
import json, os, re, sys
ticks0, ticks1, runs0, runs1, t0, t1, hz = (float(x) for x in sys.argv[1:8])
floor = dict(kv.split("=") for kv in open(sys.argv[8]).read().split())
pid, status_ms, true_ms, checks, interval = sys.argv[9:14]
p50, p99, skipped, writes0, writes1, encoding0, encoding1 = (float(x) for x in sys.argv[14:21])
status = open(f"/proc/{pid}/status").read()
rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
runs = runs1 - runs0
cpu_ms = (ticks1 - ticks0) / hz * 1000 / runs
floor_ms = float(floor["cpu_per_exec_ms"])
status_ms, true_ms = float(status_ms), float(true_ms)
print(f"workload: {checks} checks of check_dummy every {interval}")
print(f"checks executed: {runs:.0f} in {t1 - t0:.1f} s = {runs / (t1 - t0):.1f}/s")
print(f"agent CPU per check: {cpu_ms:.4f} ms; spawn floor: {floor_ms:.4f} ms; ratio {cpu_ms / floor_ms:.2f}")
print(f"RSS: {rss:.1f} MiB now, {hwm:.1f} MiB peak")
print(f"lateness p50/p99 (s): {p50:g} / {p99:g}; skipped: {skipped:.0f}")
writes_per_s = (writes1 - writes0) / (t1 - t0)
encoding_ms_per_s = (encoding1 - encoding0) * 1000 / (t1 - t0)
print(f"state file: {writes_per_s:.2f} writes/s, {encoding_ms_per_s:.2f} ms/s of the main loop encoding them")
print(f"status --json: {status_ms:.2f} ms median; /bin/true: {true_ms:.2f} ms; ratio {status_ms / true_ms:.2f}")
if os.environ.get("AGENT_LOAD_JSON"):
    with open(os.environ["AGENT_LOAD_JSON"], "w") as f:
        json.dump({"checks": int(checks), "interval": interval, "checks_per_s": runs / (t1 - t0),
                   "cpu_ms_per_check": cpu_ms, "floor_ms": floor_ms, "rss_mib": rss,
                   "peak_rss_mib": hwm, "lateness_p50_s": p50, "lateness_p99_s": p99,
                   "skipped": skipped, "state_writes_per_s": writes_per_s,
                   "state_encoding_ms_per_s": encoding_ms_per_s, "status_ms": status_ms, "true_ms": true_ms}, f, indent=1)
PY
