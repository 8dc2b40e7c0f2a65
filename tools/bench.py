#!/usr/bin/env python3
"""`make bench`: measure the running demo (`make demo`) and report.

Every number is measured in this run, next to the baseline it is compared
with (same minutes, same machine):

* spawn: click-to-ready of the demo preset (form POST -> hub says ready),
  p50/p95 over ROUNDS, with its two floors - `sbatch` until the job's script
  runs, and the single-user server's imports on a compute node - and the
  gateway's own overhead (spawn - floors);
* proxy hop: /hub/health requests per second and p50 for the hub alone, the
  proxy in front of it, and Apache (TLS, demo login) in front of both; the
  ratios Apache+proxy : proxy and proxy : hub;
* login: the demo login's password check, timed on the gateway (it runs on
  every request of the basic mode);
* scheduler commands: squeue/sbatch/scancel calls the hub issued per minute
  with 1 and with N servers running (sudo's log of the hub account);
* burst: N users (burst01.., the demo's test accounts) press Start at the
  same moment: how many became ready, click-to-ready p50/p95, the hub's CPU
  time and the scheduler calls meanwhile, and no job left after the stops;
* idle memory of hub, proxy and Apache (proportional set size).

Writes artifacts/bench/<part>.json and prints a table. `--smoke` runs each
part once, tiny, to keep the code from rotting (the test suite uses it).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
GATEWAY, CONTROLLER, COMPUTE = "hpcgw-gw", "hpcgw-ctl", "hpcgw-c1"
BASE = "https://hpcgw-gw/jupyter"
PRESET = '{"profile": "debug-1c"}'
USERS = [("alice", "alice-test-pw"), ("bob", "bob-test-pw"), ("carol", "carol-test-pw"),
         ("erin", "erin-test-pw"), ("frank", "frank-test-pw")]
NOTEBOOK_PYTHON = "/opt/hpcgw/notebook/bin/python"
HUB_HEALTH = "http://hpcgw-gw:8081/jupyter/hub/health"
PROXY_HEALTH = "http://127.0.0.1:8000/jupyter/hub/health"
APACHE_HEALTH = BASE + "/hub/health"

Runner = Callable[[Sequence[str]], str]


def docker_exec(container: str, command: str, user: str = "root") -> list[str]:
    return ["docker", "exec", "-u", user, container, "bash", "-c", command]


def run(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:6])}... failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of 5 samples is the 3rd smallest)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def summary(samples: Sequence[float]) -> dict[str, Any]:
    return {"n": len(samples), "p50": round(percentile(samples, 0.5), 3),
            "p95": round(percentile(samples, 0.95), 3), "min": round(min(samples), 3),
            "max": round(max(samples), 3), "samples": [round(s, 3) for s in samples]}


def parse_ab(output: str) -> dict[str, float]:
    """Requests per second, p50 (ms) and failures from ApacheBench's report."""
    rate = re.search(r"^Requests per second:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\d+)", output, re.M)
    failed = re.search(r"^Failed requests:\s+(\d+)", output, re.M)
    non2xx = re.search(r"^Non-2xx responses:\s+(\d+)", output, re.M)
    mean = re.search(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)$", output, re.M)
    if not (rate and p50 and failed):
        raise ValueError("not an ab report: " + output[-300:])
    answer = {"rps": float(rate.group(1)), "p50_ms": float(p50.group(1)),
              "failed": int(failed.group(1)) + (int(non2xx.group(1)) if non2xx else 0)}
    if mean:
        answer["mean_ms"] = float(mean.group(1))
    return answer


def parse_pss_kb(smaps_rollups: str) -> int:
    """Sum of the Pss lines of several /proc/<pid>/smaps_rollup files."""
    return sum(int(m.group(1)) for m in re.finditer(r"^Pss:\s+(\d+) kB", smaps_rollups, re.M))


