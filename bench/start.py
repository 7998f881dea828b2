#!/usr/bin/env python3
"""Start-up benchmark: `casco run --rm IMAGE true` against
`podman run --rm --network none IMAGE true` and `runc run` of a prepared
bundle, interleaved in one run; medians and ratios. Also the peak RSS of that
casco run, and the RSS of a detached container's monitor beside conmon's.

    sudo python3 bench/start.py [ROUNDS]
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Casco, Podman, busybox_tar, die, have, median, rss_kib, timed, tmpdir  # noqa: E402


def runc_bundle(workdir, rootfs):
    bundle = os.path.join(workdir, "bundle")
    os.makedirs(bundle)
    shutil.copytree(rootfs, os.path.join(bundle, "rootfs"), symlinks=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    spec["process"]["rlimits"] = []
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    if os.geteuid() != 0:
        die("run as root (podman and runc are compared rootful)")
    work = tmpdir()
    try:
        rootfs, tar = busybox_tar(work)
        casco = Casco(work)
        casco.run("import", tar, "bench")
        contenders = {"casco": casco.cmd("run", "--rm", "bench", "true"),
                      "casco --network none": casco.cmd("run", "--rm", "--network", "none", "bench", "true")}
        env = {}
        podman = None
        if have("podman"):
            podman = Podman(work)
            podman.run("import", tar, "bench")
            contenders["podman --network none"] = podman.cmd("run", "--rm", "--network", "none", "bench", "true")
            env["podman --network none"] = podman.env
        else:
            print("podman not installed: skipped")
        if have("runc"):
            bundle = runc_bundle(work, rootfs)
            contenders["runc run (bundle)"] = None
        else:
            print("runc not installed: skipped")
        times = {k: [] for k in contenders}
        # Warm up page caches once each.
        for name, argv in contenders.items():
            if argv:
                timed(argv, env.get(name))
        for i in range(rounds):
            for name, argv in contenders.items():
                if argv is None:
                    argv = ["runc", "run", "--bundle", bundle, f"bench-{os.getpid()}-{i}"]
                dt, _ = timed(argv, env.get(name))
                times[name].append(dt)
        base = median(times["casco"])
        print(f"\nstart-up, {rounds} interleaved rounds (median wall time):")
        for name, ts in times.items():
            m = median(ts)
            ratio = m / base
            print(f"  {name:28s} {m * 1000:8.2f} ms   {ratio:6.2f}x casco")
        # ru_maxrss from Python would count Python's own pages copied at fork
        # (before exec); GNU time forks from a small process.
        if os.path.exists("/usr/bin/time"):
            peaks = []
            for _ in range(5):
                r = subprocess.run(["/usr/bin/time", "-f", "%M", *contenders["casco"]], capture_output=True, text=True)
                peaks.append(int(r.stderr.strip().splitlines()[-1]))
            print(f"\npeak RSS of `casco run --rm bench true`: {max(peaks) / 1024:.2f} MiB (GNU time, max of 5)")
        else:
            print("\npeak RSS: install GNU time (apt-get install time) to measure it")

        # Monitor size against conmon.
        cid = casco.run("run", "-d", "bench", "sleep", "600").stdout.strip()
        mon = int(casco.run("inspect", "--format", "{{.State.ConmonPid}}", cid).stdout.strip())
        time.sleep(0.3)
        r, p = rss_kib(mon)
        print(f"casco monitor:  RSS {r / 1024:.2f} MiB, PSS {p / 1024:.2f} MiB")
        casco.run("rm", "-f", cid)
        if podman:
            pid = podman.run("run", "-d", "--network", "none", "bench", "sleep", "600").stdout.strip()
            cpid = int(podman.run("inspect", "--format", "{{.State.ConmonPid}}", pid).stdout.strip())
            time.sleep(0.3)
            r2, p2 = rss_kib(cpid)
            print(f"podman conmon:  RSS {r2 / 1024:.2f} MiB, PSS {p2 / 1024:.2f} MiB")
            podman.run("rm", "-f", "-t", "0", pid)
    finally:
        Casco(work).reset() if os.path.exists(os.path.join(work, "casco-root")) else None
        if have("podman"):
            Podman(work).reset()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
