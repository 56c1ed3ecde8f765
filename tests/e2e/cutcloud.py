#!/usr/bin/env python3
"""cutcloud.py: a real HTTPS cloud that misbehaves on purpose.

A small threaded http.server over TLS (the certificate and key that
tests/e2e/cloud.sh made) serving DIR at https://127.0.0.1:PORT/cloud/,
honouring single byte ranges (RFC 9110 §14.2: 206 with Content-Range)
and storing PUTs (report batches) under DIR.  GETs of files whose name
ends in MATCH follow a script, one step per request, the last step
repeating:

  full      answer normally
  cut:N     send the headers (with the full Content-Length) and N bytes
            of the body, then close the connection: a backhaul that drops
            long transfers
  trickle:N like cut:N, but the N bytes take 2.5 s (ten pieces)
  drop      close the connection without answering
  stall     send the headers and nothing more until the client goes away

Every request is logged to LOG when it ends (a stall when it starts), one
line each:

  T_START T_END METHOD URI STATUS BODY_BYTES_SENT RANGE STEP

T_START is time.monotonic() (CLOCK_MONOTONIC, the clock the tests read)
when the request line arrived, T_END when the answer ended, in seconds; RANGE is the Range header or
"-".  It runs until killed (SIGTERM); only loopback is used.

usage: cutcloud.py --root DIR --port PORT --cert PEM --key PEM --log LOG
                   [--match SUFFIX] [--script STEP[,STEP...]]
"""

import argparse
import http.server
import os
import re
import socket
import ssl
import sys
import threading
import time

PREFIX = "/cloud/"


class Cloud(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, args):
        super().__init__(addr, Handler)
        self.args = args
        self.script = args.script.split(",")
        self.nreq = 0
        self.lock = threading.Lock()
        self.logf = open(args.log, "a", buffering=1)

    def next_step(self):
        with self.lock:
            i = min(self.nreq, len(self.script) - 1)
            self.nreq += 1
            return self.script[i]

    def log_line(self, line):
        with self.lock:
            self.logf.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cutcloud"

    def log_message(self, fmt, *args):
        pass

    def parse_request(self):
        # The request line has just been read.
        self.t0 = time.monotonic()
        return super().parse_request()

    def finish_log(self, status, sent, step="-"):
        self.server.log_line("%.3f %.3f %s %s %d %d %s %s" % (
            self.t0, time.monotonic(), self.command, self.path, status, sent,
            self.headers.get("Range", "-").replace(" ", ""), step))

    def local_path(self):
        if not self.path.startswith(PREFIX):
            return None
        rel = self.path[len(PREFIX):].split("?", 1)[0]
        if rel == "" or ".." in rel.split("/"):
            return None
        return os.path.join(self.server.args.root, rel)

    def hangup(self):
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_plain(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.finish_log(code, len(body))

    def do_GET(self):
        path = self.local_path()
        if path is None or not os.path.isfile(path):
            self.send_plain(404, "not found\n")
            return
        size = os.path.getsize(path)
        first, last, code = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng is not None:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m is None:
                self.send_plain(400, "bad range\n")
                return
            first = int(m.group(1))
            if m.group(2) != "":
                last = min(int(m.group(2)), size - 1)
            if first >= size or last < first:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.finish_log(416, 0)
                return
            code = 206
        step = "full"
        if path.endswith(self.server.args.match):
            step = self.server.next_step()
        if step == "drop":
            self.finish_log(0, 0, step)
            self.hangup()
            return
        n = last - first + 1
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d"
                             % (first, last, size))
        self.end_headers()
        if step == "stall":
            self.wfile.flush()
            # Logged now: nothing more will be sent.
            self.finish_log(code, 0, step)
            # Hold until the client closes (its read returns EOF).
            try:
                self.connection.settimeout(600)
                while self.connection.recv(1):
                    pass
            except OSError:
                pass
            self.close_connection = True
            return
        limit, piece, pause = n, 65536, 0.0
        if step.startswith("cut:"):
            limit = min(n, int(step[4:]))
        elif step.startswith("trickle:"):
            limit = min(n, int(step[8:]))
            piece, pause = max(1, (limit + 9) // 10), 0.25
        sent = 0
        with open(path, "rb") as f:
            f.seek(first)
            while sent < limit:
                buf = f.read(min(piece, limit - sent))
                if not buf:
                    break
                try:
                    self.wfile.write(buf)
                    if pause:
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    break
                sent += len(buf)
        self.finish_log(code, sent, step)
        if sent < n:
            self.hangup()

    def do_PUT(self):
        path = self.local_path()
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if path is None:
            self.send_plain(403, "forbidden\n")
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.finish_log(201, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--match", default=".bin")
    ap.add_argument("--script", default="full")
    args = ap.parse_args()
    for step in args.script.split(","):
        if not (step in ("full", "drop", "stall") or
                re.fullmatch(r"(cut|trickle):\d+", step)):
            ap.error("bad script step %r" % step)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = Cloud(("127.0.0.1", args.port), args)
    # The handshake runs in each request's thread, not in accept().
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                 do_handshake_on_connect=False)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
