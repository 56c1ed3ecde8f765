#!/usr/bin/env python3
"""The examples a user copies from the docs work as written.

- docs/campaigns.md, "Example manifest": the spec is extracted, its
  images and the two old images the deltas start from are made, the
  deltas are made with the real xdelta3 and the flags the docs give, and
  the real `upmanifest build' must publish it (its policy goes through
  the gateway's parser) and `upmanifest verify' accept it.
- docs/campaigns.md, "Policy": every member the policy parser knows
  (scheduler/sched_policy.c) is documented there.
- docs/manifest.md, "Worked example": the shell block runs as written
  (with its /srv/cloud in a temporary directory).
"""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testbed import Fail, main_wrapper  # noqa: E402


def section(text, title):
    """The text of the markdown section `title' (up to the next heading
    of the same or a higher level)."""
    m = re.search(r"^(#+) %s\s*$" % re.escape(title), text, re.M)
    if m is None:
        raise Fail("no section %r" % title)
    level = len(m.group(1))
    out, fenced = [], False
    for line in text[m.end():].split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,%d} " % level, line):
            break
        out.append(line)
    return "\n".join(out)


def block(text, lang):
    m = re.search(r"^```%s\n(.*?)^```\s*$" % lang, text, re.M | re.S)
    if m is None:
        raise Fail("no ```%s block" % lang)
    return m.group(1)


def image(comp, version):
    """A deterministic image per (component, version), each version a
    small change of the one before, as firmware is."""
    rnd = random.Random("%s-base" % comp)
    b = bytearray(rnd.randbytes(96 * 1024))
    r = random.Random("%s-%s" % (comp, version))
    for _ in range(30):
        i = r.randrange(len(b))
        b[i] ^= 1 + r.randrange(255)
    b += r.randbytes(2000)
    return bytes(b)


def campaigns_example(bindir, srcdir, tmp):
    with open(os.path.join(srcdir, "docs", "campaigns.md")) as f:
        doc = f.read()
    spec = json.loads(block(section(doc, "Example manifest"), "json"))
    tool = os.path.join(bindir, "upmanifest")
    www = os.path.join(tmp, "www")
    work = os.path.join(tmp, "spec")
    os.makedirs(www)
    os.makedirs(work)
    for p in spec["packages"]:
        dst = os.path.join(www, p["url"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        new = image(p["component"], p["version"])
        if p["kind"] == "full":
            with open(dst, "wb") as f:
                f.write(new)
            continue
        if "base_file" not in p:
            raise Fail("docs/campaigns.md example: delta %s names no "
                       "base_file: upmanifest cannot prove it" % p["id"])
        old = os.path.join(work, p["base_file"])
        os.makedirs(os.path.dirname(old), exist_ok=True)
        with open(old, "wb") as f:
            f.write(image(p["component"], p["base_version"]))
        newf = os.path.join(tmp, "new.bin")
        with open(newf, "wb") as f:
            f.write(new)
        # The flags docs/manifest.md gives.
        subprocess.run(["xdelta3", "-e", "-9", "-S", "none", "-A", "-n",
                        "-f", "-s", old, newf, dst], check=True)
    path = os.path.join(work, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    key, pub = os.path.join(tmp, "k.pem"), os.path.join(tmp, "p.pem")
    subprocess.run([tool, "genkey", key, pub], check=True)
    r = subprocess.run([tool, "build", "-k", key, "-s", path, "-r", www],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail("docs/campaigns.md example: upmanifest build: %s"
                   % r.stderr)
    r = subprocess.run([tool, "verify", "-p", pub, "-r", www],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail("docs/campaigns.md example: verify: %s" % r.stderr)
    print("docs/campaigns.md example: %s" % r.stdout.strip(), flush=True)


def policy_documented(srcdir):
    with open(os.path.join(srcdir, "scheduler", "sched_policy.c")) as f:
        src = f.read()
    with open(os.path.join(srcdir, "docs", "campaigns.md")) as f:
        doc = section(f.read(), "Policy")
    names = set()
    for m in re.finditer(r"known\[\] = \{(.*?)NULL", src, re.S):
        names.update(re.findall(r'"([a-z_]+)"', m.group(1)))
    if len(names) < 30:
        raise Fail("found only %d policy members in sched_policy.c"
                   % len(names))
    missing = sorted(n for n in names
                     if not re.search(r"`([a-z_]+\.)*%s[`.]" % n, doc))
    if missing:
        raise Fail("policy members not documented in docs/campaigns.md, "
                   "Policy: %s" % ", ".join(missing))
    print("docs/campaigns.md documents all %d policy members"
          % len(names), flush=True)


def manifest_example(bindir, srcdir, tmp):
    with open(os.path.join(srcdir, "docs", "manifest.md")) as f:
        doc = f.read()
    sh = block(section(doc, "Worked example"), "sh")
    root = os.path.join(tmp, "srv-cloud")
    sh = sh.replace("/srv/cloud", root)
    os.makedirs(os.path.join(tmp, "old"))
    os.makedirs(os.path.join(tmp, "build"))
    with open(os.path.join(tmp, "old", "app-1.0.0.bin"), "wb") as f:
        f.write(image("app", "1.0.0"))
    with open(os.path.join(tmp, "build", "app-1.1.0.bin"), "wb") as f:
        f.write(image("app", "1.1.0"))
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    r = subprocess.run(["sh", "-e", "-c", sh], cwd=tmp, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0 or ": ok" not in r.stdout:
        raise Fail("docs/manifest.md worked example: exit %d\n%s%s"
                   % (r.returncode, r.stdout, r.stderr))
    print("docs/manifest.md worked example: %s" % r.stdout.strip(),
          flush=True)


def scenario(bindir, srcdir):
    if shutil.which("xdelta3") is None:
        raise Fail("xdelta3 is not installed (scripts/setup installs it)")
    bindir = os.path.abspath(bindir)
    srcdir = os.path.abspath(srcdir)
    tmp = tempfile.mkdtemp(prefix="upbridge-docs-")
    try:
        campaigns_example(bindir, srcdir, os.path.join(tmp, "a"))
        policy_documented(srcdir)
        os.makedirs(os.path.join(tmp, "b"))
        manifest_example(bindir, srcdir, os.path.join(tmp, "b"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main_wrapper(scenario)
