#!/usr/bin/env python3
# mkparts.py OUT PREFIX:ROOT[:UNIT]...: write a parts.img container (kind
# 11, docs/ppp-format.md) listing these parts, for tests of its validation.
import struct, sys

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff

def varint(v):
    out = b''
    while True:
        b = v & 0x7f
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out

def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data

payload = b''
for spec in sys.argv[2:]:
    f = spec.split(':')
    part = field(1, f[0].encode()) + varint(2 << 3) + varint(int(f[1]))
    if len(f) > 2:
        part += field(3, f[2].encode())
    payload += field(1, part)
with open(sys.argv[1], 'wb') as out:
    out.write(b'KUPIMG\0\0' + struct.pack('<II', 2, 11))
    out.write(struct.pack('<II', len(payload), crc32c(payload)) + payload)
