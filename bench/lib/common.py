#!/usr/bin/env python3
"""Shared by the benchmark scenarios: constants, one measured run (`measure`), alternated runs
(`alternate`), summary helpers and loopback helper processes (`Server`). Stdlib only."""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
MIB = 1 << 20
SA_EMAIL = "bench@hyops-bench.iam.gserviceaccount.com"
BUCKET = "hyops-bench"
COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
SOURCE = "registry.terraform.io/hybridops/hyops"
# The builder both sides run: a real qemu-img pass over the whole ISO. Small (smoke) fixtures are
# grown to the 1 GiB virtual size the engine's image sanity check requires.
BUILD_COMMAND = ('qemu-img convert -f raw -O qcow2 "$HYOPS_VYOS_SOURCE_ISO_PATH" '
                 '"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH" && '
                 'if [ "$(stat -c %s "$HYOPS_VYOS_SOURCE_ISO_PATH")" -lt 1073741824 ]; then '
                 'qemu-img resize -q "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH" 1G; fi')


class ScenarioSkipped(Exception):
    """The scenario cannot run here for a stated reason (not a failure)."""


class ScenarioFailed(Exception):
    """The scenario broke."""


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ measuring

def rchar():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


class Run:
    def __init__(self, wall, maxrss_kib, rc, rchar_bytes, out, err):
        self.wall = wall
        self.maxrss_kib = maxrss_kib
        self.rc = rc
        self.rchar = rchar_bytes
        self.out = out
        self.err = err


def measure(cmd, env=None, cwd=None, timeout=600):
    """Runs cmd once under /usr/bin/time; wall time, peak RSS and read bytes of the whole process
    tree. /usr/bin/time is the parent so the peak RSS is not inflated by a fork of this (Python)
    process: Linux carries the pre-exec high-water mark into ru_maxrss."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe, \
            tempfile.NamedTemporaryFile(mode="r") as ft:
        before = rchar()
        start = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", ft.name] + list(cmd), env=env,
                             cwd=cwd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        timer = threading.Timer(timeout, lambda: os.killpg(p.pid, signal.SIGKILL))
        timer.start()
        try:
            p.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        read = rchar() - before
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
        lines = ft.read().split()
        maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return Run(wall, maxrss, p.returncode, read, out, err)


def checked(run, what):
    if run.rc != 0:
        raise ScenarioFailed("%s exited %d: %s" % (what, run.rc, (run.err or run.out)[-1500:]))
    return run


def alternate(variants, iterations):
    """variants: list of (name, prepare(i) -> (cmd, env, cwd), check(run, i)). Runs them
    alternately, order flipped every round. Returns {name: [Run]}."""
    runs = {name: [] for name, _, _ in variants}
    for i in range(iterations):
        order = variants if i % 2 == 0 else list(reversed(variants))
        for name, prepare, check in order:
            cmd, env, cwd = prepare(i)
            r = measure(cmd, env=env, cwd=cwd)
            checked(r, name)
            if check:
                check(r, i)
            runs[name].append(r)
            log("  %-28s run %d: %.3fs, peak RSS %.1f MiB" % (name, i + 1, r.wall, r.maxrss_kib / 1024))
    return runs


def med(runs, key=lambda r: r.wall):
    return statistics.median(key(r) for r in runs)


def peak_mib(runs):
    return max(r.maxrss_kib for r in runs) / 1024


def fmt_s(x):
    return "%.3f s" % x if x < 10 else "%.2f s" % x


def spread(runs):
    walls = [r.wall for r in runs]
    if len(walls) < 2:
        return ""
    return " (%s–%s)" % (fmt_s(min(walls)).replace(" s", ""), fmt_s(max(walls)))


# ------------------------------------------------------------------------------------ servers

class Server:
    """A loopback helper process that prints one JSON line when ready and stops when its stdin
    closes."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        ready = {}

        def read():
            ready["line"] = self.p.stdout.readline()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(60)
        line = ready.get("line")
        if not line:
            self.stop()
            raise ScenarioFailed("helper %s did not start" % argv[:2])
        self.info = json.loads(line)
        self.port = self.info["port"]
        self.base = "http://127.0.0.1:%d" % self.port

    def get_json(self, path):
        with urllib.request.urlopen(self.base + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, body=b"{}"):
        req = urllib.request.Request(self.base + path, data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


# ------------------------------------------------------------------------------------ the bench
