#!/usr/bin/env python3
# imgedit.py IMAGE EDIT...: edit the records of a kup image in place, as a
# damaged or hostile image would be, and write it back with valid checksums
# (docs/image-format.md: a 16-byte header, then records {u32 length, u32
# crc32c, protobuf payload}).  Tests use it to make images that parse but
# lie: a process tree with a cycle, a limit no one may set...
#
# An EDIT applies to the first record and names fields by number, following
# submessages with '.':
#   1[2].2=5        field 1, its third occurrence; in it field 2 := 5
#   7{1=7}.3=100    the occurrence of field 7 whose field 1 is 7; its field 3
#   11=-500         a varint field (negative: two's complement, 64 bits)
#   1[3].9=s:/etc   a string field
#   1[0]<>1[1]      swap two occurrences of a repeated field
#   get:1[1].1      print a value instead
import re
import struct
import sys

POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(buf, pos):
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def enc_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode(buf):
    """A message as a list of [field, wiretype, value]."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = varint(buf, pos)
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = varint(buf, pos)
            v, pos = bytes(buf[pos:pos + n]), pos + n
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise SystemExit("imgedit: wire type %d" % wt)
        out.append([f, wt, v])
    return out


def encode(msg):
    out = bytearray()
    for f, wt, v in msg:
        out += enc_varint(f << 3 | wt)
        if wt == 0:
            out += enc_varint(v)
        elif wt == 2:
            out += enc_varint(len(v)) + v
        else:
            out += v
    return bytes(out)


STEP = re.compile(r'(\d+)(?:\[(\d+)\]|\{(\d+)=(-?\d+)\})?')


def pick(msg, step):
    """Index in msg of the occurrence a path step names."""
    m = STEP.fullmatch(step)
    if not m:
        raise SystemExit("imgedit: bad step " + step)
    f = int(m.group(1))
    occ = [i for i, e in enumerate(msg) if e[0] == f]
    if m.group(3):
        sub, want = int(m.group(3)), int(m.group(4))
        for i in occ:
            for e in decode(msg[i][2]):
                if e[0] == sub and e[1] == 0 and e[2] == want % (1 << 64):
                    return i, f
        raise SystemExit("imgedit: no %s" % step)
    k = int(m.group(2) or 0)
    return (occ[k] if k < len(occ) else None), f


def apply(msg, path, fn):
    """fn(msg, index, field) at the end of path; submessages re-encoded."""
    steps = path.split('.')
    i, f = pick(msg, steps[0])
    if len(steps) == 1:
        return fn(msg, i, f)
    sub = decode(msg[i][2])
    r = apply(sub, '.'.join(steps[1:]), fn)
    msg[i][2] = encode(sub)
    return r


def set_value(v):
    # s:TEXT sets a string (length-delimited) field
    wt, val = (2, v[2:].encode()) if v.startswith('s:') else (0, int(v))
    def fn(msg, i, f):
        if i is None:
            msg.append([f, wt, val])
        else:
            msg[i][1:] = [wt, val]
    return fn


def main():
    path = sys.argv[1]
    data = open(path, 'rb').read()
    hdr, pos, recs = data[:16], 16, []
    while pos < len(data):
        n, c = struct.unpack_from('<II', data, pos)
        recs.append(bytes(data[pos + 8:pos + 8 + n]))
        pos += 8 + n
    msg = decode(recs[0])
    for ed in sys.argv[2:]:
        if ed.startswith('get:'):
            print(apply(msg, ed[4:], lambda m, i, f: m[i][2]))
        elif '<>' in ed:
            a, b = ed.split('<>')
            ia, _ = pick(msg, a)
            ib, _ = pick(msg, b)
            msg[ia], msg[ib] = msg[ib], msg[ia]
        else:
            p, v = ed.split('=', 1) if '{' not in ed.split('=')[0] else ed.rsplit('=', 1)
            apply(msg, p, set_value(v))
    recs[0] = encode(msg)
    out = bytearray(hdr)
    for r in recs:
        out += struct.pack('<II', len(r), crc32c(r)) + r
    open(path, 'wb').write(out)


main()