def count_scheduler_calls(journal: str) -> dict[str, int]:
    """sudo's log lines of the hub account, per scheduler command."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"COMMAND=\S*/(squeue|sbatch|scancel|scontrol|ssh)\b", journal):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def spawnclient(runner: Runner, command: str, user: str, password: str, *args: str) -> dict[str, Any]:
    line = " ".join(shlex.quote(a) for a in ("python3", "/usr/local/bin/spawnclient.py", command, BASE,
                                              user, password, *args))
    return json.loads(runner(docker_exec(CONTROLLER, line)).strip().splitlines()[-1])


def bench_spawn(runner: Runner, rounds: int) -> dict[str, Any]:
    result = spawnclient(runner, "bench", "alice", "alice-test-pw", str(rounds), PRESET)
    if "error" in result:
        raise SystemExit(f"bench: spawn: {result}")
    return summary(result["seconds"])


def sampled(runner: Runner, container: str, command: str, rounds: int) -> dict[str, Any]:
    """Summary of `rounds` runs of a command (as alice) that prints one number of seconds."""
    return summary([float(runner(docker_exec(container, command, user="alice")).strip()) for _ in range(rounds)])


def bench_floor_sbatch(runner: Runner, rounds: int) -> dict[str, Any]:
    """Seconds from `sbatch` (as alice, on the gateway) until the job's script runs."""
    script = (
        "t0=$(date +%s.%N); out=$HOME/.hpcgw-bench-start; rm -f $out; "
        "sbatch -Q -p debug -t 2 --chdir=$HOME -o /dev/null --wrap \"date +%s.%N > $out\" >/dev/null; "
        "for i in $(seq 600); do [ -s $out ] && break; sleep 0.05; done; "
        "[ -s $out ] || { echo 'the job never ran' >&2; exit 1; }; "
        "python3 -c \"import sys; print(float(open(sys.argv[1]).read()) - float(sys.argv[2]))\" $out $t0; rm -f $out")
    return sampled(runner, GATEWAY, script, rounds)


def bench_floor_imports(runner: Runner, rounds: int) -> dict[str, Any]:
    """Seconds a compute node takes to import the single-user server and JupyterLab."""
    code = ("import time; t = time.perf_counter(); import jupyterhub.singleuser, jupyterlab, jupyter_server.serverapp; "
            "print(time.perf_counter() - t)")
    command = f"{NOTEBOOK_PYTHON} -c {shlex.quote(code)}"
    return sampled(runner, COMPUTE, command, rounds)


# The demo's login as a browser does it once: the session cookie's value.
SESSION_LOGIN = ("curl -sk -o /dev/null -c - --data-urlencode httpd_username=alice "
                 "--data-urlencode httpd_password=alice-test-pw https://hpcgw-gw/hpcgw-login/submit"
                 " | awk '$6 == \"hpcgw_demo_session\" {print $7}'")


def bench_hops(runner: Runner, requests: int, concurrency: int) -> dict[str, Any]:
    ab = f"ab -q -k -c {concurrency} -n {requests}"
    login = "-A alice:alice-test-pw"
    session = runner(docker_exec(GATEWAY, SESSION_LOGIN)).strip()
    if not session:
        raise SystemExit("bench: the demo's login page gave no session cookie")
    out = {
        "hub": parse_ab(runner(docker_exec(GATEWAY, f"{ab} {HUB_HEALTH}"))),
        "proxy_hub": parse_ab(runner(docker_exec(GATEWAY, f"{ab} {PROXY_HEALTH}"))),
        "apache_proxy_hub": parse_ab(runner(docker_exec(GATEWAY, f"{ab} {login} {APACHE_HEALTH}"))),
        "apache_session_proxy_hub": parse_ab(runner(docker_exec(
            GATEWAY, f"{ab} -C hpcgw_demo_session={shlex.quote(session)} {APACHE_HEALTH}"))),
    }
    out["ratio_apache_to_proxy"] = round(out["apache_proxy_hub"]["rps"] / out["proxy_hub"]["rps"], 2)
    out["ratio_session_to_proxy"] = round(out["apache_session_proxy_hub"]["rps"] / out["proxy_hub"]["rps"], 2)
    out["session_added_p50_ms"] = out["apache_session_proxy_hub"]["p50_ms"] - out["proxy_hub"]["p50_ms"]
    out["ratio_proxy_to_hub"] = round(out["proxy_hub"]["rps"] / out["hub"]["rps"], 2)
    out["apache_added_p50_ms"] = out["apache_proxy_hub"]["p50_ms"] - out["proxy_hub"]["p50_ms"]
    # One request at a time (ab's mean, to 0.01 ms): what a request pays for
    # Apache with TLS and the session login, and for the session against
    # Basic (a password check per request), beside the proxy alone.
    one = f"ab -q -k -c 1 -n {max(requests // 5, 50)}"
    sequential = {
        "proxy_hub": parse_ab(runner(docker_exec(GATEWAY, f"{one} {PROXY_HEALTH}"))),
        "apache_basic": parse_ab(runner(docker_exec(GATEWAY, f"{one} {login} {APACHE_HEALTH}"))),
        "apache_session": parse_ab(runner(docker_exec(
            GATEWAY, f"{one} -C hpcgw_demo_session={shlex.quote(session)} {APACHE_HEALTH}"))),
    }
    out["sequential"] = sequential
    out["session_added_ms"] = round(sequential["apache_session"]["mean_ms"] - sequential["proxy_hub"]["mean_ms"], 2)
    out["session_vs_basic_ms"] = round(sequential["apache_session"]["mean_ms"]
                                       - sequential["apache_basic"]["mean_ms"], 2)
    out["requests"], out["concurrency"] = requests, concurrency
    return out


