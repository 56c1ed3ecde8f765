"""tphys.py: the physical limit of one fan-out on the race testbed.

research/multicast-delta.md section 0, for one package of S bytes sent in
blocks of B payload bytes with H bytes of UP header per block:

    T_wan = S * (MSS + 66) / MSS * 8 / W       one TCP download of the package
                                               (1448-byte segments in 1514-byte
                                               frames, what tbf on the WAN sees)
    T_lan = ceil(S/B) * (B + H + O) * 8 / L / (1 - p)
                                               one multicast pass, each node
                                               losing p of it (O = 42: UDP 8 +
                                               IPv4 20 + Ethernet 14 on a veth)
    cut-through floor      = max(T_wan, T_lan) + c * GRTT
    store-and-forward floor = T_wan + T_lan    + c * GRTT

c is about 3 round trips of setup and confirmation; the LAN round trip of a
veth bridge is well under a millisecond, so the term is a few ms.  The
node's flash write rate (S / W_node) is not a bound here: node "flash" is a
file on tmpfs.  The issue's own table quotes S*8/W and S*8/W + S*8/L
(payload only, no headers): those are reported too, as t_raw_*.
"""

import math

MSS = 1448          # TCP payload per segment (MTU 1500, IPv4 20, TCP 20+12)
FRAME = 1514        # that segment on the veth: + TCP/IP 52 + Ethernet 14
UP_H = 18           # UP_DATA_OVERHEAD, docs/up-protocol.md 4.5
LINK_O = 42         # UDP 8 + IPv4 20 + Ethernet 14
C_RTT = 3
GRTT_S = 0.001


def t_phys(size, wan_mbit, lan_mbit, loss_pct, block=1400, h=UP_H,
           o=LINK_O, c=C_RTT, grtt=GRTT_S):
    p = loss_pct / 100.0
    w = wan_mbit * 1e6
    lan = lan_mbit * 1e6
    t_wan = size * FRAME / MSS * 8 / w
    t_lan = math.ceil(size / block) * (block + h + o) * 8 / lan / (1 - p)
    return {
        "t_wan_s": round(t_wan, 3),
        "t_lan_s": round(t_lan, 3),
        "t_phys_s": round(max(t_wan, t_lan) + c * grtt, 3),
        "t_sf_s": round(t_wan + t_lan + c * grtt, 3),
        "t_raw_ct_s": round(max(size * 8 / w, size * 8 / lan), 3),
        "t_raw_sf_s": round(size * 8 / w + size * 8 / lan, 3),
    }


if __name__ == "__main__":
    # The research page's reference case: 300 MB, 50/100 Mbit, B 1400, H 24
    # -> T_lan 25.1 s, T_wan 50.2 s.
    print(t_phys(300e6, 50, 100, 0, h=24))
    print(t_phys(32 << 20, 50, 100, 1))
