#!/usr/bin/env python3
# mkseed-mntns.py DIR: seeds for fuzz-mntns (a mntns_image payload each, as
# ckpt-core/proto/kup-mntns.proto describes it): the sandboxes systemd makes
# (PrivateTmp=, ProtectSystem=, PrivateDevices=), written by hand so that no
# machine's own mount table goes into the repository.
import os
import sys


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def key(field, wire):
    return varint(field << 3 | wire)


def s(field, text):
    data = text.encode() if isinstance(text, str) else text
    return key(field, 2) + varint(len(data)) + data


def u(field, n):
    return key(field, 0) + varint(n)


def mfile(path, mode, data=None, target=None, rdev=None, link_of=None):
    m = s(1, path) + u(2, mode) + u(3, 0) + u(4, 0) + u(5, 1796600000000000000)
    if data is not None:
        m += s(7, data)
    if target is not None:
        m += s(8, target)
    if rdev is not None:
        m += u(9, rdev)
    if link_of is not None:
        m += u(10, link_of)
    return m


def mount(mp, fstype, source, opts, kind, root="/", sb="rw", prop="", src=None, files=()):
    m = s(1, mp) + s(2, root) + s(3, fstype) + s(4, source) + s(5, opts) + s(6, sb) + s(7, prop)
    m += u(8, kind)
    if src is not None:
        m += s(9, src)
    for f in files:
        m += s(10, f)
    return m


KEPT, BIND, VIRTUAL, TMPFS, PRIVATE = 1, 2, 3, 4, 5
root = mount("/", "ext4", "/dev/vda1", "ro,relatime", KEPT, sb="rw")
proc = mount("/proc", "proc", "proc", "rw,nosuid,nodev,noexec,relatime", VIRTUAL)
tmp = mount("/tmp", "ext4", "/dev/vda1", "rw,relatime", PRIVATE,
            root="/tmp/systemd-private-0123456789abcdef0123456789abcdef-demo.service-AbCdEf/tmp",
            src="/tmp/systemd-private-0123456789abcdef0123456789abcdef-demo.service-AbCdEf/tmp",
            files=[mfile("", 0o41777), mfile("state", 0o100600, data=b"counter 42\n"),
                   mfile("link", 0o120777, target="state"),
                   mfile("hard", 0o100600, link_of=1)])
dev = mount("/dev", "tmpfs", "tmpfs", "ro,nosuid,noexec", TMPFS, sb="rw,mode=755",
            files=[mfile("", 0o40755), mfile("null", 0o20666, rdev=0x103),
                   mfile("pts", 0o40755), mfile("ptmx", 0o120777, target="pts/ptmx")])
usr = mount("/usr", "ext4", "/dev/vda1", "ro,relatime", BIND, root="/usr", src="/usr")
seeds = {
    "private-tmp": s(1, root) + s(1, proc) + s(1, tmp),
    "protect-system-devices": s(1, root) + s(1, usr) + s(1, dev) + s(1, proc),
    "netns": s(1, root) + s(1, tmp) + s(2, "kup-demo"),
}
os.makedirs(sys.argv[1], exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write(data)
