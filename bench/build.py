#!/usr/bin/env python3
"""Build benchmark: a 10-step Containerfile (FROM busybox, RUN, COPY of a
generated 1,000-file tree, ENV, WORKDIR, RUN, COPY, LABEL, EXPOSE, CMD) built
cold and rebuilt from the cache, by casco and by `buildah bud --layers`
(private --root, overlay driver) when installed. Rounds interleave the two;
medians and ratios.

    sudo python3 bench/build.py [ROUNDS]

Cold means an empty build cache: casco's lives in its store (ROOT/build-cache,
entries that name layers; a miss when a layer is gone), so each cold round
starts from `system reset -f` and a fresh import of the base image; buildah's
cache is its intermediate images, so each cold round gets a new --root. Only
the build itself is timed. A cached round rebuilds the unchanged context and
must print `--> Using cache` for every step after FROM.
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Casco, busybox_tar, die, have, median, timed, tmpdir  # noqa: E402

CONTAINERFILE = """\
FROM busybox
RUN echo hello > /hello && mkdir -p /app
COPY tree/ /app/tree/
ENV APP_HOME=/app MODE=bench
WORKDIR /app
RUN find tree -type f | wc -l > /app/count && cat /app/count
COPY extra.txt /app/extra.txt
LABEL org.example.bench=build
EXPOSE 8080
CMD ["cat", "/app/count"]
"""
STEPS = CONTAINERFILE.count("\n")
FILES = 1000


def make_context(ctx):
    """The Containerfile, tree/ (20 directories of 50 files, 1-4 KiB each,
    the same bytes every run) and extra.txt."""
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Containerfile"), "w") as f:
        f.write(CONTAINERFILE)
    with open(os.path.join(ctx, "extra.txt"), "w") as f:
        f.write("extra\n")
    for i in range(FILES):
        d = os.path.join(ctx, "tree", f"d{i // 50:02d}")
        os.makedirs(d, exist_ok=True)
        line = f"file {i} of the benchmark tree\n".encode()
        with open(os.path.join(d, f"f{i:04d}.txt"), "wb") as f:
            f.write(line * (1 + (i * 7919) % 4096 // len(line)))


def mounts_under(path):
    """Mount points under `path` (this mount namespace), deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


class Buildah:
    """buildah with a store of its own under the bench's temp dir."""

    def __init__(self, workdir, base_archive, n):
        self.dir = os.path.join(workdir, f"buildah-{n}")
        os.makedirs(os.path.join(self.dir, "tmp"))
        self.env = dict(os.environ, TMPDIR=os.path.join(self.dir, "tmp"))
        self.base = ["buildah", "--root", os.path.join(self.dir, "root"), "--runroot",
                     os.path.join(self.dir, "run"), "--storage-driver", "overlay"]
        self.run("pull", "-q", f"oci-archive:{base_archive}")

    def cmd(self, *args):
        return [*self.base, *args]

    def run(self, *args):
        return subprocess.run(self.cmd(*args), check=True, capture_output=True, text=True, env=self.env)

    def remove(self):
        subprocess.run(self.cmd("rmi", "-a", "-f"), capture_output=True, env=self.env)
        # containers/storage leaves its overlay home bind-mounted on itself.
        for mp in mounts_under(self.dir):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def check_cached(argv, env, who):
    """Runs a rebuild once untimed and checks that every step was cached."""
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        die(f"{who} rebuild failed: {out.stderr}")
    hits = out.stdout.count("--> Using cache ")
    if hits != STEPS - 1:
        die(f"{who} rebuild used the cache for {hits} of {STEPS - 1} steps:\n{out.stdout}")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if os.geteuid() != 0:
        die("run as root (buildah is compared rootful)")
    work = tmpdir()
    casco = None
    buildahs = []
    try:
        _, tar = busybox_tar(work)
        ctx = os.path.join(work, "ctx")
        make_context(ctx)
        casco = Casco(work)
        casco.run("import", tar, "busybox")
        base_archive = os.path.join(work, "busybox-oci.tar")
        casco.run("save", "--format", "oci-archive", "-o", base_archive, "busybox")
        with_buildah = have("buildah")
        if not with_buildah:
            print("buildah not installed: casco only")
        times = {"casco cold": [], "casco cached": []}
        if with_buildah:
            times.update({"buildah cold": [], "buildah cached": []})
        casco_build = casco.cmd("build", "-t", "bench", ctx)
        for i in range(rounds):
            casco.reset()
            casco.run("import", tar, "busybox")
            times["casco cold"].append(timed(casco_build)[0])
            check_cached(casco_build, None, "casco")
            times["casco cached"].append(timed(casco_build)[0])
            if with_buildah:
                b = Buildah(work, base_archive, i)
                buildahs.append(b)
                bud = b.cmd("bud", "--layers", "-t", "bench", ctx)
                times["buildah cold"].append(timed(bud, b.env)[0])
                check_cached(bud, b.env, "buildah")
                times["buildah cached"].append(timed(bud, b.env)[0])
                b.remove()
                buildahs.remove(b)
        print(f"\nbuild of a {STEPS}-step Containerfile with a {FILES}-file COPY, {rounds} rounds (median wall time):")
        for kind in ["cold", "cached"]:
            base = median(times[f"casco {kind}"])
            print(f"  casco   {kind:6s} {base * 1000:9.1f} ms")
            if with_buildah:
                m = median(times[f"buildah {kind}"])
                print(f"  buildah {kind:6s} {m * 1000:9.1f} ms   {m / base:6.2f}x casco")
        print("\nper round (ms):")
        for name, ts in times.items():
            print(f"  {name:15s} " + " ".join(f"{t * 1000:7.0f}" for t in ts))
    finally:
        for b in buildahs:
            b.remove()
        if casco:
            casco.reset()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
