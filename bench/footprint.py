"""The master's footprint next to Redis's, in one run: resident memory per small
stack item (1,000,000 items of 15 bytes, RSS growth, rpcs master on the memory
and embedded backends pushed over MessagePack-RPC, the memory backend over
XML-RPC too, redis-server with persistence off), the embedded
backend's files for them before and after compaction, and its restart time for
ITEMS items (default 10,000,000) from a snapshot and from a journal.

Usage: python3 bench/footprint.py RPCS_BINARY [ITEMS]   (see bench/footprint.sh)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

RPCS = sys.argv[1]
RESTART_ITEMS = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
ITEMS = 1_000_000
BATCH = 10_000
ITEM_BYTES = 15


def items(start, n):
    return [f"item-{i:010d}" for i in range(start, start + n)]


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_master(*args):
    """Starts `rpcs master ARGS` with an HTTP and a MessagePack-RPC listener;
    returns the process, its XML-RPC proxy, its MessagePack-RPC address and
    the seconds until it listened."""
    began = time.monotonic()
    p = subprocess.Popen([RPCS, "master", "--listen", "127.0.0.1:0",
                          "--msgpack", "127.0.0.1:0", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    urls = [p.stdout.readline() for _ in range(2)]
    if not all(u.startswith("listening on ") for u in urls):
        raise RuntimeError(f"rpcs master did not start: {urls!r}")
    took = time.monotonic() - began
    http, msgpack = (u.split()[-1] for u in urls)
    host, port = msgpack.removeprefix("msgpack://").rsplit(":", 1)
    return p, xmlrpc.client.ServerProxy(http), (host, int(port)), took


def stop(p, graceful=True):
    if graceful:
        p.terminate()
    else:
        p.kill()
    p.wait()


def push_xmlrpc(proxy, n):
    for start in range(0, n, BATCH):
        proxy.stack.pushMany("bench", items(start, min(BATCH, n - start)))


def pack(value):
    """MessagePack for the few types a pushMany request holds."""
    if isinstance(value, int):
        return b"\xd2" + value.to_bytes(4, "big", signed=True)
    if isinstance(value, str):
        raw = value.encode()
        return b"\xdb" + len(raw).to_bytes(4, "big") + raw if len(raw) > 31 \
            else bytes([0xa0 | len(raw)]) + raw
    return b"\xdd" + len(value).to_bytes(4, "big") + b"".join(pack(v) for v in value)


def push_msgpack(address, n):
    """pushMany over MessagePack-RPC, one call at a time; the answer (small,
    an integer) must have no error."""
    with socket.create_connection(address) as s:
        for start in range(0, n, BATCH):
            request = [0, start, "stack.pushMany", ["bench", items(start, min(BATCH, n - start))]]
            s.sendall(pack(request))
            reply = s.recv(64)
            # [1, msgid, nil, result]: fixarray 4, 1, an int32 msgid, then nil
            if not reply.startswith(b"\x94\x01") or b"\xc0" not in reply[2:8]:
                raise RuntimeError(f"pushMany failed: {reply!r}")


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def push_redis(port, n):
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rb")
        for start in range(0, n, BATCH):
            s.sendall(resp("LPUSH", "bench", *items(start, min(BATCH, n - start))))
            reply = f.readline()
            if not reply.startswith(b":"):
                raise RuntimeError(f"redis answered {reply!r}")


def settle(pid):
    """The RSS once the allocator has had a moment to give memory back."""
    time.sleep(1)
    return rss(pid)


def per_item(before, after):
    return (after - before) / ITEMS


def memory(work):
    rows = []
    for label, args, xml in [
            ("rpcs master, memory backend, MessagePack-RPC", ["--backend", "memory"], False),
            ("rpcs master, embedded (relaxed), MessagePack-RPC",
             ["--durability", "relaxed", "--data-dir", os.path.join(work, "mem")], False),
            ("rpcs master, memory backend, XML-RPC", ["--backend", "memory"], True)]:
        p, proxy, address, _ = start_master(*args)
        proxy.stack.create("bench")
        before = settle(p.pid)
        if xml:
            push_xmlrpc(proxy, ITEMS)
        else:
            push_msgpack(address, ITEMS)
        assert proxy.stack.getSize("bench") == ITEMS
        rows.append((label, per_item(before, settle(p.pid))))
        stop(p)
    port = free_port()
    r = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.05)
    push_redis(port, 1)
    before = settle(r.pid)
    push_redis(port, ITEMS)
    rows.append(("redis-server (persistence off)", per_item(before, settle(r.pid))))
    r.terminate()
    r.wait()
    return rows


def files(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def disk(work):
    data = os.path.join(work, "disk")
    p, _, address, _ = start_master("--data-dir", data)
    push_msgpack(address, ITEMS)
    journal = files(data)
    stop(p)  # a graceful stop compacts the journal into a snapshot
    return journal, files(data)


def restart(work):
    data = os.path.join(work, "restart")
    p, _, address, _ = start_master("--durability", "relaxed", "--data-dir", data)
    push_msgpack(address, RESTART_ITEMS)
    stop(p, graceful=False)
    journal_bytes = files(data)
    p, proxy, _, from_journal = start_master("--data-dir", data)
    assert proxy.stack.getSize("bench") == RESTART_ITEMS
    stop(p)
    p, proxy, _, from_snapshot = start_master("--data-dir", data)
    assert proxy.stack.getSize("bench") == RESTART_ITEMS
    snapshot_bytes = files(data)
    stop(p)
    _, _, _, empty = start_master("--backend", "memory")
    return from_journal, journal_bytes, from_snapshot, snapshot_bytes, empty


def main():
    work = tempfile.mkdtemp(prefix="rpcs-footprint.")
    try:
        print(f"footprint: {ITEMS:,} stack items of {ITEM_BYTES} bytes, "
              f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
        print()
        print("| server | RSS growth per item |")
        print("|---|---:|")
        for label, b in memory(work):
            print(f"| {label} | {b:.1f} B |")
        journal, compacted = disk(work)
        payload = ITEMS * ITEM_BYTES
        print()
        print(f"embedded backend files for them: {journal / 1e6:.1f} MB journal "
              f"({journal / payload:.2f}x the payload), {compacted / 1e6:.1f} MB after "
              f"compaction ({compacted / payload:.2f}x the payload of {payload / 1e6:.0f} MB)")
        j, jb, s, sb, empty = restart(work)
        print()
        print(f"restart with {RESTART_ITEMS:,} items (start until listening; "
              f"an empty master takes {empty:.2f} s):")
        print(f"- after kill -9, from the journal ({jb / 1e6:.0f} MB): {j:.2f} s")
        print(f"- after a graceful stop, from the snapshot ({sb / 1e6:.0f} MB): {s:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
