#!/usr/bin/env python3
"""Interoperability: a third-party Modbus client from Debian (mbpoll)
reads a node stub's identity and status registers
(docs/transports/modbus.md), over Modbus RTU on upsim's rs485 bus with
two nodes on it, and over Modbus TCP; and gets exception 2 for a register
outside the map.

usage: test_modbus_interop.py BINDIR SRCDIR
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
procs = []


def start(args, log):
    p = subprocess.Popen(args, stdout=subprocess.PIPE,
                         stderr=open(log, "w"), text=True)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def mbpoll(args):
    """Runs one mbpoll read (-1: once); returns its output."""
    r = subprocess.run(["mbpoll", "-1", "-0"] + args, capture_output=True,
                       text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def regs(out):
    """mbpoll's '[n]: value' lines as a dict."""
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"^\[(\d+)\]:\s+(-?\d+)", out, re.M)}


def text(rs, start, n):
    b = b"".join(((rs[start + i] & 0xffff) >> 8).to_bytes(1, "big") +
                 (rs[start + i] & 0xff).to_bytes(1, "big")
                 for i in range(n))
    return b.split(b"\0", 1)[0].decode()


def check_identity(rs, node_id, base=0):
    assert rs[base + 0] == 0x5550, rs          # "UP"
    assert rs[base + 1] == 1, rs               # map version
    nid = 0
    for i in range(4):
        nid = nid << 16 | (rs[base + 2 + i] & 0xffff)
    assert nid == node_id, (nid, node_id)
    assert rs[base + 6] == 246, rs             # FRAME takes 246 bytes
    assert rs[base + 9] == 1, rs               # one component


def main():
    if shutil.which("mbpoll") is None:
        print("mbpoll missing (scripts/setup installs it)")
        return 1
    tmp = tempfile.mkdtemp(prefix="mb_interop.")
    try:
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519",
                        "-out", f"{tmp}/key.pem"], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", f"{tmp}/key.pem",
                        "-pubout", "-out", f"{tmp}/pub.pem"], check=True)
        sim = start([f"{BIN}/upsim", "--personality", "rs485",
                     "--endpoints", "3", "--baud", "19200", "--format",
                     "8E1", "--link-dir", f"{tmp}/bus"], f"{tmp}/upsim.log")
        for line in sim.stdout:
            if line.strip() == "ready":
                break
        rtu_nodes = []
        for i in (1, 2):
            rtu_nodes.append(start(
                [f"{BIN}/upnode", "--id", str(0x1000 + i), "--hw",
                 "meter-x", "--component", f"fw=1.{i}", "--state-dir",
                 f"{tmp}/n{i}", "--pubkey", f"{tmp}/pub.pem",
                 "--slot-size", "64K", "--transport", "modbus-rtu",
                 "--link-opt", f"device={tmp}/bus/n{i}",
                 "--link-opt", f"unit={i + 4}"], f"{tmp}/n{i}.log"))
        # Each node serves its line once it logs it (an ASan build on a
        # loaded host takes a while to get there: no fixed pause).
        for i, p in zip((1, 2), rtu_nodes):
            wait_log(p, f"{tmp}/n{i}.log", "modbus-rtu unit")
        # A port nobody holds may be taken before upnode binds it: then
        # upnode exits and another port is tried.
        for attempt in range(5):
            port = free_port()
            tcp = start([f"{BIN}/upnode", "--id", "0x2001", "--hw",
                         "plc-y", "--component", "app=3.0", "--state-dir",
                         f"{tmp}/t1", "--pubkey", f"{tmp}/pub.pem",
                         "--slot-size", "64K", "--transport", "modbus-tcp",
                         "--link-opt", f"listen=127.0.0.1:{port}"],
                        f"{tmp}/t1.log")
            if wait_log(tcp, f"{tmp}/t1.log", "modbus-tcp server on",
                        retry_exit=True):
                break
        else:
            raise AssertionError("upnode could not listen on a free port")

        rtu = ["-m", "rtu", "-b", "19200", "-P", "even", "-o", "1"]
        # Identity header of both nodes on the bus: input registers.
        for i in (1, 2):
            rc, out = mbpoll(rtu + ["-a", str(i + 4), "-t", "3", "-r", "0",
                                    "-c", "10", f"{tmp}/bus/gw"])
            assert rc == 0, out
            check_identity(regs(out), 0x1000 + i)
        # The model and the component's name and version.
        rc, out = mbpoll(rtu + ["-a", "6", "-t", "3", "-r", "16", "-c",
                                "48", f"{tmp}/bus/gw"])
        assert rc == 0, out
        rs = regs(out)
        assert text(rs, 16, 16) == "meter-x", out
        assert text(rs, 32, 16) == "fw", out
        assert text(rs, 48, 16) == "1.2", out
        # The status block: idle, no session.
        rc, out = mbpoll(rtu + ["-a", "5", "-t", "3", "-r", "512", "-c",
                                "16", f"{tmp}/bus/gw"])
        assert rc == 0, out
        assert regs(out)[512] == 0, out
        # A holding register outside the map: exception 2.
        rc, out = mbpoll(rtu + ["-a", "5", "-t", "4", "-r", "2048", "-c",
                                "2", f"{tmp}/bus/gw"])
        assert rc != 0 and "Illegal data address" in out, out
        # The same bus still serves after it.
        rc, out = mbpoll(rtu + ["-a", "5", "-t", "3", "-r", "0", "-c",
                                "10", f"{tmp}/bus/gw"])
        assert rc == 0, out

        # Modbus TCP.
        rc, out = mbpoll(["-m", "tcp", "-p", str(port), "-a", "1", "-t",
                          "3", "-r", "0", "-c", "10", "127.0.0.1"])
        assert rc == 0, out
        check_identity(regs(out), 0x2001)
        print("modbus interop: mbpoll read 3 nodes' identity over RTU "
              "and TCP")
        return 0
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def wait_log(p, log, text, timeout=30, retry_exit=False):
    """Waits, bounded, for upnode p to log text; False if it exited
    first and retry_exit (else that is a failure)."""
    end = time.time() + timeout
    while time.time() < end:
        with open(log) as f:
            if text in f.read():
                return True
        if p.poll() is not None:
            if retry_exit:
                return False
            with open(log) as f:
                raise AssertionError(f"upnode exited {p.returncode}: "
                                     f"{f.read()}")
        time.sleep(0.05)
    with open(log) as f:
        raise AssertionError(f"upnode did not log {text!r} in {timeout} "
                             f"s: {f.read()}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


if __name__ == "__main__":
    sys.exit(main())
