#!/usr/bin/env python3
# mkcorpus.py DUMPDIR NAME: seeds for the image fuzz targets from a real
# checkpoint directory (tests/fuzz/mkcorpus.sh makes some):
#   corpus/imageset/NAME     every image as one blob set (image-mem.c), page
#                            images only when small
#   corpus/mm/NAME-PID       the record of each mm-PID.img
#   corpus/shmem/NAME        the record of shmem.img (+ the pages byte)
#   corpus/pstree/NAME       the record of pstree.img (+ the shell-job byte)
#   corpus/show/NAME-IMAGE   each metadata image as it is
# (seeds over 160 KiB are left out)
import os
import struct
import sys

src, name = sys.argv[1], sys.argv[2]
top = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')


def put(kind, fname, data):
    if len(data) > 160 << 10:
        return      # a large seed slows every run down
    d = os.path.join(top, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), 'wb') as f:
        f.write(data)


def record(data):
    n, _ = struct.unpack_from('<II', data, 16)
    return data[24:24 + n]


blobs = bytearray()
for f in sorted(os.listdir(src)):
    data = open(os.path.join(src, f), 'rb').read()
    raw = f.startswith('pages-') or f.startswith('shmem-')
    if not raw or len(data) <= 64 << 10:
        blobs += bytes([len(f)]) + f.encode() + struct.pack('<I', len(data)) + data
    if raw or not f.endswith('.img'):
        continue
    put('show', '%s-%s' % (name, f), data)
    if f.startswith('mm-'):
        put('mm', '%s-%s' % (name, f[3:-4]), record(data))
    elif f == 'shmem.img':
        put('shmem', name, record(data) + b'\x02')
    elif f == 'pstree.img':
        put('pstree', name, record(data) + b'\x00')
put('imageset', name, bytes(blobs))
