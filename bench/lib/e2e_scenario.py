#!/usr/bin/env python3
"""Scenario 8 of the harness: end to end against the shell pipeline on the GCS stack (issue #11's
targets). `image apply` with a gcs `publish` block vs `bench/pipeline_publish.sh` (curl →
sha256sum → builder → sha256sum → openssl JWT → one `curl -T` PUT → manifest), alternated runs,
fresh stack, cache and work dirs per run, at 256 MiB and 1 GiB (BENCH_E2E_SIZES, comma-separated
MiB; the smoke run uses its own small size). Two builders: the trivial one (an uncompressed qcow2
of the ISO, so only the pipeline's own work is compared) and a compressing one (`qemu-img convert
-c`). After each of our trivial runs the same apply runs again (cache hit, already published):
its time, the bytes the ISO server sent and the uploads the stack saw are recorded.

Targets (DESIGN §7, issue #11): trivial builder ≤ 0.60× the pipeline's wall time (median) with
peak RSS < 64 MiB; compressing builder faster than the pipeline; warm re-run a few ms with zero
bytes from the network. Stdlib only."""

import json
import os
import shutil
import subprocess
import sys

from common import (BENCH, BUCKET, BUILD_COMMAND, MIB, ROOT, SA_EMAIL, ScenarioFailed,
                    ScenarioSkipped, alternate, checked, fmt_s, log, measure, med, peak_mib, spread)

# The compressing builder: the same image, compressed qcow2 (zlib, what builders typically write).
COMPRESSING_BUILD_COMMAND = BUILD_COMMAND.replace("-O qcow2 ", "-O qcow2 -c ", 1)