def bench_login(runner: Runner, rounds: int) -> dict[str, Any]:
    """The basic login's check of one password against the demo's htpasswd entry (ms)."""
    code = (
        "import crypt, sys, time\n"
        "line = [l for l in open('/etc/apache2/hpcgw-test-only.htpasswd') if l.startswith('alice:')][0]\n"
        "hashed = line.strip().split(':', 1)[1]\n"
        "t = time.perf_counter()\n"
        f"for _ in range({rounds}): assert crypt.crypt('alice-test-pw', hashed) == hashed\n"
        f"print((time.perf_counter() - t) * 1000 / {rounds})\n")
    return {"check_ms": round(float(runner(docker_exec(GATEWAY, f"python3 -W ignore -c {shlex.quote(code)}")).strip()), 3)}


def bench_memory(runner: Runner) -> dict[str, Any]:
    """Idle PSS (MB) of the hub's, the proxy's and Apache's processes."""
    out: dict[str, Any] = {}
    for name, pgrep in (("hub", "pgrep -u jupyterhub"), ("proxy", "pgrep -u chp"), ("apache", "pgrep -x apache2")):
        pids = runner(docker_exec(GATEWAY, f"{pgrep} || true")).split()
        text = runner(docker_exec(GATEWAY, "cat " + " ".join(f"/proc/{p}/smaps_rollup" for p in pids) + " 2>/dev/null || true")) if pids else ""
        out[name] = round(parse_pss_kb(text) / 1024, 1)
    out["total"] = round(sum(out[k] for k in ("hub", "proxy", "apache")), 1)
    return out


COUNTS_FILE = "/var/lib/jupyterhub/hpcgw-scheduler-commands.json"
# The hub rewrites its counts file every 10 s: wait that long around a count
# (0 in the smoke size, which only keeps the code path alive).
COUNTS_SETTLE = 11


def scheduler_counts(runner: Runner) -> dict[str, int]:
    """The hub's own count of the scheduler commands it ran, per kind, all
    clusters together (written every 10 s while it changes)."""
    text = runner(docker_exec(GATEWAY, f"cat {COUNTS_FILE} 2>/dev/null || echo '{{}}'"))
    totals: dict[str, int] = {}
    for kinds in (json.loads(text).get("counts") or {}).values():
        for kind, count in kinds.items():
            totals[kind] = totals.get(kind, 0) + int(count)
    return totals


def count_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after))
            if after.get(k, 0) - before.get(k, 0)}


def scheduler_calls_per_minute(runner: Runner, seconds: int, settle: float = COUNTS_SETTLE) -> dict[str, int]:
    """Scheduler commands per minute over `seconds`: the hub's counts (the
    shared status query runs no sudo) plus sudo's log of per-user calls."""
    time.sleep(settle)
    before, since = scheduler_counts(runner), runner(docker_exec(GATEWAY, "date '+%Y-%m-%d %H:%M:%S'")).strip()
    time.sleep(seconds + settle)
    delta = count_delta(before, scheduler_counts(runner))
    journal = runner(docker_exec(GATEWAY, f"journalctl -t sudo --no-pager -o cat --since {shlex.quote(since)}"))
    delta.update({f"sudo {k}": v for k, v in count_scheduler_calls(journal).items()})
    return {k: round(v * 60 / (seconds + settle)) for k, v in delta.items()}


