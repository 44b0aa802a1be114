#!/usr/bin/env python3
"""What an igb PF's switch holds for one pool (a VF): the MACs of the valid
receive-address entries (RAR) and the VLAN IDs of the VLAN filters (VLVF)
that deliver to it, read from the PF's BAR0 through sysfs resource0, as
JSON. The layout is rust/common/src/bits.rs's (IgbRar, IgbVlvf).

Usage: pf_pools.py PF_BDF POOL
"""
import json
import mmap
import struct
import sys

RAR_COUNT, VLVF_BASE, VLVF_COUNT = 24, 0x5D00, 32


def rar_offset(n):
    return 0x5400 + 8 * n if n < 16 else 0x54E0 + 8 * (n - 16)


def main():
    pf, pool = sys.argv[1], int(sys.argv[2])
    with open(f"/sys/bus/pci/devices/{pf}/resource0", "rb") as f:
        bar = mmap.mmap(f.fileno(), 0x6000, mmap.MAP_SHARED, mmap.PROT_READ)

    def reg(off):
        # One aligned 32-bit load: a memoryview cast reads it whole.
        return memoryview(bar)[off:off + 4].cast("I")[0]

    macs = []
    for n in range(RAR_COUNT):
        low, high = reg(rar_offset(n)), reg(rar_offset(n) + 4)
        if high & (1 << 31) and high & (1 << (18 + pool)):
            macs.append(":".join(f"{b:02x}" for b in struct.pack("<IH", low, high & 0xFFFF)))
    vlans = []
    for i in range(VLVF_COUNT):
        v = reg(VLVF_BASE + 4 * i)
        if v & (1 << 31) and v & (1 << (12 + pool)):
            vlans.append(v & 0xFFF)
    print(json.dumps({"macs": macs, "vlans": vlans}))


if __name__ == "__main__":
    main()
