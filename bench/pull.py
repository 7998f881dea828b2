#!/usr/bin/env python3
"""Pull and push benchmark against a local registry (Debian's docker-registry
on 127.0.0.1): an image of about 100 MB in 6 layers (busybox, then layers of
many files, random incompressible data mixed with text, so decompression and
unpacking both matter) is pushed to the registry with skopeo; then, in
interleaved rounds,

  pull:  `casco pull` into an empty store, `podman pull` into an empty store,
         `skopeo copy docker://... containers-storage:...` into an empty store;
  push:  `casco push` and `podman push` of the pulled image to a new name in
         the same registry (blobs already there: HEAD/mount), and to an empty
         registry (every blob uploaded).

Medians and ratios are printed; the issue's targets are casco pull at least
1.5x faster than podman pull, and casco push no slower than podman push.

    sudo python3 bench/pull.py [ROUNDS] [SIZE_MB]
"""

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Casco, Podman, busybox_tar, die, have, median, timed, tmpdir  # noqa: E402

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
MTIME = 1_700_000_000
WORDS = ("container layer registry manifest digest blob overlay tar gzip zstd pull push image config "
         "namespace cgroup rootless store index platform whiteout opaque mount lorem ipsum dolor sit amet").split()


# --- the image ------------------------------------------------------------------

def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def text_block(rng, size):
    """size bytes of word soup: compressible like logs, docs and sources."""
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def layer_tar(rng, index, size):
    """A tar of about `size` bytes: a tree of files, ~40% random bytes (as
    compressed assets and binaries are) and ~60% text, sizes from 1 KiB to
    2 MiB, plus some symlinks."""
    buf = io.BytesIO()
    # A pool of text to slice from: generating word soup per file is slow.
    pool = text_block(rng, 4 << 20)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data=None, kind=tarfile.REGTYPE, target="", mode=0o644):
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            info.type = kind
            info.mode = mode
            if kind == tarfile.SYMTYPE:
                info.linkname = target
            if data is not None:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(info)
        top = f"opt/layer{index}"
        for d in ["opt", top]:
            add(d, kind=tarfile.DIRTYPE, mode=0o755)
        written = 0
        files = 0
        dirs = []
        while written < size:
            if files % 40 == 0:
                d = f"{top}/d{len(dirs):03d}"
                dirs.append(d)
                add(d, kind=tarfile.DIRTYPE, mode=0o755)
            n = min(int(rng.paretovariate(1.2) * 1024), 2 << 20)
            if rng.random() < 0.4:
                data = rng.randbytes(n)
                name = f"{dirs[-1]}/blob{files:05d}.bin"
            else:
                start = rng.randrange(0, len(pool) - n) if n < len(pool) else 0
                data = pool[start:start + n]
                name = f"{dirs[-1]}/text{files:05d}.txt"
            add(name, data)
            if files % 50 == 7:
                add(f"{dirs[-1]}/link{files:05d}", kind=tarfile.SYMTYPE, target=os.path.basename(name), mode=0o777)
            written += n
            files += 1
    return buf.getvalue(), files