def bench_scheduler(runner: Runner, window: int, users: Sequence[tuple[str, str]],
                    settle: float = COUNTS_SETTLE) -> dict[str, Any]:
    out: dict[str, Any] = {}
    started: list[tuple[str, str]] = []
    try:
        for count in sorted({1, len(users)}):
            while len(started) < count:
                user, password = users[len(started)]
                if not spawnclient(runner, "start", user, password, PRESET).get("ready"):
                    raise SystemExit(f"bench: scheduler: {user}'s server did not start")
                started.append((user, password))
            out[f"servers_{count}"] = scheduler_calls_per_minute(runner, window, settle)
    finally:
        for user, password in started:
            spawnclient(runner, "stop", user, password)
    return out


def hub_cpu_seconds(runner: Runner) -> float:
    """CPU time (user + system) the hub process has used so far."""
    code = ("import os, subprocess; pid = subprocess.check_output(['systemctl', 'show', '-p', 'MainPID', '--value', "
            "'jupyterhub'], text=True).strip(); f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split(); "
            "print((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'))")
    return float(runner(docker_exec(GATEWAY, f"python3 -c {shlex.quote(code)}")).strip())


def in_parallel(runner: Runner, command: str, users: Sequence[tuple[str, str]], *args: str) -> list[dict[str, Any]]:
    """spawnclient `command` for every user at the same moment (one process each, on the controller)."""
    lines = [" ".join(shlex.quote(a) for a in ("python3", "/usr/local/bin/spawnclient.py", command, BASE, user,
                                               password, *args)) + f" > /tmp/hpcgw-bench/{user}.json &"
             for user, password in users]
    script = "rm -rf /tmp/hpcgw-bench; mkdir /tmp/hpcgw-bench; " + " ".join(lines) + \
        " wait; for f in /tmp/hpcgw-bench/*.json; do tail -n 1 $f; done"
    return [json.loads(line) for line in runner(docker_exec(CONTROLLER, script)).splitlines() if line.strip()]


def bench_burst(runner: Runner, count: int, settle: float = COUNTS_SETTLE) -> dict[str, Any]:
    """`count` users press Start at the same moment (the demo's burst accounts)."""
    users = [(f"burst{i:02d}", "burst-test-pw") for i in range(1, count + 1)]
    since = runner(docker_exec(GATEWAY, "date '+%Y-%m-%d %H:%M:%S'")).strip()
    counts = scheduler_counts(runner)
    cpu = hub_cpu_seconds(runner)
    began = time.monotonic()
    try:
        started = in_parallel(runner, "start", users, PRESET)
        wall = time.monotonic() - began
        cpu = hub_cpu_seconds(runner) - cpu
        journal = runner(docker_exec(GATEWAY, f"journalctl -t sudo --no-pager -o cat --since {shlex.quote(since)}"))
        time.sleep(settle)
        counted = count_delta(counts, scheduler_counts(runner))
    finally:
        stopped = in_parallel(runner, "stop", users)
    ready = [r["seconds"] for r in started if r.get("ready")]
    left = runner(docker_exec(GATEWAY, "squeue -h -o %u | grep -c '^burst' || true")).strip()
    out: dict[str, Any] = {"users": count, "ready": len(ready), "failed": count - len(ready),
                           "stopped": sum(1 for r in stopped if r.get("stopped")), "jobs_left": int(left or 0),
                           "wall_s": round(wall, 1), "hub_cpu_s": round(cpu, 1),
                           "scheduler_calls": {**counted,
                                               **{f"sudo {k}": v for k, v in count_scheduler_calls(journal).items()}}}
    if ready:
        out["click_to_ready"] = summary(ready)
    return out


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    if "spawn" in results:
        s, a, b = results["spawn"], results["floor_sbatch"], results["floor_imports"]
        rows += [("spawn click-to-ready p50 / p95", f"{s['p50']:.2f} / {s['p95']:.2f} s (n={s['n']})"),
                 ("floor: sbatch -> script runs p50", f"{a['p50']:.2f} s"),
                 ("floor: server imports on a node p50", f"{b['p50']:.2f} s"),
                 ("gateway overhead (spawn - floors) p50", f"{s['p50'] - a['p50'] - b['p50']:.2f} s")]
    if "hops" in results:
        h = results["hops"]
        rows += [("/hub/health: hub alone", f"{h['hub']['rps']:.0f} req/s, p50 {h['hub']['p50_ms']:.0f} ms"),
                 ("/hub/health: proxy -> hub", f"{h['proxy_hub']['rps']:.0f} req/s, p50 {h['proxy_hub']['p50_ms']:.0f} ms"),
                 ("/hub/health: Apache (TLS, login) -> proxy -> hub",
                  f"{h['apache_proxy_hub']['rps']:.0f} req/s, p50 {h['apache_proxy_hub']['p50_ms']:.0f} ms"),
                 ("/hub/health: Apache (TLS, session cookie) -> proxy -> hub",
                  f"{h['apache_session_proxy_hub']['rps']:.0f} req/s, p50 {h['apache_session_proxy_hub']['p50_ms']:.0f} ms"),
                 ("ratio Apache+proxy : proxy alone", f"{h['ratio_apache_to_proxy']:.2f}x (added p50 {h['apache_added_p50_ms']:.0f} ms)"),
                 ("ratio Apache (session)+proxy : proxy alone",
                  f"{h['ratio_session_to_proxy']:.2f}x (added p50 {h['session_added_p50_ms']:.0f} ms)"),
                 ("ratio proxy : hub alone", f"{h['ratio_proxy_to_hub']:.2f}x")]
        if "sequential" in h:
            q = h["sequential"]
            rows += [("one at a time: proxy / Apache Basic / Apache session",
                      f"{q['proxy_hub']['mean_ms']:.2f} / {q['apache_basic']['mean_ms']:.2f} / "
                      f"{q['apache_session']['mean_ms']:.2f} ms per request"),
                     ("Apache (TLS) + session login add, per request", f"{h['session_added_ms']:.2f} ms"),
                     ("session login vs Basic (password each request)", f"{h['session_vs_basic_ms']:+.2f} ms")]
    if "burst" in results:
        b = results["burst"]
        ctr = b.get("click_to_ready", {"p50": float("nan"), "p95": float("nan")})
        rows.append((f"burst of {b['users']}: ready / failed / jobs left",
                     f"{b['ready']} / {b['failed']} / {b['jobs_left']}"))
        rows.append((f"burst of {b['users']}: click-to-ready p50 / p95", f"{ctr['p50']:.1f} / {ctr['p95']:.1f} s "
                     f"(all in {b['wall_s']} s; hub CPU {b['hub_cpu_s']} s)"))
        rows.append((f"burst of {b['users']}: scheduler calls",
                     ", ".join(f"{k} {v}" for k, v in sorted(b["scheduler_calls"].items())) or "none"))
    if "login" in results:
        rows.append(("demo login: password check per request", f"{results['login']['check_ms']:.2f} ms"))
    if "scheduler" in results:
        for key, calls in results["scheduler"].items():
            rows.append((f"scheduler calls/min, {key.replace('_', ' ')}",
                         ", ".join(f"{k} {v}" for k, v in sorted(calls.items())) or "none"))
    if "memory" in results:
        m = results["memory"]
        rows.append(("idle memory (PSS): hub + proxy + Apache", f"{m['hub']} + {m['proxy']} + {m['apache']} = {m['total']} MB"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv: Sequence[str] | None = None, runner: Runner = run) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="spawn rounds and floor samples (default 5)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per proxy-hop run (default 5000)")
    parser.add_argument("--window", type=int, default=60, help="seconds of each scheduler-call count (default 60)")
    parser.add_argument("--burst", type=int, default=30, help="users starting at the same moment (default 30)")
    parser.add_argument("--smoke", action="store_true", help="each part once, tiny (for the test suite)")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    args = parser.parse_args(argv)
    settle = float(COUNTS_SETTLE)
    if args.smoke:
        args.rounds, args.requests, args.window, args.burst, settle = 1, 200, 1, 2, 0.0
    results: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("memory", lambda: bench_memory(runner)),
        ("hops", lambda: bench_hops(runner, args.requests, 10)),
        ("login", lambda: bench_login(runner, 200)),
        ("floor_sbatch", lambda: bench_floor_sbatch(runner, args.rounds)),
        ("floor_imports", lambda: bench_floor_imports(runner, args.rounds)),
        ("spawn", lambda: bench_spawn(runner, args.rounds)),
        ("scheduler", lambda: bench_scheduler(runner, args.window, USERS[:2] if args.smoke else USERS, settle)),
        ("burst", lambda: bench_burst(runner, args.burst, settle)),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, step in steps:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        results[name] = step()
        (args.out / f"{name}.json").write_text(json.dumps(results[name], indent=1) + "\n", encoding="utf-8")
    report = table(results)
    (args.out / "report.txt").write_text(report + "\n", encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
