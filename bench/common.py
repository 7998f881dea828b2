"""Shared helpers for casco's benchmarks: a busybox rootfs, temporary stores,
podman and runc set up beside casco so that one run times them all."""

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASCO = os.environ.get("CASCO", os.path.join(ROOT, "target", "release", "casco"))


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


def have(tool):
    return shutil.which(tool) is not None


def busybox_rootfs(dest):
    """A rootfs from Debian's busybox-static: /bin/busybox and its applets."""
    bb = "/bin/busybox"
    if not os.path.exists(bb):
        die("needs /bin/busybox (apt-get install busybox-static)")
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"]:
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    shutil.copy2(bb, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        p = os.path.join(dest, "bin", a)
        if not os.path.lexists(p):
            os.symlink("busybox", p)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    os.chmod(os.path.join(dest, "tmp"), 0o1777)


def busybox_tar(workdir):
    rootfs = os.path.join(workdir, "rootfs")
    busybox_rootfs(rootfs)
    tar = os.path.join(workdir, "busybox.tar")
    with tarfile.open(tar, "w") as t:
        for name in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, name), arcname=name)
    return rootfs, tar


class Casco:
    def __init__(self, workdir):
        self.root = os.path.join(workdir, "casco-root")
        self.runroot = os.path.join(workdir, "casco-run")
        if not os.access(CASCO, os.X_OK):
            die(f"build casco first: cargo build --release (looked for {CASCO})")

    def cmd(self, *args):
        return [CASCO, "--root", self.root, "--runroot", self.runroot, *args]

    def run(self, *args, **kw):
        return subprocess.run(self.cmd(*args), check=True, capture_output=True, text=True, **kw)

    def reset(self):
        subprocess.run(self.cmd("system", "reset", "-f"), capture_output=True)


class Podman:
    """podman with its own storage, and an rlimit default this host allows
    (its stock nofile=1048576 exceeds the hard limit here)."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "podman")
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "containers.conf")
        import resource

        def hard(which):
            h = resource.getrlimit(which)[1]
            return "-1" if h == resource.RLIM_INFINITY else str(h)
        # runc here refuses any nproc near the hard limit (it is set per user,
        # and counted across the host); 4096 is plenty for a benchmark.
        nofile, nproc = hard(resource.RLIMIT_NOFILE), "4096"
        with open(conf, "w") as f:
            f.write(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.base = ["podman", "--root", os.path.join(self.dir, "root"), "--runroot", os.path.join(self.dir, "run"),
                     "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]

    def cmd(self, *args):
        return [*self.base, *args]

    def run(self, *args):
        return subprocess.run(self.cmd(*args), check=True, capture_output=True, text=True, env=self.env)

    def reset(self):
        subprocess.run(self.cmd("system", "reset", "-f"), capture_output=True, env=self.env)


def timed(argv, env=None):
    """Wall time of one command in seconds, and its peak RSS in KiB (the
    process and every descendant it waited for).

    The RSS comes from GNU time when installed: Linux carries a process's
    RSS high-water mark across exec, so a child forked straight from this
    (large) Python process would report Python's RSS as its own."""
    import tempfile
    import time
    gnu_time = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    rss_file = None
    if gnu_time:
        fd, rss_file = tempfile.mkstemp(prefix="casco-bench-rss-")
        os.close(fd)
        argv = [gnu_time, "-f", "%M", "-o", rss_file, *argv]
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if status != 0:
        err = p.stderr.read().decode(errors="replace")
        die(f"{' '.join(argv)} failed ({status}): {err}")
    p.stderr.close()
    maxrss = ru.ru_maxrss
    if rss_file:
        with open(rss_file) as f:
            maxrss = int(f.read().split()[-1])
        os.unlink(rss_file)
    return dt, maxrss


def median(xs):
    return statistics.median(xs)


def tmpdir():
    return tempfile.mkdtemp(prefix="casco-bench-", dir="/var/tmp")


def rss_kib(pid):
    """(RSS, PSS) of a process in KiB."""
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss
