#!/usr/bin/env python3
"""Monchero side by side with Nagios Core 4, Icinga 2 and Monit.

Every system runs the same workload: K services of
`check_dummy 0 "OK - fine | load=0.5;1;2;0;"`, a warm-up, then a measured
window. Three modes:

- `steady` (default): every system at the same INTERVAL, all running at
  the same time, so the noise of the machine falls on all alike;
- `idle`: the same, side by side, at a long interval: the footprint of an
  agent that mostly waits (RSS, CPU per minute);
- `throughput`: one system at a time, each at the shortest interval it
  allows (Nagios's and Icinga 2's intervals and Monit's cycle are whole
  seconds; Monchero's are not), measuring how many checks it gets through
  against the spawn limit with 2 workers.

Each daemon is started by hand with a config in a temp directory and
stopped by PID, and is measured from outside, the same way for all:

- its own CPU: utime+stime from /proc of every process of the daemon
  (Nagios's worker processes, Icinga 2's umbrella and spawn helper), the
  plugins it reaped excluded;
- checks executed: each daemon runs in a PID namespace of its own
  (`unshare --pid`), whose last allocated PID counts the processes it
  started, one per check run, without adding a fork of ours per check;
- RSS (sum over its processes) after the window, and its peak.

The spawn floor (bench/spawn_floor.c, a C loop that posix_spawns the same
plugin with stdout on a pipe and reaps it) runs in the same invocation, so
every figure is also a ratio to the least a parent can spend per
execution.

Usage: bench/peers.py [--mode steady|idle|throughput] [--checks 1000]
                      [--interval 10] [--warmup 20] [--window 60]
                      [--systems monchero,nagios,icinga2,monit]
                      [--svg FILE] [--json FILE] [--no-build]
Needs root (PID namespaces), monitoring-plugins-basic, a C compiler, and
for the peers: nagios4-core, icinga2-bin, monit (apt-get install).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PLUGIN = "/usr/lib/nagios/plugins/check_dummy"
OUTPUT = "OK - fine | load=0.5;1;2;0;"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HZ = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def monchero_config(work, checks, interval):
    lines = [f'[agent]\nstate_dir = "{work}/state"\nsocket = "{work}/monchero.sock"\n'
             "max_concurrent = 64\nmax_check_spread = \"10s\"\n"]
    for i in range(checks):
        lines.append(f'[[check]]\nname = "dummy-{i}"\n'
                     f"command = \"{PLUGIN} 0 '{OUTPUT}'\"\ninterval = \"{round(interval * 1000)}ms\"\n")
    path = os.path.join(work, "agent.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    binary = os.path.join(ROOT, "target", "release", "monchero")
    return [binary, "run", "--config", path]


def nagios_config(work, checks, interval):
    os.makedirs(f"{work}/spool", exist_ok=True)
    with open(f"{work}/nagios.cfg", "w") as f:
        f.write(f"""log_file={work}/nagios.log
