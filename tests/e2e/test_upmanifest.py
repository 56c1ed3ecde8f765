#!/usr/bin/env python3
"""upmanifest build refuses what every node or gateway would refuse.

Issue 7: `upmanifest build' accepted a policy typo (`window' for
`windows'), a delta made with xdelta3's default secondary compression
and a delta whose base is not `base_version'; every node then refused
them.  Here the real upmanifest and the real xdelta3 (Debian's package)
make specs that must be refused, each with a message naming the item,
and nothing is published: manifest.json stays as it was.  Good deltas
(base given as base_file, or found as the full package of base_version
in the spec) are applied with the nodes' decoder and published, and
image_size/image_sha256 come out of that when the spec does not give
them.
"""

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Fail, main_wrapper  # noqa: E402


def firmware(n, seed):
    return random.Random(seed).randbytes(n)


def changed(old, seed):
    rnd = random.Random(seed)
    b = bytearray(old)
    for _ in range(40):
        i = rnd.randrange(len(b))
        b[i] ^= 1 + rnd.randrange(255)
    b[len(b) // 2:len(b) // 2] = firmware(3000, seed + 1)
    return bytes(b)


class Pub:
    def __init__(self, bindir):
        self.tool = os.path.join(os.path.abspath(bindir), "upmanifest")
        self.tmp = tempfile.mkdtemp(prefix="upbridge-upmanifest-")
        self.www = os.path.join(self.tmp, "www")
        self.work = os.path.join(self.tmp, "work")
        os.makedirs(os.path.join(self.www, "packages"))
        os.makedirs(self.work)
        self.key = os.path.join(self.tmp, "k.pem")
        self.pub = os.path.join(self.tmp, "p.pem")
        self.serial = 0
        subprocess.run([self.tool, "genkey", self.key, self.pub],
                       check=True)

    def write(self, rel, data):
        path = os.path.join(self.www, rel) if rel.startswith("packages/") \
            else os.path.join(self.work, rel)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def xdelta(self, old, new, out, *flags):
        subprocess.run(["xdelta3", "-e", "-f"] + list(flags) +
                       ["-s", old, new, os.path.join(self.www, out)],
                       check=True, capture_output=True)

    def manifest(self):
        try:
            with open(os.path.join(self.www, "manifest.json"), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def build(self, packages, deployments=()):
        self.serial += 1
        spec = {"serial": self.serial, "packages": packages,
                "deployments": list(deployments)}
        path = os.path.join(self.work, "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        return subprocess.run([self.tool, "build", "-k", self.key, "-s",
                               path, "-r", self.www],
                              capture_output=True, text=True)

    def refused(self, what, want, packages, deployments=()):
        before = self.manifest()
        r = self.build(packages, deployments)
        if r.returncode != 1:
            raise Fail("%s: upmanifest exited %d, not 1 (stderr %r)"
                       % (what, r.returncode, r.stderr))
        if want not in r.stderr:
            raise Fail("%s: %r does not say %r" % (what, r.stderr, want))
        if self.manifest() != before:
            raise Fail("%s: manifest.json changed though refused" % what)
        print("refused %-28s %s" % (what + ":", r.stderr.strip()),
              flush=True)

    def accepted(self, what, packages, deployments=()):
        r = self.build(packages, deployments)
        if r.returncode != 0:
            raise Fail("%s: refused: %s" % (what, r.stderr))
        v = subprocess.run([self.tool, "verify", "-p", self.pub, "-r",
                            self.www], capture_output=True, text=True)
        if v.returncode != 0:
            raise Fail("%s: verify: %s" % (what, v.stderr))
        print("accepted %s" % what, flush=True)
        return json.loads(self.manifest())


def scenario(bindir, srcdir):
    if shutil.which("xdelta3") is None:
        raise Fail("xdelta3 is not installed (scripts/setup installs it)")
    p = Pub(bindir)
    try:
        v09 = firmware(200 * 1024 + 3, 1)
        v10 = changed(v09, 2)
        v11 = changed(v10, 3)
        f09 = p.write("app-0.9.0.bin", v09)
        f10 = p.write("app-1.0.0.bin", v10)
        f11 = p.write("app-1.1.0.bin", v11)
        p.write("packages/app-1.0.0.bin", v10)
        p.write("packages/app-1.1.0.bin", v11)
        good = "packages/d-good.vcdiff"
        p.xdelta(f10, f11, good, "-9", "-S", "none", "-A", "-n")
        # xdelta3's defaults: secondary compression, app header, checksum.
        p.xdelta(f10, f11, "packages/d-default.vcdiff")
        # From 0.9.0, published as if from 1.0.0: with and without the
        # window checksum.
        p.xdelta(f09, f11, "packages/d-base-n.vcdiff",
                 "-9", "-S", "none", "-A", "-n")
        p.xdelta(f09, f11, "packages/d-base-ck.vcdiff",
                 "-9", "-S", "none", "-A")

        full = lambda v, u: {"id": "app-" + v, "component": "app",
                             "version": v, "hw": ["s1"], "kind": "full",
                             "url": u}

        def delta(url, **extra):
            d = {"id": "app-1.0.0-1.1.0", "component": "app",
                 "version": "1.1.0", "hw": ["s1"], "kind": "delta",
                 "delta_format": "vcdiff", "base_version": "1.0.0",
                 "url": url}
            d.update(extra)
            return d

        dep = lambda policy: {"id": "d1", "packages": ["app-1.1.0"],
                              "policy": policy}
        pk11 = full("1.1.0", "packages/app-1.1.0.bin")

        # Something published first, to see it stay.
        p.accepted("a plain full package", [pk11], [dep({})])
        sha11 = hashlib.sha256(v11).hexdigest()

        # Policies: the gateway's own parser and name checks.
        p.refused("policy typo", "d1': policy: unknown member 'window'",
                  [pk11], [dep({"window": "01:00-05:00"})])
        p.refused("window with a leading space",
                  "policy.windows[1]: ' 00:00-03:00': leading space",
                  [pk11], [dep({"windows": ["00:00-04:00",
                                            " 00:00-03:00"]})])
        p.refused("order of an unknown component",
                  "policy.order[1]: 'modme': no package of the "
                  "deployment is that component",
                  [pk11], [dep({"order": ["app", "modme"]})])
        p.refused("target hw no package is for",
                  "policy.target hw 's2': no package of the deployment "
                  "is for it", [pk11], [dep({"target": {"hw": ["s2"]}})])
        p.refused("range that matches nothing",
                  "'>=2 <1': matches no version", [pk11],
                  [dep({"target": {"components": {"app": ">=2 <1"}}})])

        # Deltas: proven with the nodes' decoder.
        p.refused("xdelta3 default flags",
                  "nodes cannot apply this delta: secondary compression",
                  [pk11, delta("packages/d-default.vcdiff",
                               base_file="app-1.0.0.bin")])
        p.refused("xdelta3 defaults, no base",
                  "secondary compression",
                  [pk11, delta("packages/d-default.vcdiff")])
        p.refused("delta from another base",
                  "a delta made from another base than 1.0.0",
                  [pk11, delta("packages/d-base-n.vcdiff",
                               base_file="app-1.0.0.bin",
                               image_file="app-1.1.0.bin")])
        p.refused("another base, with checksums",
                  "does not apply to the 1.0.0 image",
                  [pk11, delta("packages/d-base-ck.vcdiff",
                               base_file="app-1.0.0.bin")])
        p.refused("delta, no base at hand",
                  "no 1.0.0 image to prove the delta applies",
                  [pk11, delta(good, image_file="app-1.1.0.bin")])
        p.refused("image_sha256 that is not the result",
                  "not the image",
                  [pk11, delta(good, base_file="app-1.0.0.bin",
                               image_size=len(v11),
                               image_sha256="00" * 32)])
        p.refused("not a delta at all", "not VCDIFF (bad magic)",
                  [pk11, delta("packages/app-1.0.0.bin",
                               base_file="app-1.0.0.bin")])

        # Good deltas.
        m = p.accepted("delta with base_file and image_file",
                       [pk11, delta(good, base_file="app-1.0.0.bin",
                                    image_file="app-1.1.0.bin")])
        m = p.accepted("delta, base = the spec's full 1.0.0, image "
                       "derived",
                       [pk11, full("1.0.0", "packages/app-1.0.0.bin"),
                        delta(good)])
        d = [x for x in m["packages"] if x["kind"] == "delta"][0]
        if d["image_sha256"] != sha11 or d["image_size"] != len(v11):
            raise Fail("derived image %s/%d, want %s/%d"
                       % (d["image_sha256"], d["image_size"], sha11,
                          len(v11)))
    finally:
        shutil.rmtree(p.tmp, ignore_errors=True)


if __name__ == "__main__":
    main_wrapper(scenario)