class EndToEnd:
    def e2e_fixture(self, size):
        """(url, sha256) of a `size` MiB incompressible ISO served by the fixture server."""
        if size == self.size_mib:
            return self.url, self.sha
        name = "fixture-%d.iso" % size
        path = self.path("srv", name)
        if not os.path.exists(path):
            log("fixture: %d MiB of pseudo-random bytes for scenario 8" % size)
            with open(path, "wb") as out:
                gen = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-pass",
                                        "pass:hyops-e2e-%d" % size, "-in", "/dev/zero"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                left = size * MIB
                while left:
                    chunk = gen.stdout.read(min(4 * MIB, left))
                    if not chunk:
                        raise ScenarioFailed("openssl enc stopped early")
                    out.write(chunk)
                    left -= len(chunk)
                gen.kill()
                gen.wait()
        sha = checked(measure(["openssl", "dgst", "-sha256", "-r", path]), "openssl dgst").out.split()[0]
        return self.files.base + "/" + name, sha

    def s8_end_to_end(self):
        stack_py = os.path.join(ROOT, "test-fixtures", "gcs", "gcs_stack.py")
        if not os.path.exists(stack_py):
            raise ScenarioSkipped("test-fixtures/gcs/gcs_stack.py is not in this tree")
        probe = subprocess.run([sys.executable, "-c", "import gcp_storage_emulator, cryptography"],
                               capture_output=True)
        if probe.returncode != 0:
            raise ScenarioFailed("the GCS stack needs `pip install gcp-storage-emulator cryptography`")
        self.gen_sa()
        if self.smoke:
            sizes = [self.size_mib]
        else:
            sizes = [int(s) for s in os.environ.get("BENCH_E2E_SIZES", "256,1024").split(",") if s]
        for size in sizes:
            self._e2e_size(stack_py, size)

    def _e2e_size(self, stack_py, size):
        url, sha = self.e2e_fixture(size)
        stack = {}
        warm = []
        data_requests = {}

        def start_stack():
            if "s" in stack:
                stack["s"].stop()
                self.servers.remove(stack["s"])
            stack["s"] = self.server([sys.executable, stack_py, "--public-key", self.sa_pub,
                                      "--bucket", BUCKET, "--client-email", SA_EMAIL])
            return stack["s"]

        def spec_for(builder, prefix, s):
            path = self.path("spec-e2e.json")
            with open(path, "w") as f:
                json.dump({
                    "artifact_key": "bench-img",
                    "artifact_version": "1.0-bench",
                    "source_iso_url": url,
                    "source_iso_sha256": sha,
                    "build": {"method": "command", "command": builder, "disk_size_gb": 2},
                    "publish": {"backend": "gcs", "bucket": BUCKET, "prefix": prefix,
                                "public_base_url": "%s/%s" % (s.base, BUCKET)},
                }, f, indent=2)
            return path

        def ours(builder, tag):
            def prepare(i):
                s = start_stack()  # a fresh in-memory bucket per run (untimed)
                spec = spec_for(builder, "%s%d/" % (tag, i), s)
                sa = self.sa_file(s.base + "/token", "e2e.json")
                cache = self.fresh("s8", "ours-cache")
                env = self.base_env(HYOPS_VYOS_ISO_CACHE_DIR=cache, HYOPS_GCS_ENDPOINT=s.base,
                                    HYOPS_VYOS_GCS_SA_JSON_FILE=sa)
                stack["last"] = ([self.bin, "image", "apply", "--config", spec], env)
                return stack["last"][0], env, None
            return prepare

        def check_ours(tag, measure_warm):
            def check(r, i):
                c = json.loads(r.out)
                if c.get("published") is not True or not c.get("manifest_url"):
                    raise ScenarioFailed("contract does not say published: %s" % r.out[:600])
                st = stack["s"].get_json("/__stats")
                if st.get("token_ok", 0) < 1 or st.get("unauthorized", 0):
                    raise ScenarioFailed("ours did not authenticate cleanly: %s" % st)
                data_requests.setdefault(tag, []).append(st.get("chunk_puts", 0))
                if measure_warm:
                    # The same apply again: cache hit, objects already there.
                    self.files.post("/__reset")
                    stack["s"].post("/__control", json.dumps({"reset": True}).encode())
                    cmd, env = stack["last"]
                    w = checked(measure(cmd, env=env), "warm re-run")
                    again = json.loads(w.out)
                    if again.get("artifact_sha256") != c.get("artifact_sha256"):
                        raise ScenarioFailed("warm re-run gave another artifact")
                    st2 = stack["s"].get_json("/__stats")
                    warm.append((w, self.served()["bytes_sent"], st2.get("upload_initiations", 0),
                                 st2.get("chunk_puts", 0)))
            return check

        def ref(builder):
            def prepare(i):
                s = start_stack()
                w = self.fresh("s8", "ref")
                return ([os.path.join(BENCH, "pipeline_publish.sh"), url, sha, w, "ref%d" % i],
                        self.base_env(BENCH_BUILD_COMMAND=builder, BENCH_GCS_ENDPOINT=s.base,
                                      BENCH_GCS_BUCKET=BUCKET, BENCH_SA_KEY_PEM=self.sa_key,
                                      BENCH_SA_EMAIL=SA_EMAIL, BENCH_TOKEN_URI=s.base + "/token"),
                        None)
            return prepare

        def check_ref(r, i):
            st = stack["s"].get_json("/__stats")
            if st.get("token_ok", 0) < 1 or st.get("unauthorized", 0):
                raise ScenarioFailed("reference pipeline did not authenticate: %s" % st)

        try:
            runs = alternate([
                ("ours: trivial builder", ours(BUILD_COMMAND, "t"), check_ours("t", True)),
                ("ref: trivial builder", ref(BUILD_COMMAND), check_ref),
                ("ours: compressing builder", ours(COMPRESSING_BUILD_COMMAND, "c"),
                 check_ours("c", False)),
                ("ref: compressing builder", ref(COMPRESSING_BUILD_COMMAND), check_ref),
            ], self.iters)
        finally:
            if "s" in stack:
                stack["s"].stop()
                self.servers.remove(stack["s"])
        for tag, label, builder_note in (
                ("trivial", "trivial builder", "builder = uncompressed qcow2 of the ISO, so only "
                 "the pipeline's own work is compared; target ≤ 0.60× the pipeline's wall time "
                 "with peak RSS < 64 MiB"),
                ("compressing", "compressing builder", "builder = `qemu-img convert -c` (zlib "
                 "qcow2); target: faster than the pipeline")):
            o, r = runs["ours: %s" % label], runs["ref: %s" % label]
            reqs = data_requests.get(tag[0], [])
            self.row("8%s. end to end, %s, %d MiB ISO → GCS stack" % ("" if tag == "trivial" else "b",
                                                                      label, size),
                     fmt_s(med(o)) + spread(o), fmt_s(med(r)) + spread(r),
                     self.ratio(med(r), med(o)),
                     "%.0f / %.0f MiB" % (peak_mib(o), peak_mib(r)),
                     "ours/pipeline wall time = %.2f×. %s. Ours = `image apply` (default "
                     "`build.normalize = \"auto\"`) with a gcs `publish` block (JWT token, "
                     "resumable upload with declared crc32c, object check, manifest); "
                     "reference = `bench/pipeline_publish.sh`. Upload data requests per run "
                     "(ours, at the stack): %s"
                     % (med(o) / med(r), builder_note, "/".join(str(n) for n in reqs) or "?"))
        if warm:
            ws = [w[0] for w in warm]
            self.row("8c. warm re-run (cache hit, already published), %d MiB" % size,
                     fmt_s(med(ws)) + spread(ws), "", "", "%.0f MiB" % peak_mib(ws),
                     "the same `image apply` again right after each trivial-builder run: %d bytes "
                     "sent by the ISO server, %d upload initiations and %d data requests at the "
                     "stack (object checks and the manifest check only)"
                     % (max(w[1] for w in warm), max(w[2] for w in warm),
                        max(w[3] for w in warm)))
        shutil.rmtree(self.path("s8"), ignore_errors=True)
