#!/usr/bin/env python3
"""plc_vectors.py: the worked 1376.2 frames of test_plc_codec.c and of
docs/transports/plc.md, built here from the layouts (Q/GDW 1376.2-2013
§4.3, §5.1-5.5, as docs/transports/plc.md lists them) by code that shares
nothing with transports/plc/, so the C codec is checked against an
independent reading of the standard, not against itself.

Usage: plc_vectors.py                    prints plc_vectors.h
       plc_vectors.py --check H [--doc D]   exits 1 unless the header H is
                                            what this prints and the doc D
                                            shows every vector's hex

Three more vectors in the test are real frames from public concentrator
code (docs/transports/plc.md, "Test vectors"), not generated here.
"""
import struct
import sys


def fn_dt(fn):
    return bytes([1 << ((fn - 1) % 8), (fn - 1) // 8])


def addr(text):
    """'123456789012' -> six BCD bytes, low first."""
    return bytes(int(text[i:i + 2], 16) for i in range(0, 12, 2))[::-1]


def info_down(seq, module=0, relay=0, reply_bytes=0, rate=0, route=0):
    return bytes([route | module << 2 | relay << 4, 0, reply_bytes]) + \
        struct.pack("<H", rate) + bytes([seq])


def info_up(seq, module=0, relay=0, phase=0, q_cmd=0, q_reply=0, event=0):
    return bytes([module << 2 | relay << 4, 0, phase, q_cmd | q_reply << 4,
                  event, seq])


def frame(c, info, afn, fn, data=b"", a1=None, a3=None):
    ud = info
    if a1 is not None:
        ud += addr(a1) + addr(a3)
    ud += bytes([afn]) + fn_dt(fn) + data
    body = bytes([c]) + ud
    total = len(body) + 5
    return bytes([0x68]) + struct.pack("<H", total) + body + \
        bytes([sum(body) & 0xff, 0x16])


MASTER = "000000000001"
STA = "201905000017"

# Control fields: concentrator request (DIR 0, PRM 1, HPLC 3) = 0x43,
# module answer (DIR 1, PRM 0) = 0x83, module report (DIR 1, PRM 1) =
# 0xC3.
DOWN, UP, REPORT = 0x43, 0x83, 0xC3

run_mode = bytes([
    0x12,        # comm 2 (HPLC), routing
    0x00, 0x01,  # no delay params; 1 channel
    0x01,        # one rate
    0x00, 0x00,
    30,          # monitor 30 s
]) + struct.pack("<HHH", 120, 1024, 1024) + bytes([10]) + addr(MASTER) + \
    struct.pack("<HH", 1015, 30) + bytes([0x01, 0x01, 0x13,   # published
                                          0x15, 0x06, 0x13]) + \
    b"HS" + b"CC" + bytes([0x20, 0x11, 0x24, 0x01, 0x02]) + \
    struct.pack("<H", 0x8000 | 100)

topo_up = struct.pack("<HHB", 3, 1, 3) + \
    addr(MASTER) + struct.pack("<HH", 1, 0) + bytes([0x40]) + \
    addr("201905000001") + struct.pack("<HH", 2, 1) + bytes([0x21]) + \
    addr(STA) + struct.pack("<HH", 3, 2) + bytes([0x12])

node_up = struct.pack("<HB", 2, 2) + \
    addr("201905000001") + struct.pack("<H", 0x0000 | 0x5 << 4 | 1 << 8) + \
    addr(STA) + struct.pack("<H", 0x01 | 0x5 << 4 | 1 << 8)

relay_up = bytes([1]) + addr("201905000001") + \
    struct.pack("<H", 0x00 | 0x5 << 4 | 1 << 8)

route_up = bytes([0x03]) + struct.pack("<HHH", 30, 0, 0) + bytes([0x80]) + \
    struct.pack("<H", 0) + bytes([2, 2, 2, 8, 8, 8])

up_frame = bytes.fromhex("5550010203")  # any bytes: UP is opaque here

seg_data = bytes(range(16))
segment = bytes([0x08, 0x00, 0x00]) + struct.pack("<HIH", 3, 1, 16) + seg_data

upg_up = struct.pack("<HHBIB", 2, 1, 0x08, 40000, 2) + \
    addr("201905000001") + bytes([2]) + struct.pack("<II", 40000, 40000) + \
    addr(STA) + bytes([1]) + struct.pack("<II", 8192, 12288)

VECTORS = [
    ("run_mode_query", frame(DOWN, info_down(1), 0x03, 10)),
    ("run_mode_answer", frame(UP, info_up(1), 0x03, 10, run_mode)),
    ("run_mode_report", frame(REPORT, info_up(9), 0x03, 10, run_mode)),
    ("confirm", frame(UP, info_up(2), 0x00, 1,
                      struct.pack("<IH", 0xFFFFFFFF, 0))),
    ("confirm_wait", frame(UP, info_up(2), 0x00, 1,
                           struct.pack("<IH", 0x00000001, 3))),
    ("deny", frame(UP, info_up(3), 0x00, 2, bytes([11]))),
    ("topology_query", frame(DOWN, info_down(4), 0x10, 21,
                             struct.pack("<HB", 1, 32))),
    ("topology_answer", frame(UP, info_up(4), 0x10, 21, topo_up)),
    ("node_query", frame(DOWN, info_down(5), 0x10, 2,
                         struct.pack("<HB", 1, 32))),
    ("node_answer", frame(UP, info_up(5), 0x10, 2, node_up)),
    ("relay_query", frame(DOWN, info_down(6), 0x10, 3, addr(STA))),
    ("relay_answer", frame(UP, info_up(6), 0x10, 3, relay_up)),
    ("route_state_answer", frame(UP, info_up(7), 0x10, 4, route_up)),
    ("monitor", frame(DOWN, info_down(8, module=1), 0x13, 1,
                      bytes([0, 0, 0, len(up_frame)]) + up_frame,
                      MASTER, STA)),
    ("monitor_answer", frame(UP, info_up(8, module=1, q_cmd=5, q_reply=6),
                             0x13, 1, struct.pack("<HBB", 1, 0,
                                                  len(up_frame)) + up_frame,
                             STA, MASTER)),
    ("broadcast", frame(DOWN, info_down(10), 0x05, 3,
                        bytes([0, len(up_frame)]) + up_frame)),
    ("event", frame(REPORT, info_up(0x80, module=1), 0x06, 5,
                    bytes([1, 0, len(up_frame)]) + up_frame, STA, MASTER)),
    ("event_confirm", frame(0x03, info_down(0x80, module=1), 0x00, 1,
                            struct.pack("<IH", 1, 0), MASTER, STA)),
    ("segment", frame(DOWN, info_down(11), 0x15, 1, segment)),
    ("segment_ack", frame(UP, info_up(11), 0x15, 1, struct.pack("<I", 1))),
    ("segment_error", frame(UP, info_up(11), 0x15, 1,
                            struct.pack("<I", 0xFFFF))),
    ("upg_query", frame(DOWN, info_down(12), 0xF0, 201,
                        struct.pack("<HB", 1, 16))),
    ("upg_answer", frame(UP, info_up(12), 0xF0, 201, upg_up)),
]


def header():
    out = ["/* plc_vectors.h: generated by plc_vectors.py; do not edit. */"]
    for name, v in VECTORS:
        out.append(f"static const uint8_t v_{name}[] = {{")
        for i in range(0, len(v), 10):
            row = ", ".join(f"0x{b:02x}" for b in v[i:i + 10])
            out.append(f"\t{row}{',' if i + 10 < len(v) else ''}")
        out.append("};")
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    if not args:
        sys.stdout.write(header())
        return 0
    bad = 0
    if args[0] == "--check":
        with open(args[1]) as f:
            if f.read() != header():
                print(f"{args[1]}: not what plc_vectors.py generates")
                bad = 1
        args = args[2:]
    if args and args[0] == "--doc":
        with open(args[1]) as f:
            doc = " ".join(f.read().split()).lower()
        for name, v in VECTORS:
            if v.hex(" ") not in doc:
                print(f"{args[1]}: vector {name} ({v.hex(' ')}) missing")
                bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
