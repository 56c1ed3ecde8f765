#!/usr/bin/env python3
"""CPU cost of the medium simulator on a busy RS-485 bus.

    bench/upsim_load.py [--bindir build/bin] [--nodes 16] [--baud 115200]
                        [--time-scale 1] [--seconds 5]

Starts `upsim --personality rs485` with a gateway and --nodes endpoints
(docs/simulator.md), opens every pty as a program would (raw, the bit
rate, 8E1 with INPCK), and keeps the bus busy: the gateway sends a
255-byte frame, waits until every node has read it, pauses 2 ms (the
frame's silence) and sends the next, for --seconds of real time.  Prints
one JSON line: frames, bytes a node received per second (against the
line's limit, 255 bytes per 256 x 11 bits), and the CPU seconds upsim
used (utime + stime from /proc).  Only the process it starts is stopped.
"""

import argparse
import json
import os
import select
import subprocess
import sys
import termios
import time

SPEEDS = {9600: termios.B9600, 19200: termios.B19200, 38400: termios.B38400,
          57600: termios.B57600, 115200: termios.B115200}


def open_line(path, baud):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    a = termios.tcgetattr(fd)
    a[0] = termios.INPCK
    a[1] = 0
    a[2] = (termios.CS8 | termios.CREAD | termios.CLOCAL |
            termios.PARENB)
    a[3] = 0
    a[4] = a[5] = SPEEDS[baud]
    a[6][termios.VMIN] = 1
    a[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)
    return fd


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", default="build/bin")
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--baud", type=int, default=115200,
                    choices=sorted(SPEEDS))
    ap.add_argument("--time-scale", default="1")
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()

    sim = subprocess.Popen(
        [os.path.join(args.bindir, "upsim"), "--personality", "rs485",
         "--endpoints", str(args.nodes + 1), "--baud", str(args.baud),
         "--time-scale", args.time_scale], stdout=subprocess.PIPE,
        text=True)
    try:
        ptys = {}
        for line in sim.stdout:
            line = line.strip()
            if line == "ready":
                break
            if not line.startswith("upsim:"):
                name, path = line.split()
                ptys[name] = path
        fds = {name: open_line(path, args.baud)
               for name, path in ptys.items()}
        nodes = [fd for name, fd in fds.items() if name != "gw"]
        frame = bytes(range(255))
        sent = got = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            os.write(fds["gw"], frame)
            sent += 1
            while got < sent * len(frame) * len(nodes):
                ready, _, _ = select.select(nodes, [], [], 1.0)
                if not ready:
                    sys.exit("upsim_load: a frame did not arrive")
                for fd in ready:
                    try:
                        got += len(os.read(fd, 4096))
                    except BlockingIOError:
                        pass
            time.sleep(0.002)
        elapsed = time.monotonic() - t0
        with open(f"/proc/{sim.pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        limit = args.baud / 11 * 255 / 256 * float(args.time_scale)
        print(json.dumps({
            "nodes": args.nodes, "baud": args.baud,
            "time_scale": float(args.time_scale), "frames": sent,
            "seconds": round(elapsed, 3),
            "node_bytes_per_s": round(got / len(nodes) / elapsed),
            "line_limit_bytes_per_s": round(limit),
            "upsim_cpu_s": cpu,
            "upsim_cpu_pct": round(100 * cpu / elapsed, 1)}))
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