cfg_file={work}/objects.cfg
object_cache_file={work}/objects.cache
precached_object_file={work}/objects.precache
status_file={work}/status.dat
status_update_interval=10
temp_file={work}/nagios.tmp
temp_path={work}
lock_file={work}/nagios.lock
check_result_path={work}/spool
state_retention_file={work}/retention.dat
retain_state_information=0
command_file={work}/nagios.cmd
check_external_commands=0
nagios_user=root
nagios_group=root
interval_length=1
max_service_check_spread={max(1, round(interval))}
enable_notifications=0
enable_flap_detection=0
process_performance_data=0
use_syslog=0
log_initial_states=0
log_passive_checks=0
accept_passive_service_checks=0
illegal_macro_output_chars=`~$&|'"<>
""")
    objects = [f"""define timeperiod {{
    timeperiod_name always
    alias always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}}
define contact {{
    contact_name nobody
    host_notifications_enabled 0
    service_notifications_enabled 0
    host_notification_period always
    service_notification_period always
    host_notification_options n
    service_notification_options n
    host_notification_commands dummy
    service_notification_commands dummy
}}
define command {{
    command_name dummy
    command_line {PLUGIN} 0 '{OUTPUT}'
}}
define host {{
    host_name bench
    address 127.0.0.1
    max_check_attempts 1
    check_period always
    active_checks_enabled 0
    contacts nobody
}}
"""]
    for i in range(checks):
        objects.append(f"""define service {{
    host_name bench
    service_description dummy-{i}
    check_command dummy
    check_interval {interval:g}
    retry_interval {interval:g}
    max_check_attempts 1
    check_period always
    notification_period always
    contacts nobody
}}
""")
    with open(f"{work}/objects.cfg", "w") as f:
        f.write("".join(objects))
    return ["/usr/sbin/nagios4", f"{work}/nagios.cfg"]


def icinga2_config(work, checks, interval):
    for sub in ("data", "log", "cache", "spool", "run"):
        os.makedirs(f"{work}/{sub}", exist_ok=True)
    with open(f"{work}/icinga2.conf", "w") as f:
        f.write(f"""object CheckerComponent "checker" {{ }}
object CheckCommand "bench-dummy" {{
    command = [ "{PLUGIN}", "0", "{OUTPUT}" ]
}}
object Host "bench" {{
    check_command = "bench-dummy"
    enable_active_checks = false
}}
for (i in range({checks})) {{
    object Service "dummy-" + i {{
        host_name = "bench"
        check_command = "bench-dummy"
        check_interval = {interval:g}s
        retry_interval = {interval:g}s
        enable_perfdata = false
        enable_notifications = false
        enable_flapping = false
    }}
}}
""")
    return ["/usr/sbin/icinga2", "daemon", "--no-stack-rlimit", "-c", f"{work}/icinga2.conf",
            "-DRunAsUser=root", "-DRunAsGroup=root",
            f"-DDataDir={work}/data", f"-DLogDir={work}/log", f"-DCacheDir={work}/cache",
            f"-DSpoolDir={work}/spool", f"-DInitRunDir={work}/run"]


def monit_config(work, checks, interval):
    # Monit has one cycle for all services; `check program` runs the
    # program once per cycle and reads its exit status on the next one.
    # Its `path` is split on spaces with no quoting, so the output
    # argument has no spaces here.
    lines = [f"""set daemon {max(1, round(interval))}
set logfile {work}/monit.log
set pidfile {work}/monit.pid
set idfile {work}/monit.id
set statefile {work}/monit.state
"""]
    for i in range(checks):
        lines.append(f'check program dummy-{i} with path "{PLUGIN} 0 OK-fine|load=0.5;1;2;0;"\n'
                     "    if status != 0 then alert\n")
    path = f"{work}/monitrc"
    with open(path, "w") as f:
        f.write("".join(lines))
    os.chmod(path, 0o600)
    return ["/usr/bin/monit", "-I", "-c", path]


SYSTEMS = {
    "monchero": ("Monchero", monchero_config),
    "nagios": ("Nagios Core 4", nagios_config),
    "icinga2": ("Icinga 2", icinga2_config),
    "monit": ("Monit", monit_config),
}


def pid_namespace(pid):
    return os.readlink(f"/proc/{pid}/ns/pid")


def daemon_processes(namespace):
    """PIDs in the namespace that belong to the daemon, not its plugins."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm not in ("check_dummy", "sh", "unshare"):
            pids.append(int(entry))
    return pids


def sample(namespace, holder):
    """CPU seconds, RSS and peak RSS (MiB) of the daemon; PIDs started."""
    cpu = rss = hwm = 0.0
    for pid in daemon_processes(namespace):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / HZ
        rss += int(status.get("VmRSS", "0 kB").split()[0]) / 1024
        hwm += int(status.get("VmHWM", "0 kB").split()[0]) / 1024
    last_pid = subprocess.run(["nsenter", "-t", str(holder), "-p", "-m",
                               "cat", "/proc/sys/kernel/ns_last_pid"],
                              capture_output=True, text=True, check=True).stdout
    return cpu, rss, hwm, int(last_pid)


# The shortest interval each system takes: Nagios's `interval_length` and
# Icinga 2's and Monit's schedules count whole seconds; Monchero's
# intervals are durations (50 ms keeps 1000 checks past any spawn limit).
SHORTEST = {"monchero": 0.05, "nagios": 1, "icinga2": 1, "monit": 1}


class Running:
    """One daemon started in a PID namespace of its own."""

    def __init__(self, key, checks, interval):
        self.label, configure = SYSTEMS[key]
        self.work = tempfile.mkdtemp(prefix=f"peers-{key}-")
        self.keep = False  # a daemon that failed keeps its directory and log
        command = configure(self.work, checks, interval)
        self.holder = None
        if not os.path.exists(command[0]):
            print(f"{self.label}: {command[0]} is missing, skipped", file=sys.stderr)
            return
        log = open(os.path.join(self.work, "stderr.log"), "w")
        self.holder = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", *command],
                                       stdout=log, stderr=log, cwd=self.work)
        # unshare forks the daemon; on a busy machine that can take a while.
        deadline = time.monotonic() + 10
        children = []
        while not children and self.holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            children = subprocess.run(["pgrep", "-P", str(self.holder.pid)],
                                      capture_output=True, text=True).stdout.split()
        if self.holder.poll() is not None or not children:
            print(f"{self.label}: did not start, see {self.work}/stderr.log", file=sys.stderr)
            self.keep = True
            self.stop()
            return
        self.daemon = int(children[0])
        self.namespace = pid_namespace(self.daemon)

    def started(self):
        return self.holder is not None

    def sample(self):
        return sample(self.namespace, self.daemon), time.monotonic()

    def stop(self):
        if self.holder is not None:
            # The daemon is PID 1 of its namespace: ending it ends everything
            # in the namespace, and then unshare. A signal to unshare alone
            # would leave the daemon running.
            if hasattr(self, "daemon"):
                try:
                    os.kill(self.daemon, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            else:
                self.holder.send_signal(signal.SIGTERM)
            try:
                self.holder.wait(timeout=20)
            except subprocess.TimeoutExpired:
                if hasattr(self, "daemon"):
                    os.kill(self.daemon, signal.SIGKILL)
                self.holder.kill()
                self.holder.wait()
            self.holder = None
        if not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def measure(systems, warmup, window):
    """Samples every running system before and after the same window."""
    time.sleep(warmup)
    before = [system.sample() for system in systems]
    time.sleep(window)
    after = [system.sample() for system in systems]
    rows = []
    for system, ((cpu0, _, _, pids0), t0), ((cpu1, rss, hwm, pids1), t1) in zip(
            systems, before, after):
        # One PID per plugin run, minus the one `nsenter ... cat` of a sample.
        runs = pids1 - pids0 - 1
        elapsed = t1 - t0
        rows.append({
            "system": system.label,
            "checks_per_s": runs / elapsed,
            "cpu_ms_per_check": cpu_ms(cpu1 - cpu0, runs),
            "cpu_s_per_minute": (cpu1 - cpu0) * 60 / elapsed,
            "rss_mib": rss,
            "peak_rss_mib": hwm,
        })
    return rows


def side_by_side(keys, args):
    systems = [Running(key, args.checks, args.interval) for key in keys]
    running = [system for system in systems if system.started()]
    try:
        return measure(running, args.warmup, args.window)
    finally:
        for system in systems:
            system.stop()


def one_at_a_time(keys, args):
    rows = []
    for key in keys:
        system = Running(key, args.checks, SHORTEST[key])
        try:
            if system.started():
                rows.extend(measure([system], args.warmup, args.window))
                rows[-1]["interval_s"] = SHORTEST[key]
        finally:
            system.stop()
    return rows


def cpu_ms(cpu, runs):
    return cpu * 1000 / runs if runs > 0 else float("nan")


def spawn_floor(work, workers, command=(PLUGIN, "0", OUTPUT)):
    """The spawn limit: `workers` copies of spawn_floor at once. Returns the
    parent CPU per execution (ms) and the executions per second of all."""
    binary = os.path.join(work, "spawn_floor")
    if not os.path.exists(binary):
        subprocess.run(["cc", "-O2", "-o", binary,
                        os.path.join(ROOT, "bench", "spawn_floor.c")], check=True)
    procs = [subprocess.Popen([binary, "2000", *command], stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"spawn_floor failed with {proc.returncode}")
        results.append(dict(kv.split("=") for kv in out.split()))
    cpu = sum(float(r["cpu_per_exec_ms"]) for r in results) / workers
    return cpu, sum(float(r["execs_per_sec"]) for r in results)


def svg_chart(rows, floor_ms, path):
    """Two bar charts side by side: checks/s and agent CPU per check."""
    width, bar_h, gap, left = 360, 22, 8, 120
    height = 60 + len(rows) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width + left}" '
             f'height="{height}" font-family="sans-serif" font-size="12">']
    charts = (("checks executed per second", "checks_per_s", "{:.1f}"),
              ("agent CPU per check (ms)", "cpu_ms_per_check", "{:.3f}"))
    for n, (title, key, fmt) in enumerate(charts):
        x0 = left + n * width
        top = max(row[key] for row in rows) or 1
        parts.append(f'<text x="{x0}" y="20" font-weight="bold">{title}</text>')
        for i, row in enumerate(rows):
            y = 35 + i * (bar_h + gap)
            w = (width - 80) * row[key] / top
            if n == 0:
                parts.append(f'<text x="5" y="{y + 15}">{row["system"]}</text>')
            colour = "#2a7ab0" if row["system"] == "Monchero" else "#999"
            parts.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
            parts.append(f'<text x="{x0 + w + 4:.1f}" y="{y + 15}">{fmt.format(row[key])}</text>')
        if key == "cpu_ms_per_check":
            fx = x0 + (width - 80) * floor_ms / top
            parts.append(f'<line x1="{fx:.1f}" y1="30" x2="{fx:.1f}" y2="{height - 20}" '
                         'stroke="#c33" stroke-dasharray="4"/>')
            parts.append(f'<text x="{fx + 3:.1f}" y="{height - 8}" fill="#c33">spawn floor</text>')
    parts.append("</svg>\n")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def floors():
    work = tempfile.mkdtemp(prefix="peers-")
    try:
        return {
            "check_dummy_1": spawn_floor(work, 1),
            "check_dummy_2": spawn_floor(work, 2),
            "true_1": spawn_floor(work, 1, ("/bin/true",)),
            "true_2": spawn_floor(work, 2, ("/bin/true",)),
        }
    finally:
        shutil.rmtree(work)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("steady", "idle", "throughput"), default="steady")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--systems", default="monchero,nagios,icinga2,monit")
    parser.add_argument("--svg")
    parser.add_argument("--json", help="write the figures to this file as well")
    parser.add_argument("--no-build", action="store_true",
                        help="use target/release/monchero as it is")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: each daemon runs in a PID namespace of its own")
    if not os.access(PLUGIN, os.X_OK):
        sys.exit(f"needs {PLUGIN}: apt-get install monitoring-plugins-basic")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "monchero"],
                       cwd=ROOT, check=True)

    limits = floors()
    floor_ms, floor_rate = limits["check_dummy_1"]
    keys = args.systems.split(",")
    rows = one_at_a_time(keys, args) if args.mode == "throughput" else side_by_side(keys, args)

    if args.mode == "throughput":
        print(f"workload: {args.checks} checks of check_dummy, each system alone at the "
              f"shortest interval it takes, {args.warmup} s warm-up, {args.window} s window")
    else:
        together = "all at once" if len(rows) > 1 else "alone"
        print(f"workload: {args.checks} checks of check_dummy every {args.interval:g} s, "
              f"{together}, {args.warmup} s warm-up, {args.window} s window")
    for name, (cpu, rate) in limits.items():
        what, workers = name.rsplit("_", 1)
        print(f"spawn limit, {what}, {workers} worker(s): {rate:.0f}/s, "
              f"{cpu:.4f} ms of parent CPU per execution")
    limit2 = limits["check_dummy_2"][1]
    print(f"{'system':<14} {'checks/s':>9} {'of limit':>8} {'CPU/check':>11} {'÷ floor':>8} "
          f"{'CPU s/min':>9} {'RSS MiB':>8} {'peak':>6}")
    for row in rows:
        print(f"{row['system']:<14} {row['checks_per_s']:>9.1f} {row['checks_per_s'] / limit2:>8.0%} "
              f"{row['cpu_ms_per_check']:>8.3f} ms {row['cpu_ms_per_check'] / floor_ms:>8.2f} "
              f"{row['cpu_s_per_minute']:>9.2f} {row['rss_mib']:>8.1f} {row['peak_rss_mib']:>6.1f}")
    ours = next((r for r in rows if r["system"] == "Monchero"), None)
    if ours:
        for row in rows:
            if row is not ours:
                print(f"Monchero vs {row['system']}: CPU per check "
                      f"{ours['cpu_ms_per_check'] / row['cpu_ms_per_check']:.2f}×, "
                      f"checks/s {ours['checks_per_s'] / row['checks_per_s']:.2f}×, "
                      f"RSS {ours['rss_mib'] / row['rss_mib']:.2f}×")
    if args.svg:
        svg_chart(rows, floor_ms, args.svg)
        print(f"chart: {args.svg}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": args.mode, "checks": args.checks, "interval": args.interval,
                       "window": args.window, "limits": limits, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
