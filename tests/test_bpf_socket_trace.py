"""The socket tracer against real processes: HTTP over IPv4 and IPv6, vectored I/O, settings.

Servers and clients are subprocesses running this file (``python tests/test_bpf_socket_trace.py
MODE ...``, see the bottom); the test process is the agent, so the tracer never sees it. Each
listening socket is opened here before the tracer loads, so the main tracer can be limited to
those ports and other traffic on the host stays out of its ring buffer.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading

import pytest

HERE = os.path.abspath(__file__)
BIG = bytes(i % 251 for i in range(10_000))  # a body larger than the capture limit
MAX_CHUNK = 4096


# ---- the subprocesses --------------------------------------------------------------------------

def serve_http(fd: int) -> None:
    """An http.server on an inherited listening socket, until killed."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = BIG if self.path == "/big" else b"hello from " + self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    sock = socket.socket(fileno=fd)
    server = HTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    print("ready", flush=True)
    server.serve_forever()


def http_get(*urls: str) -> None:
    import urllib.request

    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as resp:
            print(len(resp.read()), flush=True)


def serve_vectors(fd: int) -> None:
    """Accept one connection and read it with recvmsg (2 buffers), readv (2 buffers), recv and
    read, acknowledging each message with a one-byte write."""
    listener = socket.socket(fileno=fd)
    conn, _ = listener.accept()
    got = conn.recvmsg_into([bytearray(4), bytearray(100)])[0]
    os.write(conn.fileno(), b"k")
    got = os.readv(conn.fileno(), [bytearray(6), bytearray(100)])
    os.write(conn.fileno(), b"k")
    got = 0
    while got < 9000:
        got += len(conn.recv(65536))
    os.write(conn.fileno(), b"k")
    os.read(conn.fileno(), 100)
    os.write(conn.fileno(), b"k")
    conn.recv(1)  # EOF
    conn.close()


