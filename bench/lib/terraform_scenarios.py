#!/usr/bin/env python3
"""Scenarios 6 (plugin start-up and `terraform providers schema -json` against a Go provider) and
7 (N resources sharing one ISO in one `terraform apply`), as a mixin of harness.Bench."""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

from common import (BUILD_COMMAND, COOKIE, SOURCE, ScenarioFailed, ScenarioSkipped, alternate,
                    checked, fmt_s, log, measure, med, peak_mib, spread)


class TerraformScenarios:
    def s6_plugin(self):
        if not self.go_provider or not os.path.exists(self.go_provider):
            raise ScenarioSkipped("no Go provider binary (BENCH_GO_PROVIDER; run.sh pip-downloads "
                                  "workato-terraform-provider)")
        d = self.fresh("s6")
        key, cert = os.path.join(d, "client.key"), os.path.join(d, "client.pem")
        # the kind of client certificate Terraform sends: ECDSA P-521, self-signed, CA:true
        checked(measure(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:secp521r1", "-nodes", "-keyout", key, "-out", cert,
                         "-days", "1", "-subj", "/CN=localhost", "-addext",
                         "basicConstraints=critical,CA:TRUE"]), "openssl req")
        with open(cert) as f:
            client_cert = f.read()
        env = self.base_env(TF_PLUGIN_MAGIC_COOKIE=COOKIE, PLUGIN_PROTOCOL_VERSIONS="5,6",
                            PLUGIN_MIN_PORT=10000, PLUGIN_MAX_PORT=25000,
                            PLUGIN_CLIENT_CERT=client_cert)
        results = {"ours": [], "go": []}
        n = 3 if self.smoke else 20
        for i in range(n):
            order = [("ours", self.bin), ("go", self.go_provider)]
            if i % 2:
                order.reverse()
            for name, exe in order:
                results[name].append(self._handshake(exe, env))
        o, g = results["ours"], results["go"]
        fo = statistics.median(x[0] for x in o)
        fg = statistics.median(x[0] for x in g)
        self.row("6a. plugin start-up to handshake line (AutoMTLS)", "%.1f ms" % (fo * 1000),
                 "%.1f ms" % (fg * 1000), self.ratio(fg, fo),
                 "%.1f / %.1f MiB" % (max(x[1] for x in o) / 1024, max(x[1] for x in g) / 1024),
                 "median of %d alternated launches each; reference: terraform-provider-workato "
                 "0.16.0 (Go, plugin framework, protocol 6; from PyPI workato-terraform-provider)" % n)
        self._schema(d)

    def _handshake(self, exe, env):
        """Launch to handshake line; the plugin runs under /usr/bin/time (for its peak RSS) and is
        SIGKILLed once the line is read."""
        with tempfile.NamedTemporaryFile(mode="r") as ft:
            start = time.perf_counter()
            p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", ft.name, exe], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            line = p.stdout.readline()
            t = time.perf_counter() - start
            try:
                with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                    kids = [int(x) for x in f.read().split()]
                for k in kids:
                    os.kill(k, signal.SIGKILL)
                p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            p.stdout.close()
            lines = ft.read().split()
        if not line.startswith(b"1|"):
            raise ScenarioFailed("%s printed no handshake line: %r" % (exe, line[:200]))
        return t, int(lines[-1]) if lines and lines[-1].isdigit() else 0

    def _tf_workdir(self, d, name, source, version, exe, wrap_rss=None):
        """A workdir whose only provider comes from a filesystem mirror holding exe (optionally a
        wrapper that records the provider's peak RSS through /usr/bin/time)."""
        wd = self.fresh("s6", name)
        ns_type = source.split("/")[1:]
        pkg = os.path.join(wd, "mirror", source, version, "linux_amd64")
        os.makedirs(pkg)
        target = os.path.join(pkg, "terraform-provider-%s_v%s" % (ns_type[1], version))
        if wrap_rss:
            with open(target, "w") as f:
                f.write("#!/bin/sh\nexec /usr/bin/time -f %%M -o %s %s \"$@\"\n" % (wrap_rss, exe))
            os.chmod(target, 0o755)
        else:
            shutil.copy(exe, target)
        rc = os.path.join(wd, "terraformrc")
        with open(rc, "w") as f:
            f.write('provider_installation {\n  filesystem_mirror {\n    path = "%s"\n'
                    '    include = ["%s"]\n  }\n}\n' % (os.path.join(wd, "mirror"), source))
        with open(os.path.join(wd, "main.tf.json"), "w") as f:
            json.dump({"terraform": {"required_providers": {
                ns_type[1]: {"source": source, "version": version}}}}, f)
        env = self.base_env(TF_CLI_CONFIG_FILE=rc, CHECKPOINT_DISABLE=1, TF_IN_AUTOMATION=1,
                            TF_INPUT=0)
        checked(measure([self.terraform, "init", "-input=false", "-no-color"], env=env, cwd=wd),
                "terraform init (%s)" % name)
        return wd, env

    def _schema(self, d):
        ours_wd, ours_env = self._tf_workdir(d, "ours", SOURCE, "0.1.0", self.bin)
        go_wd, go_env = self._tf_workdir(d, "go", "registry.terraform.io/local/workato", "0.16.0",
                                         self.go_provider)
        cmd = [self.terraform, "providers", "schema", "-json"]

        def check(key):
            def inner(r, i):
                if key not in json.loads(r.out).get("provider_schemas", {}):
                    raise ScenarioFailed("schema JSON lacks %s" % key)
            return inner

        runs = alternate([("ours: providers schema", lambda i: (cmd, ours_env, ours_wd), check(SOURCE)),
                          ("go: providers schema", lambda i: (cmd, go_env, go_wd),
                           check("registry.terraform.io/local/workato"))],
                         1 if self.smoke else 10)
        # provider-only peak RSS: the same command with the provider behind /usr/bin/time
        rss = {}
        for name, source, version, exe in (("ours", SOURCE, "0.1.0", self.bin),
                                           ("go", "registry.terraform.io/local/workato", "0.16.0",
                                            self.go_provider)):
            rss_file = self.path("s6", "%s.rss" % name)
            wd, env = self._tf_workdir(d, name + "-rss", source, version, exe, wrap_rss=rss_file)
            checked(measure(cmd, env=env, cwd=wd), "schema with RSS wrapper (%s)" % name)
            with open(rss_file) as f:
                rss[name] = int(f.read().split()[-1]) / 1024
        o, g = runs["ours: providers schema"], runs["go: providers schema"]
        self.row("6b. `terraform providers schema -json` (Terraform %s)" % self.tf_version(),
                 fmt_s(med(o)) + spread(o), fmt_s(med(g)) + spread(g), self.ratio(med(g), med(o)),
                 "provider %.1f / %.1f MiB" % (rss["ours"], rss["go"]),
                 "wall time of the whole Terraform command; RSS is the provider process alone "
                 "(peak, via /usr/bin/time around the plugin); Terraform itself peaks at "
                 "%.0f / %.0f MiB" % (peak_mib(o), peak_mib(g)))

    def tf_version(self):
        r = measure([self.terraform, "version"])
        m = re.search(r"Terraform v(\S+)", r.out)
        return m.group(1) if m else "?"

    # -- scenario 7: N resources sharing one ISO in one apply

    def s7_parallel(self):
        ns = [1, 4]
        results = {}
        for n in ns:
            results[n] = []
        iters = 1 if self.smoke else 2
        for i in range(iters):
            for n in (ns if i % 2 == 0 else list(reversed(ns))):
                results[n].append(self._apply_n(n, i))
        one = statistics.median(x[0] for x in results[1])
        four = statistics.median(x[0] for x in results[4])
        gets = max(x[1] for x in results[4])
        if gets != 1:
            self.failures.append("7: N=4 downloaded the ISO %d times (must be 1)" % gets)
        self.row("7. N=4 `hyops_vyos_image` sharing one ISO, `terraform apply -parallelism=4`",
                 "N=4: %s" % fmt_s(four), "N=1: %s" % fmt_s(one), "%.2f× N=1 time" % (four / one),
                 "%.0f / %.0f MiB" % (max(x[2] for x in results[4]), max(x[2] for x in results[1])),
                 "ISO downloads at the server for N=4: %d (must be 1); max_parallel_builds = 4; "
                 "peak RSS of the Terraform process tree" % gets)

    def _apply_n(self, n, i):
        d = self.fresh("s7", "n%d-%d" % (n, i))
        mirror = os.path.join(d, "mirror", SOURCE, "0.1.0", "linux_amd64")
        os.makedirs(mirror)
        shutil.copy(self.bin, os.path.join(mirror, "terraform-provider-hyops_v0.1.0"))
        rc = os.path.join(d, "terraformrc")
        with open(rc, "w") as f:
            f.write('provider_installation {\n  filesystem_mirror {\n    path = "%s"\n'
                    '    include = ["%s"]\n  }\n}\n' % (os.path.join(d, "mirror"), SOURCE))
        wd = os.path.join(d, "wd")
        os.makedirs(wd)
        cfg = {
            "terraform": {"required_providers": {"hyops": {"source": SOURCE, "version": "0.1.0"}}},
            "provider": {"hyops": {"cache_dir": os.path.join(d, "cache"), "max_parallel_builds": 4}},
            "resource": {"hyops_vyos_image": {"img": {
                "count": n,
                "artifact_key": "bench-n${count.index}",
                "artifact_version": "1.0-bench",
                "source_iso_url": self.url,
                "source_iso_sha256": self.sha,
                "build": {"method": "command", "command": BUILD_COMMAND, "disk_size_gb": 2},
            }}},
        }
        with open(os.path.join(wd, "main.tf.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        env = self.base_env(TF_CLI_CONFIG_FILE=rc, CHECKPOINT_DISABLE=1, TF_IN_AUTOMATION=1,
                            TF_INPUT=0)
        checked(measure([self.terraform, "init", "-input=false", "-no-color"], env=env, cwd=wd),
                "terraform init")
        self.files.post("/__reset")
        r = measure([self.terraform, "apply", "-auto-approve", "-input=false", "-no-color",
                     "-parallelism=4"], env=env, cwd=wd, timeout=1800)
        if r.rc != 0:
            text = r.out + r.err
            m = re.search(r"not implemented yet[^\n]*", text)
            if m:
                raise ScenarioSkipped("the provider's apply is not wired to the engine in this "
                                      "build (%s)" % m.group(0).strip())
            raise ScenarioFailed("terraform apply (N=%d) failed: %s" % (n, text[-1500:]))
        gets = self.served()["full_gets"]
        log("  N=%d run %d: %.2fs, %d ISO downloads" % (n, i + 1, r.wall, gets))
        shutil.rmtree(d, ignore_errors=True)
        return r.wall, gets, r.maxrss_kib / 1024

    # -- driver