def build_layout(work, size_mb):
    """An OCI layout with the bench image tagged `bench`; returns (layout,
    config digest, compressed size, uncompressed size, file count)."""
    rng = random.Random(20240607)
    _, bb_tar = busybox_tar(work)
    with open(bb_tar, "rb") as f:
        tars = [f.read()]
    layers = 5
    files = 0
    for i in range(layers):
        data, n = layer_tar(rng, i, (size_mb << 20) // layers)
        tars.append(data)
        files += n
    layout = os.path.join(work, "layout")
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        d = sha256(data)
        with open(os.path.join(blobs, d[7:]), "wb") as f:
            f.write(data)
        return d

    descs, diff_ids = [], []
    for tar in tars:
        gz = gzip.compress(tar, compresslevel=6, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
        diff_ids.append(sha256(tar))
    config = json.dumps({
        "created": "2023-11-14T22:13:20Z", "architecture": ARCH, "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"bench layer {i}"} for i in range(len(tars))],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": descs,
    }).encode()
    mdigest = put(manifest)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    compressed = sum(d["size"] for d in descs)
    return layout, sha256(config), compressed, sum(len(t) for t in tars), files


# --- the registry ----------------------------------------------------------------

class Registry:
    """docker-registry on 127.0.0.1 with a free port and storage under `dir`."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(os.path.join(dir, "data"), exist_ok=True)
        for _ in range(5):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            conf = os.path.join(dir, "config.yml")
            with open(conf, "w") as f:
                f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                        f"storage:\n  filesystem:\n    rootdirectory: {dir}/data\n  delete:\n    enabled: true\n"
                        f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: bench\n")
            self.proc = subprocess.Popen(["docker-registry", "serve", conf], stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(dir, "registry.log"), "w"))
            deadline = time.time() + 10
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.02)
            self.stop()
        die("docker-registry did not start")

    def ref(self, name):
        return f"127.0.0.1:{self.port}/{name}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def skopeo(*args):
    subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True)


# --- the rounds ------------------------------------------------------------------

def report(title, times, base):
    print(f"\n{title} (median wall time, {len(next(iter(times.values())))} rounds):")
    b = median(times[base])
    for name, ts in times.items():
        m = median(ts)
        each = " ".join(f"{t:.2f}" for t in ts)
        print(f"  {name:44s} {m:8.2f} s   {m / b:6.2f}x {base}   (rounds: {each})")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    if os.geteuid() != 0:
        die("run as root (podman and skopeo's containers-storage are compared rootful)")
    for tool in ["docker-registry", "skopeo"]:
        if not have(tool):
            die(f"needs {tool} (apt-get install {tool})")
    work = tmpdir()
    regs = []
    casco = Casco(work)
    podman = Podman(work) if have("podman") else None
    skopeo_dir = os.path.join(work, "skopeo-stores")
    try:
        t0 = time.time()
        layout, config_digest, compressed, uncompressed, files = build_layout(work, size_mb)
        print(f"image: 6 layers, {files} files, {uncompressed / 1e6:.0f} MB as tar, "
              f"{compressed / 1e6:.0f} MB gzip (built in {time.time() - t0:.1f} s)")
        reg = Registry(os.path.join(work, "registry"))
        regs.append(reg)
        image = reg.ref("bench/big:v1")
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:bench", f"docker://{image}")

        # Each takes the round number; each starts from an empty store.
        pulls = {"casco pull": lambda i: timed(casco.cmd("pull", "-q", "--tls-verify=false", image))}
        resets = {"casco pull": casco.reset}
        if podman:
            pulls["podman pull"] = lambda i: timed(podman.cmd("pull", "-q", "--tls-verify=false", image), podman.env)
            resets["podman pull"] = podman.reset

            def skopeo_pull(i):
                # A new containers-storage per round: `podman system reset` does
                # not reliably empty a store that only skopeo wrote.
                store = os.path.join(skopeo_dir, str(i))
                dest = f"containers-storage:[overlay@{store}/root+{store}/run]{image}"
                return timed(["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                              f"docker://{image}", dest])
            pulls["skopeo copy docker:// containers-storage:"] = skopeo_pull
            resets["skopeo copy docker:// containers-storage:"] = lambda: None
        else:
            print("podman not installed: podman pull and skopeo copy to containers-storage skipped")

        times = {k: [] for k in pulls}
        rss = {k: [] for k in pulls}
        for i in range(rounds):
            for name, pull in pulls.items():
                resets[name]()
                os.sync()  # the last round's writeback must not slow this one
                dt, maxrss = pull(i)
                times[name].append(dt)
                rss[name].append(maxrss)
        report(f"pull of {compressed / 1e6:.0f} MB ({uncompressed / 1e6:.0f} MB unpacked) into an empty store",
               times, "casco pull")
        for name, r in rss.items():
            print(f"  {name} peak RSS: {max(r) / 1024:.1f} MiB")
        got = casco.run("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        if "sha256:" + got != config_digest:
            die(f"casco pulled image ID {got}, expected {config_digest}")
        if podman:
            ratio = median(times["podman pull"]) / median(times["casco pull"])
            print(f"  target: casco pull >= 1.5x faster than podman pull: {ratio:.2f}x "
                  f"{'met' if ratio >= 1.5 else 'NOT met'}")

        # Push: the image is in casco's store (last round) and podman's.
        if podman:
            podman.reset()
            podman.run("pull", "-q", "--tls-verify=false", image)
        pushes = {k: [] for k in (["casco push", "podman push"] if podman else ["casco push"])}
        fresh = {k: [] for k in pushes}
        for i in range(rounds):
            for name in pushes:
                tool = casco if name == "casco push" else podman
                env = podman.env if tool is podman else None
                dest = reg.ref(f"bench/{name.split()[0]}-{i}:v1")
                dt, _ = timed(tool.cmd("push", "-q", "--tls-verify=false", image, dest), env)
                pushes[name].append(dt)
                empty = Registry(os.path.join(work, f"empty-{name.split()[0]}-{i}"))
                regs.append(empty)
                dt, _ = timed(tool.cmd("push", "-q", "--tls-verify=false", image, empty.ref("bench/big:v1")), env)
                fresh[name].append(dt)
                # What was pushed must be the image (checked untimed).
                cfg = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--config", "--raw",
                                      f"docker://{empty.ref('bench/big:v1')}"], capture_output=True, check=True).stdout
                if sha256(cfg) != config_digest:
                    die(f"{name} to an empty registry pushed config {sha256(cfg)}, expected {config_digest}")
                empty.stop()
                shutil.rmtree(empty.dir, ignore_errors=True)
        report("push to a new name in the same registry (blobs already there)", pushes, "casco push")
        report("push to an empty registry (every blob uploaded)", fresh, "casco push")
        if podman:
            for title, t in [("new name", pushes), ("empty registry", fresh)]:
                ratio = median(t["podman push"]) / median(t["casco push"])
                print(f"  target ({title}): casco push no slower than podman push: {ratio:.2f}x "
                      f"{'met' if ratio >= 1.0 else 'NOT met'}")
    finally:
        for r in regs:
            r.stop()
        casco.reset()
        if podman:
            podman.reset()
        # containers-storage's overlay driver leaves ROOT/overlay bind-mounted
        # on itself: unmount what skopeo left before removing the stores.
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in reversed(mounts):
            if m.startswith(skopeo_dir + "/"):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