def send_vectors(port: int) -> None:
    """Send with sendmsg and writev (several iovecs), then write; hold the connection open until
    a line arrives on stdin. Also send a datagram to a port the tracer does not follow."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect(("127.0.0.1", 9))
    udp.send(b"not traced")
    sock = socket.create_connection(("127.0.0.1", port))
    fd = sock.fileno()
    sock.sendmsg([b"one-", b"two-", b"three"])
    sock.recv(1)
    os.writev(fd, [b"alpha-", b"beta-", b"gamma"])
    sock.recv(1)
    os.writev(fd, [b"A" * 3000, b"B" * 3000, b"C" * 3000])
    sock.recv(1)
    os.write(fd, b"plain-write")
    sock.recv(1)
    print("sent", flush=True)
    sys.stdin.readline()
    sock.close()


def send_then_drop(port: int, how: str) -> None:
    """Send on a connection, drop its fd without close() (exec, dup2 over it, close_range),
    write to what the fd number is now, then wait for a line on stdin."""
    sock = socket.create_connection(("127.0.0.1", port))
    fd = sock.fileno()
    sock.sendall(b"bye")
    if how == "exec":  # the socket is close-on-exec
        os.execv("/bin/sh", ["sh", "-c",
                             f"{{ echo not-a-socket >&{fd}; }} 2>/dev/null; echo dropped; read x"])
    if how == "dup2":
        os.dup2(os.open("/dev/null", os.O_WRONLY), fd)
    elif how == "close_range":
        import ctypes

        assert ctypes.CDLL(None, use_errno=True).syscall(436, fd, fd, 0) == 0  # close_range
        assert os.open("/dev/null", os.O_WRONLY) == fd
    os.write(fd, b"not-a-socket")
    print("dropped", flush=True)
    sys.stdin.readline()


def chunk(i: int) -> bytes:
    return i.to_bytes(4, "big") * (MAX_CHUNK // 4)


def write_chunks(port: int, n: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    for i in range(n):
        os.write(sock.fileno(), chunk(i))
    sock.close()


def ping_later(port: int) -> None:
    """Connect now; on each line of stdin send 'ping' and read the echo."""
    sock = socket.create_connection(("127.0.0.1", port))
    print("connected", flush=True)
    for _ in sys.stdin:
        os.write(sock.fileno(), b"ping")
        sock.recv(100)
        print("pong", flush=True)
    sock.close()


def echo_one(fd: int) -> None:
    listener = socket.socket(fileno=fd)
    conn, _ = listener.accept()
    while data := conn.recv(100):
        conn.sendall(data)


MODES = {"serve_http": serve_http, "http_get": http_get, "serve_vectors": serve_vectors,
         "send_vectors": send_vectors, "send_then_drop": send_then_drop,
         "ping_later": ping_later, "echo_one": echo_one, "write_chunks": write_chunks}

if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    MODES[mode](*[int(a) if a.isdigit() else a for a in args])
    sys.exit(0)


# ---- the tests ---------------------------------------------------------------------------------

from collectors.events import ConnEvent, DataEvent, Direction, Role  # noqa: E402
from collectors.loader import unavailable_reason  # noqa: E402
from collectors.socket_trace import MAX_CAPTURE, SocketTrace, SocketTraceSettings  # noqa: E402

pytestmark = [pytest.mark.bpf,
              pytest.mark.skipif(unavailable_reason() is not None,
                                 reason=f"cannot load BPF here: {unavailable_reason()}")]

LISTENERS = {"http4": ("127.0.0.1", socket.AF_INET), "http6": ("::1", socket.AF_INET6),
             "vectors": ("127.0.0.1", socket.AF_INET), "drop": ("127.0.0.1", socket.AF_INET),
             "infer": ("127.0.0.1", socket.AF_INET), "bulk": ("127.0.0.1", socket.AF_INET)}


def spawn(mode: str, *args: object, pass_fds: tuple[int, ...] = (), stdin: bool = False
          ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, HERE, mode, *map(str, args)], text=True,
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None,
                            pass_fds=pass_fds)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)


def drain(trace: SocketTrace, settle_ms: int = 150) -> list[DataEvent | ConnEvent]:
    """Everything the tracer has, polling until it stays quiet for settle_ms."""
    out: list[DataEvent | ConnEvent] = []
    while batch := trace.poll(timeout_ms=settle_ms):
        out += batch
    return out


def of(events: list, tgid: int) -> list:
    return [e for e in events if e.conn.tgid == tgid]


def data(events: list, direction: Direction, conn: object = None) -> list[DataEvent]:
    return [e for e in events if isinstance(e, DataEvent) and e.direction == direction
            and (conn is None or e.conn == conn)]


def conns(events: list, opened: bool) -> list[ConnEvent]:
    return [e for e in events if isinstance(e, ConnEvent) and e.opened == opened]


@pytest.fixture(scope="module")
def listeners():
    socks = {}
    for name, (host, family) in LISTENERS.items():
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((host, 0))
        s.listen(16)
        s.set_inheritable(True)
        socks[name] = s
    yield socks
    for s in socks.values():
        s.close()


@pytest.fixture(scope="module")
def trace(listeners):
    ports = tuple(s.getsockname()[1] for name, s in listeners.items() if name != "infer")
    t = SocketTrace(SocketTraceSettings(ports=ports)).open().load().attach()
    drain(t, 0)
    yield t
    t.close()


@pytest.mark.parametrize("name", ["http4", "http6"])
def test_http_request_and_response(trace, listeners, name):
    host, family = LISTENERS[name]
    lsock = listeners[name]
    port = lsock.getsockname()[1]
    server = spawn("serve_http", lsock.fileno(), pass_fds=(lsock.fileno(),))
    assert server.stdout.readline() == "ready\n"
    base = f"http://{host if family == socket.AF_INET else f'[{host}]'}:{port}"
    client = spawn("http_get", f"{base}/hello?x=1", f"{base}/big")
    assert client.communicate(timeout=20)[0].split() == [str(len(b"hello from /hello?x=1")),
                                                        str(len(BIG))]
    stop(server)
    events = drain(trace)
    srv, cli = of(events, server.pid), of(events, client.pid)

    # connections: one per request, with the right roles, addresses and ports on both sides
    srv_open, cli_open = conns(srv, True), conns(cli, True)
    assert [c.role for c in srv_open] == [Role.SERVER] * 2
    assert [c.role for c in cli_open] == [Role.CLIENT] * 2
    for s, c in zip(srv_open, cli_open, strict=True):
        assert (s.family, c.family) == (family, family)
        assert (s.local_addr, s.local_port, s.remote_addr) == (host, port, host)
        assert (c.remote_addr, c.remote_port, c.local_addr) == (host, port, host)
        assert s.remote_port == c.local_port
    assert len({c.conn.generation for c in srv_open + cli_open}) == 4

    # the request arrives at the server (ingress), the response leaves it (egress)
    hello, big = (c.conn for c in srv_open)
    req = b"".join(e.data for e in data(srv, Direction.INGRESS, hello))
    assert req.startswith(b"GET /hello?x=1 HTTP/1.1\r\n")
    assert f"Host: {host if family == socket.AF_INET else f'[{host}]'}:{port}".encode() in req
    resp = b"".join(e.data for e in data(srv, Direction.EGRESS, hello))
    assert resp.startswith(b"HTTP/1.0 200 OK\r\n") and resp.endswith(b"hello from /hello?x=1")
    sent = b"".join(e.data for e in data(cli, Direction.EGRESS, cli_open[0].conn))
    assert sent == req

    # the big body: counted in full, captured up to the limit
    body = [e for e in data(srv, Direction.EGRESS, big) if e.size == len(BIG)]
    assert len(body) == 1 and body[0].data == BIG[:MAX_CAPTURE] and body[0].size > len(body[0].data)

    # closes carry the totals of what moved
    for opened in srv_open + cli_open:
        events_of = of(events, opened.conn.tgid)
        closed = [c for c in conns(events_of, False) if c.conn == opened.conn]
        assert len(closed) == 1
        assert closed[0].bytes_sent == sum(e.size for e in data(events_of, Direction.EGRESS,
                                                               opened.conn))
        assert closed[0].bytes_recv == sum(e.size for e in data(events_of, Direction.INGRESS,
                                                               opened.conn))
    assert trace.lost == 0


def test_vectored_io_in_full_and_in_order(trace, listeners):
    lsock = listeners["vectors"]
    server = spawn("serve_vectors", lsock.fileno(), pass_fds=(lsock.fileno(),))
    client = spawn("send_vectors", lsock.getsockname()[1], stdin=True)
    assert client.stdout.readline() == "sent\n"

    # while the connection is open, its byte totals are in the kernel map (and only it: the
    # datagram socket to port 9 is remembered as not traced)
    live = [c for c in trace.connections() if c.conn.tgid == client.pid]
    assert len(live) == 1 and live[0].role == Role.CLIENT
    assert (live[0].bytes_sent, live[0].bytes_recv) == (13 + 16 + 9000 + 11, 4)

    client.communicate("\n", timeout=10)
    server.wait(timeout=10)
    events = drain(trace)
    assert [c.remote_port for c in conns(of(events, client.pid), True)] == [lsock.getsockname()[1]]
    sent = data(of(events, client.pid), Direction.EGRESS)
    assert [(e.data, e.size) for e in sent] == [
        (b"one-two-three", 13),  # sendmsg, 3 iovecs
        (b"alpha-beta-gamma", 16),  # writev, 3 iovecs
        (b"A" * 3000 + b"B" * (MAX_CAPTURE - 3000), 9000),  # writev, cut at the capture limit
        (b"plain-write", 11),  # write
    ]
    received = [e.data for e in data(of(events, server.pid), Direction.INGRESS)]
    assert received[0] == b"one-two-three"  # recvmsg into 2 buffers
    assert received[1] == b"alpha-beta-gamma"  # readv into 2 buffers
    assert received[-1] == b"plain-write"  # read
    assert b"".join(received[2:-1]) == (b"A" * 3000 + b"B" * 3000 + b"C" * 3000)[:len(
        b"".join(received[2:-1]))]
    acks = data(of(events, server.pid), Direction.EGRESS)
    assert [e.data for e in acks] == [b"k"] * 4  # write


def test_agent_is_not_traced(trace, listeners):
    lsock = listeners["http4"]
    server = spawn("serve_http", lsock.fileno(), pass_fds=(lsock.fileno(),))
    assert server.stdout.readline() == "ready\n"
    conn = http.client.HTTPConnection("127.0.0.1", lsock.getsockname()[1], timeout=10)
    conn.request("GET", "/from-the-agent")
    local_port = conn.sock.getsockname()[1]
    assert conn.getresponse().read() == b"hello from /from-the-agent"
    conn.close()
    stop(server)
    events = drain(trace)
    assert of(events, os.getpid()) == []
    seen = [c for c in conns(of(events, server.pid), True) if c.remote_port == local_port]
    assert len(seen) == 1 and seen[0].role == Role.SERVER


@pytest.mark.parametrize("how", ["exec", "dup2", "close_range"])
def test_connections_closed_without_close(trace, listeners, how):
    lsock = listeners["drop"]
    client = spawn("send_then_drop", lsock.getsockname()[1], how, stdin=True)
    assert client.stdout.readline() == "dropped\n"
    accepted, _ = lsock.accept()  # the agent's own side: not traced
    assert accepted.recv(10) == b"bye"
    accepted.close()
    events = of(drain(trace), client.pid)  # while the process lives on
    client.communicate("\n", timeout=10)
    assert [type(e).__name__ for e in events] == ["ConnEvent", "DataEvent", "ConnEvent"]
    opened, sent, closed = events
    assert opened.opened and not closed.opened and opened.conn == sent.conn == closed.conn
    assert (sent.data, closed.bytes_sent) == (b"bye", 3)


def test_ring_buffer_wraps_around(trace, listeners):
    """More records than the ring holds, consumed while they are produced: each arrives whole,
    in order, including those that straddle the end of the ring."""
    lsock = listeners["bulk"]
    n = trace.ring.size // (MAX_CHUNK + 64) + 1000
    start = trace.ring.consumer_pos
    client = spawn("write_chunks", lsock.getsockname()[1], n)
    accepted, _ = lsock.accept()

    def read_all() -> None:
        while accepted.recv(1 << 20):
            pass

    reader = threading.Thread(target=read_all)
    reader.start()
    events: list = []
    while client.poll() is None or reader.is_alive():
        events += trace.poll(timeout_ms=20)
    events += drain(trace)
    reader.join()
    accepted.close()
    sent = data(of(events, client.pid), Direction.EGRESS)
    assert trace.ring.consumer_pos - start > trace.ring.size
    assert all(e.size == MAX_CHUNK for e in sent)
    # Every record arrives whole and in order, or is counted as lost: a consumer starved of CPU
    # (a loaded CI machine) can let the ring fill, and the kernel then drops and counts.
    indices = [int.from_bytes(e.data[:4], "big") for e in sent]
    assert all(e.data == chunk(i) for i, e in zip(indices, sent, strict=True))
    assert indices == sorted(set(indices)) and (not indices or indices[-1] < n)
    assert n - len(sent) <= trace.lost
    assert len(sent) >= n * 0.99, "more than 1% lost while consuming as fast as produced"


def test_settings_pids_capture_bytes_and_sockets_opened_before(listeners):
    """A tracer loaded after a connection opened adopts it (role unknown) when infer_conns is
    on, follows only the listed pids, and keeps capture_bytes of each payload."""
    lsock = listeners["infer"]
    port = lsock.getsockname()[1]
    server = spawn("echo_one", lsock.fileno(), pass_fds=(lsock.fileno(),))
    client = spawn("ping_later", port, stdin=True)
    assert client.stdout.readline() == "connected\n"
    only_client = SocketTrace(SocketTraceSettings(pids=(client.pid,), capture_bytes=3)).start()
    no_infer = SocketTrace(SocketTraceSettings(ports=(port,), infer_conns=False)).start()
    try:
        client.stdin.write("\n")
        client.stdin.flush()
        assert client.stdout.readline() == "pong\n"
        events, ignored = drain(only_client), drain(no_infer)
        assert ignored == []
        assert {e.conn.tgid for e in events} == {client.pid}
        opened = conns(events, True)
        assert len(opened) == 1 and opened[0].role == Role.UNKNOWN
        assert (opened[0].remote_addr, opened[0].remote_port) == ("127.0.0.1", port)
        assert [(e.data, e.size) for e in data(events, Direction.EGRESS)] == [(b"pin", 4)]
        assert [(e.data, e.size) for e in data(events, Direction.INGRESS)] == [(b"pin", 4)]
        assert [c.role for c in only_client.connections()] == [Role.UNKNOWN]
        assert no_infer.connections() == []
        assert only_client.lost == no_infer.lost == 0
        assert only_client.events == len(events) and only_client.bytes == 6
    finally:
        only_client.close()
        no_infer.close()
        client.stdin.close()
        client.wait(timeout=10)
        server.wait(timeout=10)
