#!/usr/bin/env python3
"""Scale benchmark: start N detached containers in parallel, list them
(`ps -a --format json`), remove them in parallel — casco, then podman, in one
run; checks that every container started and was removed, and that no mount
or record is left.

    sudo python3 bench/parallel.py [N]
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Casco, Podman, busybox_tar, die, have, tmpdir  # noqa: E402


def parallel(argvs, env=None):
    """Starts every command at once; waits for all; returns wall time."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for a in argvs]
    failures = []
    outs = []
    for p in procs:
        out, err = p.communicate()
        outs.append(out.decode().strip())
        if p.returncode != 0:
            failures.append(err.decode().strip())
    dt = time.perf_counter() - t0
    if failures:
        die(f"{len(failures)} of {len(argvs)} failed, first: {failures[0]}")
    return dt, outs


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if path in l]


def bench(name, tool, n, env=None):
    run_argvs = [tool.cmd("run", "-d", "--network", "none", "bench", "sleep", "3600") for _ in range(n)]
    t_run, ids = parallel(run_argvs, env)
    t0 = time.perf_counter()
    out = subprocess.run(tool.cmd("ps", "-a", "--format", "json"), check=True, capture_output=True, env=env).stdout
    t_ps = time.perf_counter() - t0
    listed = json.loads(out)
    running = [c for c in listed if c.get("State") == "running"]
    if len(listed) != n or len(running) != n:
        die(f"{name}: ps shows {len(listed)} containers, {len(running)} running; expected {n}")
    rm_argvs = [tool.cmd("rm", "-f", "-t", "0", i) for i in ids]
    t_rm, _ = parallel(rm_argvs, env)
    left = json.loads(subprocess.run(tool.cmd("ps", "-a", "--format", "json"), check=True,
                                     capture_output=True, env=env).stdout)
    if left:
        die(f"{name}: {len(left)} containers left after rm")
    return t_run, t_ps, t_rm


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    if os.geteuid() != 0:
        die("run as root")
    work = tmpdir()
    casco = Casco(work)
    podman = Podman(work) if have("podman") else None
    try:
        _, tar = busybox_tar(work)
        casco.run("import", tar, "bench")
        results = {"casco": bench("casco", casco, n)}
        stray = mounts_under(casco.root)
        records = os.listdir(os.path.join(casco.root, "containers"))
        if stray or records:
            die(f"casco left {len(stray)} mounts and {len(records)} records")
        if podman:
            podman.run("import", tar, "bench")
            results["podman"] = bench("podman", podman, n, podman.env)
        else:
            print("podman not installed: compared with nothing")
        c = results["casco"]
        print(f"\n{n} containers, one run:")
        print(f"  {'':10s} {'run -d (parallel)':>18s} {'ps -a --format json':>20s} {'rm -f (parallel)':>17s}")
        for k, (a, b, r) in results.items():
            print(f"  {k:10s} {a:17.2f}s {b * 1000:18.1f}ms {r:16.2f}s")
        if "podman" in results:
            p = results["podman"]
            print(f"  {'podman/casco':10s} {p[0] / c[0]:17.1f}x {p[1] / c[1]:19.1f}x {p[2] / c[2]:16.1f}x")
        print(f"  casco left no container records and no mounts under {casco.root}")
    finally:
        casco.reset()
        if podman:
            podman.reset()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
