#!/usr/bin/env python3
"""Soak: the agent under a hostile mix of checks for a long time.

Starts `monchero run` with CHECKS checks that mix every kind of plugin a
fleet has: fast ones, slow ones, ones that hang until their timeout kills
them (with a child that ignores SIGTERM), ones that print a megabyte,
ones that flap between OK and CRITICAL, plus built-in checks. Every 10 s it
samples the daemon from outside: RSS, open descriptors, threads, zombie
children (and how long each has been a zombie), and from the agent's own
`builtin:agent` check the p99 start lateness and skipped runs (asked for
with `status --json agent`, that one check: a sample that asked for every
check would make the daemon build a report of all 2000 each time, and
its memory would be part of what is measured).

Pass (exit 0) when, after the warm-up (the first third of the run):
- no zombie child is seen in two samples in a row (10 s apart: reaping
  takes microseconds, so a zombie that old was forgotten);
- RSS and the descriptor count are flat. RSS: the last third's highest
  sample is within 10% of the middle third's; highest, not mean, because
  RSS swings by a third as glibc trims its heap or not, while a leak
  raises the ceiling. Descriptors: the last third's lowest sample is
  within 16 of the middle third's; lowest, because the count swings with
  the runs in flight at the sample's instant (up to `max_concurrent` × 3
  pipes and pidfds: 62 to 194 in a 30-minute run), while a leak raises
  the floor;
- p99 start lateness stays under one second.
Otherwise it prints which figure failed and exits 1.

Usage: bench/soak.py [--minutes 30] [--checks 2000] [--binary PATH]
`.ci/run` runs it for 3 minutes on the release binary it packages.
Needs: monitoring-plugins-basic (check_dummy).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMMY = "/usr/lib/nagios/plugins/check_dummy"
SAMPLE_EVERY = 10

PLUGINS = {
    "slow": "sleep 1\necho 'SLOW OK - took a second | t=1s;;;0'\n",
    # The plugin and a child that ignores SIGTERM: both must go at timeout.
    "hang": "sh -c 'trap \"\" TERM; sleep 600' &\nsleep 600\n",
    "noisy": "head -c 1048576 /dev/zero | tr '\\0' x\necho\nexit 1\n",
    # Changes every 7 s: soft and hard changes, recoveries, flapping.
    "flap": "if [ $(( $(date +%s) / 7 % 2 )) -eq 0 ]; then echo 'FLAP OK'; exit 0; fi\n"
            "echo 'FLAP CRITICAL'; exit 2\n",
}
BUILTINS = ["builtin:load", "builtin:memory", "builtin:disk -p /", "builtin:procs -w 5000",
            "builtin:cpu", "builtin:net"]


def write_config(work, checks, binary_dir):
    for name, body in PLUGINS.items():
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
    # The mix, per 100 checks: 70 fast, 10 slow, 5 hanging, 5 noisy,
    # 5 flapping, 5 built-in.
    mix = [("fast", 70), ("slow", 10), ("hang", 5), ("noisy", 5), ("flap", 5), ("builtin", 5)]
    lines = [f'[agent]\nstate_dir = "{work}/state"\nsocket = "{work}/monchero.sock"\n'
             'max_concurrent = 64\nmax_check_spread = "20s"\ntimeout = "3s"\n'
             'interval = "20s"\nretry_interval = "5s"\n',
             '[[check]]\nname = "agent"\ncommand = "builtin:agent"\ninterval = "5s"\n']
    i = 0
    while i < checks:
        for kind, count in mix:
            for _ in range(count):
                if i >= checks:
                    break
                if kind == "fast":
                    command = f"{DUMMY} 0 'OK - fine | load=0.5;1;2;0;'"
                elif kind == "builtin":
                    command = BUILTINS[i % len(BUILTINS)]
                else:
                    command = os.path.join(work, kind)
                lines.append(f'[[check]]\nname = "{kind}-{i}"\ncommand = "{command}"\n')
                i += 1
    path = os.path.join(work, "agent.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def sample(pid, binary, config):
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    zombies = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            zombies.append(int(entry))
    agent = subprocess.run([binary, "status", "--json", "--config", config, "agent"],
                           capture_output=True, text=True)
    perf = {}
    try:
        for check in json.loads(agent.stdout)["checks"]:
            if check["name"] == "agent":
                perf = {p["label"]: p["value"] for p in check["perfdata"]}
    except (ValueError, KeyError):
        pass
    return {
        "t": time.monotonic(),
        "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
        "zombies": zombies,
        "lateness_p99": perf.get("lateness_p99"),
        "skipped": perf.get("skipped"),
        "runs": perf.get("runs"),
    }


def verdict(samples):
    third = max(len(samples) // 3, 1)
    middle, last = samples[third:2 * third], samples[2 * third:]
    failures = []
    for before, after in zip(samples, samples[1:]):
        persisted = set(before["zombies"]) & set(after["zombies"])
        if persisted:
            failures.append(f"zombie children {sorted(persisted)} persisted for {SAMPLE_EVERY} s")
            break
    if middle and last:
        rss_mid = max(s["rss_mib"] for s in middle)
        rss_end = max(s["rss_mib"] for s in last)
        if rss_end > rss_mid * 1.10:
            failures.append(f"RSS grows: at most {rss_mid:.1f} MiB, then {rss_end:.1f} MiB")
        fds_mid = min(s["fds"] for s in middle)
        fds_end = min(s["fds"] for s in last)
        if fds_end > fds_mid + 16:
            failures.append(f"descriptors grow: at least {fds_mid}, then {fds_end}")
    late = [s["lateness_p99"] for s in samples[third:] if s["lateness_p99"] is not None]
    if not late:
        failures.append("the agent's self-check never reported its lateness")
    elif max(late) >= 1.0:
        failures.append(f"p99 start lateness reached {max(late):.3f} s")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--checks", type=int, default=2000)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    parser.add_argument("--binary", default=os.path.join(target, "release", "monchero"))
    args = parser.parse_args()
    if not os.access(DUMMY, os.X_OK):
        sys.exit(f"needs {DUMMY}: apt-get install monitoring-plugins-basic")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no agent binary at {args.binary}: cargo build --release")

    work = tempfile.mkdtemp(prefix="soak-")
    config = write_config(work, args.checks, os.path.dirname(args.binary))
    log = open(os.path.join(work, "agent.log"), "w")
    agent = subprocess.Popen([args.binary, "run", "--config", config], stdout=log, stderr=log)
    samples = []
    end = time.monotonic() + args.minutes * 60
    print(f"soak: {args.checks} checks for {args.minutes} min; work dir {work}")
    print(f"{'t(s)':>6} {'RSS MiB':>8} {'fds':>5} {'threads':>7} {'zombies':>7} "
          f"{'p99 late':>9} {'skipped':>7} {'runs':>8}")
    try:
        start = time.monotonic()
        while time.monotonic() < end:
            time.sleep(SAMPLE_EVERY)
            if agent.poll() is not None:
                print(f"the agent exited with {agent.returncode}; see {work}/agent.log")
                sys.exit(1)
            s = sample(agent.pid, args.binary, config)
            samples.append(s)
            late = "-" if s["lateness_p99"] is None else f"{s['lateness_p99'] * 1000:.1f}ms"
            print(f"{s['t'] - start:>6.0f} {s['rss_mib']:>8.1f} {s['fds']:>5} {s['threads']:>7} "
                  f"{len(s['zombies']):>7} {late:>9} {s['skipped'] or 0:>7.0f} {s['runs'] or 0:>8.0f}",
                  flush=True)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
    failures = verdict(samples)
    for failure in failures:
        print(f"FAIL: {failure}")
    if failures:
        print(f"agent log: {work}/agent.log")
        sys.exit(1)
    print("PASS: no persistent zombies, RSS and descriptors flat, p99 lateness under 1 s")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
