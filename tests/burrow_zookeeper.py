#!/usr/bin/env python3
"""A stand-in ZooKeeper for tests/burrow.sh.

Burrow (1.2) will not start without a ZooKeeper: it connects, creates its
root path there and keeps a session for its notifier's lock, even when it
monitors a cluster that has none. Kafka data never goes through it. This
serves the little of ZooKeeper's protocol Burrow's client
(samuel/go-zookeeper) uses: the session handshake, pings, and create,
delete, exists, getData, getChildren(2) and setWatches on an in-memory
tree. Watches never fire.

usage: burrow_zookeeper.py PORTFILE   (binds 127.0.0.1:0, writes the port)
"""

import socketserver
import struct
import sys
import threading

# Opcodes and error codes of ZooKeeper's protocol.
OP_CREATE, OP_DELETE, OP_EXISTS, OP_GET_DATA = 1, 2, 3, 4
OP_GET_CHILDREN, OP_PING, OP_GET_CHILDREN2, OP_CLOSE = 8, 11, 12, -11
OP_SET_WATCHES = 101
ZOK, ZUNIMPLEMENTED, ZNONODE, ZNODEEXISTS, ZNOTEMPTY = 0, -6, -101, -110, -111
FLAG_SEQUENTIAL = 2

lock = threading.Lock()
tree = {"/": b""}  # path -> data
seq = {"n": 0, "zxid": 0}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def int(self):
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode()


def pstring(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def stat(path):
    children = len(children_of(path))
    data = tree.get(path, b"")
    # czxid mzxid ctime mtime version cversion aversion ephemeralOwner
    # dataLength numChildren pzxid
    return struct.pack(">qqqqiiiqiiq", 1, 1, 0, 0, 0, 0, 0, 0, len(data), children, 1)


def parent(path):
    p = path.rsplit("/", 1)[0]
    return p or "/"


def children_of(path):
    prefix = path.rstrip("/") + "/"
    return [p[len(prefix) :] for p in tree if p != path and p.startswith(prefix) and "/" not in p[len(prefix) :]]


def handle(op, body):
    """Returns (error, response body)."""
    r = Reader(body)
    with lock:
        seq["zxid"] += 1
        if op == OP_CREATE:
            path, data = r.string(), r.buffer() or b""
            for _ in range(r.int()):  # ACLs
                r.int(), r.string(), r.string()
            flags = r.int()
            if flags & FLAG_SEQUENTIAL:
                seq["n"] += 1
                path += "%010d" % seq["n"]
            if path in tree:
                return ZNODEEXISTS, b""
            if parent(path) not in tree:
                return ZNONODE, b""
            tree[path] = data
            return ZOK, pstring(path)
        if op == OP_DELETE:
            path = r.string()
            if path not in tree:
                return ZNONODE, b""
            if children_of(path):
                return ZNOTEMPTY, b""
            del tree[path]
            return ZOK, b""
        if op in (OP_EXISTS, OP_GET_DATA, OP_GET_CHILDREN, OP_GET_CHILDREN2):
            path = r.string()
            if path not in tree:
                return ZNONODE, b""
            if op == OP_EXISTS:
                return ZOK, stat(path)
            if op == OP_GET_DATA:
                data = tree[path]
                return ZOK, struct.pack(">i", len(data)) + data + stat(path)
            kids = children_of(path)
            out = struct.pack(">i", len(kids)) + b"".join(pstring(k) for k in kids)
            return ZOK, out + (stat(path) if op == OP_GET_CHILDREN2 else b"")
        if op == OP_SET_WATCHES:
            return ZOK, b""
    return ZUNIMPLEMENTED, b""


class Session(socketserver.BaseRequestHandler):
    def read_frame(self):
        head = self.recv_exact(4)
        if head is None:
            return None
        (n,) = struct.unpack(">i", head)
        return self.recv_exact(n)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def send_frame(self, payload):
        self.request.sendall(struct.pack(">i", len(payload)) + payload)

    def handle(self):
        req = self.read_frame()
        if req is None:
            return
        r = Reader(req)
        r.int()  # protocol version
        r.pos += 8  # last zxid seen
        timeout = r.int()
        self.send_frame(struct.pack(">iiq", 0, timeout, 1) + struct.pack(">i", 16) + b"\0" * 16)
        while True:
            frame = self.read_frame()
            if frame is None:
                return
            xid, op = struct.unpack_from(">ii", frame)
            if op == OP_PING or op == OP_CLOSE:
                err, body = ZOK, b""
            else:
                err, body = handle(op, frame[8:])
            self.send_frame(struct.pack(">iqi", xid, seq["zxid"], err) + (body if err == ZOK else b""))
            if op == OP_CLOSE:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    srv = Server(("127.0.0.1", 0), Session)
    with open(sys.argv[1], "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()
