"""A deterministic demo cluster: every built-in table filled with self-consistent data.

``demo_tables()`` lets a newcomer without root (and without BPF) try every PxL example::

    tables = demo_tables(seed=7)            # {"http_events": DataFrame, ...}
    meta = demo_metadata(seed=7)            # one row per upid: pod, service, node ...
    write_demo("/tmp/demo", fmt="parquet")  # one file per table + upid_metadata.parquet

The cluster
    Two nodes (``demo-node-1`` 10.128.0.11, ``demo-node-2`` 10.128.0.12) with pod IPs
    ``10.244.{node}.x``. Namespace ``shop`` runs the deployments frontend (3 pods), catalog,
    cart, checkout, payment (2 each) and users (1), and the stateful sets mysql, postgres and
    redis (pod ``mysql-0`` ..., empty deployment/replicaset). Namespace ``kube-system`` runs
    coredns (2 pods). One process per pod; pod ``payment-…`` #0 is OOM-killed 17 minutes
    before ``now`` and restarts 4 s later as a new process (see ``proc_exit_events``).

UPIDs
    ``"{asid:08x}-{pid:08x}-{start_ns:016x}"``: the agent (node) number, the host pid and the
    process start time in ns since the epoch, all hexadecimal, e.g.
    ``00000001-0000a3f1-17d0c5a4e3b2c100``. They depend on ``now_ns`` and ``seed``.

Traffic
    Internet → frontend (via the nodes' IPs) → catalog / cart / users / checkout;
    checkout → cart, users, payment; payment → ``api.payments.example.com`` and checkout →
    ``api.shipping.example.com`` (TLS, traced on the client side, ``trace_role`` 1); kubelet
    probes ``/healthz`` on every app pod. Databases are traced on the client side: checkout and
    payment → mysql, catalog and users → postgres, frontend, catalog and cart → redis; every app
    resolves names through coredns (NXDOMAIN answers come from the resolver search path).

Things worth finding
    ``POST /api/checkout`` (and the frontend's ``POST /checkout``) is slow: p50 ≈ 0.25 s,
    p99 ≈ 1.5–2 s, because of an unindexed ``SELECT … FROM orders … ORDER BY created_at`` in MySQL.
    From 22 to 17 minutes before ``now`` the payment gateway times out: the payment client
    calls get 504s, ``POST /api/payment/charge`` answers 503 (≈ 8 s), checkout and frontend
    answer 502, ``SELECT … FOR UPDATE`` on wallets hits lock-wait timeouts, and the leaking
    payment process grows to 512 MiB and is killed (signal 9).

Counters in ``conn_stats`` and ``process_stats`` are cumulative per key, as in Pixie, and
``conn_active == conn_open - conn_close``. Same ``seed`` and ``now_ns`` give identical frames.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.tables import TABLES

__all__ = ["demo_tables", "demo_metadata", "write_demo", "FORMATS"]

NS = 1_000_000_000
MS = 1_000_000
MIN = 60 * NS
HOUR = 60 * MIN
TICK = 10 * NS
NEVER = int(np.iinfo(np.int64).max)
BODY_LIMIT = 512
PROFILE_HZ = 99
BURST_AGO = (22 * MIN, 17 * MIN)  # (start, end) of the payment outage, before now
RESTARTED = ("payment", 0)  # (service, replica) whose process is OOM-killed at the burst's end
RESTART_DELAY = 4 * NS
LEAK_TO_BYTES = 512 << 20
PER_HOUR = {"http": 60_000, "mysql": 9_000, "pgsql": 12_000, "redis": 24_000, "dns": 7_000}
PROTOCOL = {"http": 1, "mysql": 3, "pgsql": 5, "dns": 6, "redis": 7}
#: Mean bytes (request, response) per call, for conn_stats.
CALL_BYTES = {1: (650, 2400), 3: (160, 380), 5: (140, 420), 6: (60, 110), 7: (70, 180)}
BURST_LOAD = {"payment": 1.6, "checkout": 1.2, "frontend": 1.05}

# ---------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------

NODES = (("demo-node-1", "10.128.0.11"), ("demo-node-2", "10.128.0.12"))
EXTERNAL = {"api.payments.example.com": "203.0.113.10", "api.shipping.example.com": "203.0.113.24"}
GATEWAY, SHIPPING = EXTERNAL


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    replicas: int
    port: int
    comm: str
    cmdline: str
    stateful: bool = False
    cpu: float = 0.1  # cores, on average
    rss_mib: int = 64
    threads: int = 12
    io_kib: int = 64  # KiB/s through read/write calls
    disk_kib: int = 0  # KiB/s written to storage
    uptime_h: tuple[float, float] = (5.0, 120.0)


SERVICES = (
    Service("frontend", "shop", 3, 8080, "node", "node /app/server.js --port=8080",
            cpu=0.25, rss_mib=160, threads=11, io_kib=256),
    Service("catalog", "shop", 2, 8081, "catalog",
            "/app/catalog --listen=:8081 --db=postgres://postgres.shop:5432/catalog",
            cpu=0.12, rss_mib=48, threads=14, io_kib=128),
    Service("cart", "shop", 2, 8082, "cart", "/app/cart --listen=:8082 --redis=redis.shop:6379",
            cpu=0.08, rss_mib=36, threads=10, io_kib=64),
    Service("checkout", "shop", 2, 8083, "java",
            "java -Xms256m -Xmx512m -jar /app/checkout.jar --server.port=8083",
            cpu=0.30, rss_mib=420, threads=48, io_kib=96),
    Service("payment", "shop", 2, 8084, "gunicorn",
            "/usr/local/bin/python /usr/local/bin/gunicorn payment.app:app -b 0.0.0.0:8084 -w 4",
            cpu=0.10, rss_mib=180, threads=9, io_kib=48),
    Service("users", "shop", 1, 8085, "users", "/app/users --listen=:8085",
            cpu=0.05, rss_mib=30, threads=9, io_kib=32),
    Service("mysql", "shop", 1, 3306, "mysqld",
            "mysqld --datadir=/var/lib/mysql --innodb-buffer-pool-size=512M", stateful=True,
            cpu=0.20, rss_mib=620, threads=38, io_kib=96, disk_kib=180, uptime_h=(300, 700)),
    Service("postgres", "shop", 1, 5432, "postgres",
            "postgres -D /var/lib/postgresql/data -c shared_buffers=256MB", stateful=True,
            cpu=0.15, rss_mib=310, threads=1, io_kib=80, disk_kib=90, uptime_h=(300, 700)),
    Service("redis", "shop", 1, 6379, "redis-server", "redis-server *:6379 --appendonly yes",
            stateful=True, cpu=0.06, rss_mib=64, threads=5, io_kib=60, disk_kib=12,
            uptime_h=(300, 700)),
    Service("coredns", "kube-system", 2, 53, "coredns", "/coredns -conf /etc/coredns/Corefile",
            cpu=0.03, rss_mib=28, threads=12, io_kib=16, uptime_h=(400, 900)),
)
SERVICE = {s.name: s for s in SERVICES}
APP_SERVICES = ("frontend", "catalog", "cart", "checkout", "payment", "users")


@dataclass(frozen=True)
class Cluster:
    """The processes of the demo cluster, one entry per upid (numpy arrays, aligned)."""

    meta: pl.DataFrame
    upid: np.ndarray
    service: np.ndarray
    comm: np.ndarray
    ip: np.ndarray
    node: np.ndarray  # node number
    port: np.ndarray
    start: np.ndarray
    end: np.ndarray  # exit time, NEVER while running
    pods: dict[str, tuple[np.ndarray, np.ndarray]]  # service -> (first process, switch time)
    cluster_ip: dict[str, str]

    def pick(self, service: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random pod of ``service`` per time, as the process running in it then."""
        first, switch = self.pods[service]
        k = rng.integers(0, len(first), size=len(t))
        return first[k] + (t >= switch[k])

    def n_pods(self, service: str) -> int:
        """Pods of a service; 1 for a peer outside the cluster."""
        return len(self.pods[service][0]) if service in self.pods else 1

    def procs_of(self, service: str) -> np.ndarray:
        return np.flatnonzero(self.service == service)

    def alive(self, proc: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whether each process runs at t (a process index of -1, outside the cluster, always)."""
        p = np.maximum(proc, 0)
        return (proc < 0) | ((self.start[p] <= t) & (t < self.end[p]))

    def alive_grid(self, proc: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        return self.alive(proc[:, None], ticks[None, :])

    @property
    def addrs(self) -> pl.Series:
        """Every address: the processes' pod IPs (by process index), the nodes', the hosts'."""
        return pl.Series([*self.ip, *(ip for _, ip in NODES), *EXTERNAL.values()])

    def node_addr(self, node: np.ndarray | int) -> np.ndarray | int:
        """Index in ``addrs`` of node number ``node``."""
        return len(self.ip) + node

    def host_addr(self, host: str) -> int:
        """Index in ``addrs`` of an external host."""
        return len(self.ip) + len(NODES) + list(EXTERNAL).index(host)


_KUBE_ALPHABET = np.array(list("bcdfghjklmnpqrstvwxz2456789"))


def _kube_suffix(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(_KUBE_ALPHABET, n))


def _process(rng: np.random.Generator, svc: Service, node: int, pod: str, rs: str, ip: str,
             start: int) -> dict[str, Any]:
    pid = int(rng.integers(1200, 60_000))
    ns = svc.namespace
    return {
        "upid": f"{node + 1:08x}-{pid:08x}-{start:016x}", "pid": pid, "start_time": start,
        "cmdline": svc.cmdline, "hostname": NODES[node][0], "container_name": svc.name,
        "container_id": rng.bytes(32).hex(), "pod": f"{ns}/{pod}", "service": f"{ns}/{svc.name}",
        "namespace": ns, "node": NODES[node][0],
        "deployment": "" if svc.stateful else f"{ns}/{svc.name}",
        "replicaset": "" if svc.stateful else f"{ns}/{svc.name}-{rs}",
        "_service": svc.name, "_comm": svc.comm, "_ip": ip, "_node": node,
        "_port": svc.port, "_end": NEVER,
    }


def _pod_processes(rng: np.random.Generator, svc: Service, replica: int, node: int, rs: str,
                   ip: str, now: int) -> list[dict[str, Any]]:
    """The processes a pod ran: one, or two when it is the one that restarts."""
    pod = f"{svc.name}-{replica}" if svc.stateful else f"{svc.name}-{rs}-{_kube_suffix(rng, 5)}"
    start = now - int(rng.uniform(*svc.uptime_h) * HOUR)
    procs = [_process(rng, svc, node, pod, rs, ip, start)]
    if (svc.name, replica) == RESTARTED:
        procs[0]["_end"] = now - BURST_AGO[1]
        procs.append(_process(rng, svc, node, pod, rs, ip, now - BURST_AGO[1] + RESTART_DELAY))
    return procs


@functools.lru_cache(maxsize=8)
def _cluster(now: int, seed: int) -> Cluster:
    rng = np.random.default_rng([seed, 0])
    hosts = [iter(rng.permutation(np.arange(2, 250))) for _ in NODES]
    rows: list[dict[str, Any]] = []
    pods: dict[str, tuple[list[int], list[int]]] = {}
    for i, svc in enumerate(SERVICES):
        rs = _kube_suffix(rng, 10)
        for r in range(svc.replicas):
            node = (i + r) % len(NODES)
            ip = f"10.244.{node + 1}.{next(hosts[node])}"
            procs = _pod_processes(rng, svc, r, node, rs, ip, now)
            first, switch = pods.setdefault(svc.name, ([], []))
            first.append(len(rows))
            switch.append(int(procs[1]["start_time"]) if len(procs) > 1 else NEVER)
            rows.extend(procs)
    return _make_cluster(rows, pods, rng)


def _make_cluster(rows: list[dict[str, Any]], pods: dict[str, tuple[list[int], list[int]]],
                  rng: np.random.Generator) -> Cluster:
    frame = pl.DataFrame(rows)
    meta = frame.select(pl.exclude("^_.*$")).with_columns(
        pl.col("pid").cast(pl.Int64), pl.col("start_time").cast(pl.Datetime("ns")))
    ips = {s.name: f"10.96.{rng.integers(1, 255)}.{rng.integers(2, 255)}" for s in SERVICES}
    ips["coredns"] = "10.96.0.10"
    col = {name: frame[name].to_numpy() for name in frame.columns}
    return Cluster(
        meta=meta, upid=col["upid"], service=col["_service"], comm=col["_comm"], ip=col["_ip"],
        node=col["_node"], port=col["_port"], start=col["start_time"], end=col["_end"],
        pods={k: (np.array(f), np.array(s, dtype=np.int64)) for k, (f, s) in pods.items()},
        cluster_ip=ips)


# ---------------------------------------------------------------------------------------------
# Reference data: products, users, page and body templates
# ---------------------------------------------------------------------------------------------

PRODUCTS = (
    ("1001", "Vintage Camera Lens", 4599, "photo"), ("1002", "Bamboo Glass Jar", 899, "kitchen"),
    ("1003", "Salt & Pepper Shakers", 1849, "kitchen"), ("1004", "Loafers", 8900, "shoes"),
    ("1005", "Candle Holder", 1895, "home"), ("1006", "Hairdryer", 2450, "beauty"),
    ("1007", "Sunglasses", 1999, "accessories"), ("1008", "Tank Top", 1899, "clothing"),
    ("1009", "Watch", 10999, "accessories"), ("1010", "Mug", 899, "kitchen"),
    ("1011", "City Bike", 78950, "cycling"), ("1012", "Typewriter", 6799, "office"),
)
USERS = (
    ("u-1042", "Ada Lovelace", "ada@example.com", "London", "c-7f3a91"),
    ("u-1043", "Grace Hopper", "grace@example.com", "Arlington", "c-19be04"),
    ("u-1044", "Alan Turing", "alan@example.com", "Manchester", "c-5d20c7"),
    ("u-1045", "Edsger Dijkstra", "edsger@example.com", "Austin", "c-a83e52"),
    ("u-1046", "Barbara Liskov", "barbara@example.com", "Boston", "c-0c4f6d"),
    ("u-1047", "Ken Thompson", "ken@example.com", "Berkeley", "c-e6712b"),
    ("u-1048", "Margaret Hamilton", "margaret@example.com", "Cambridge", "c-3b9d18"),
    ("u-1049", "Dennis Ritchie", "dennis@example.com", "Summit", "c-9a05f3"),
)
_PRODUCT_ROWS = [(*p, f"${p[2] / 100:.2f}") for p in PRODUCTS]
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
)
CLIENT_AGENT = {"frontend": "node-fetch/1.0", "checkout": "Java-http-client/17.0.10",
                "payment": "python-requests/2.31.0", "kubelet": "kube-probe/1.29",
                "internet": "{ua}"}
REASONS = {200: "OK", 201: "Created", 204: "No Content", 302: "Found", 400: "Bad Request",
           402: "Payment Required", 404: "Not Found", 409: "Conflict",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _cards() -> str:
    return "".join(
        f'<article class="card"><a href="/product/{pid}"><img src="/static/img/{pid}.jpg" '
        f'alt="{name}"><h2>{name}</h2></a><p class="price">${cents / 100:.2f}</p></article>'
        for pid, name, cents, _ in PRODUCTS)


def _html(title: str, main: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>{title} | Demo Shop</title>'
        '<link rel="stylesheet" href="/static/css/app.css"></head><body><header><a class="logo" '
        'href="/">Demo Shop</a><nav><a href="/products">Products</a><a href="/cart">Cart</a>'
        f"</nav></header><main>{main}</main><footer>&copy; Demo Shop</footer>"
        '<script src="/static/js/app.3f9c2d1.js"></script></body></html>')


INDEX_HTML = _html("Home", '<section class="hero"><h1>Spring sale</h1></section>' + _cards())
PRODUCT_HTML = _html("{pname}", '<section class="product"><h1>{pname}</h1><p class="price">'
                     '{price_usd}</p><form method="post" action="/cart/add"><input type="hidden" '
                     'name="product_id" value="{product}"><button>Add to cart</button></form>'
                     '</section><h2>You may also like</h2>' + _cards())
CART_HTML = _html("Cart", '<h1>Your cart</h1><ul class="items"><li>{pname} &times; {qty}'
                  '</li></ul><form method="post" action="/checkout"><button>Checkout</button>'
                  "</form>")
ORDER_HTML = _html("Order confirmed", "<h1>Thank you, {uname}!</h1><p>Order #{order} is "
                   "confirmed; a receipt was sent to {email}.</p>")
JS_BUNDLE = "/*! demo-shop app.3f9c2d1.js */" + "".join(
    f"function m{i}(e,t){{return e.render(t,{i})}};" for i in range(4000))
PRODUCT_JSON = ('{"id":"{product}","name":"{pname}","price_cents":{price},"currency":"USD",'
                '"categories":["{category}"],"description":"{pname} from the Demo Shop catalog."}')
PRODUCT_LIST_JSON = '{"page":{page},"page_size":12,"total":48,"products":' + _compact(
    [{"id": p, "name": n, "price_cents": c, "categories": [k]} for p, n, c, k in PRODUCTS]) + "}"
ERROR_JSON = '{"error":"{message}","status":{status},"request_id":"{trace}"}'


# ---------------------------------------------------------------------------------------------
# Traffic specifications
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One kind of HTTP call; ``client``/``server`` name a service, "internet", "kubelet" or an
    external host. ``burst`` is (status, probability, median latency ms) during the outage."""

    client: str
    server: str
    method: str
    path: str
    weight: float
    median_ms: float
    sigma: float
    status: int = 200
    req_body: str = ""
    resp_body: str = "{}"
    content_type: int = 1
    p4xx: float = 0.01
    code4xx: int = 404
    p5xx: float = 0.002
    burst: tuple[int, float, float] = (0, 0.0, 0.0)


_E = Endpoint
ENDPOINTS: tuple[Endpoint, ...] = (
    _E("internet", "frontend", "GET", "/", 7, 22, 0.35, resp_body=INDEX_HTML, content_type=0,
       p4xx=0),
    _E("internet", "frontend", "GET", "/static/js/app.3f9c2d1.js", 4, 2.5, 0.5,
       resp_body=JS_BUNDLE, content_type=0, p4xx=0, p5xx=0),
    _E("internet", "frontend", "GET", "/product/{product}", 12, 38, 0.45, resp_body=PRODUCT_HTML,
       content_type=0),
    _E("internet", "frontend", "GET", "/cart", 5, 31, 0.4, resp_body=CART_HTML, content_type=0,
       p4xx=0),
    _E("internet", "frontend", "POST", "/cart/add", 3.5, 14, 0.4, status=302,
       req_body="product_id={product}&quantity={qty}", resp_body="", content_type=0,
       code4xx=400),
    _E("internet", "frontend", "POST", "/checkout", 2, 290, 0.85,
       req_body="cart_id={cart}&email={email}&currency=USD", resp_body=ORDER_HTML,
       content_type=0, code4xx=400, burst=(502, 0.55, 8300)),
    _E("frontend", "catalog", "GET", "/api/catalog/products?page={page}", 9, 12, 0.5,
       resp_body=PRODUCT_LIST_JSON, p4xx=0),
    _E("frontend", "catalog", "GET", "/api/catalog/products/{product}", 12, 5, 0.5,
       resp_body=PRODUCT_JSON, p4xx=0.02),
    _E("frontend", "cart", "GET", "/api/cart/{cart}", 5, 4, 0.5,
       resp_body='{"cart_id":"{cart}","user_id":"{user}","items":[{"product_id":"{product}",'
                 '"quantity":{qty},"price_cents":{price}}],"currency":"USD"}'),
    _E("frontend", "cart", "POST", "/api/cart/{cart}/items", 3.5, 7, 0.5, status=201,
       req_body='{"product_id":"{product}","quantity":{qty}}',
       resp_body='{"cart_id":"{cart}","items":{qty},"updated":true}', code4xx=400),
    _E("frontend", "users", "GET", "/api/users/{user}", 6, 5, 0.45,
       resp_body='{"id":"{user}","name":"{uname}","email":"{email}","tier":"member"}'),
    _E("frontend", "checkout", "POST", "/api/checkout", 2, 240, 0.85,
       req_body='{"user_id":"{user}","cart_id":"{cart}","currency":"USD","shipping":"standard"}',
       resp_body='{"order_id":{order},"status":"confirmed","total_cents":{amount},'
                 '"currency":"USD","transaction_id":"txn_{txn}"}',
       code4xx=409, burst=(502, 0.6, 8200)),
    _E("checkout", "cart", "DELETE", "/api/cart/{cart}", 1.8, 3, 0.4, status=204, resp_body=""),
    _E("checkout", "users", "GET", "/api/users/{user}/address", 2, 6, 0.45,
       resp_body='{"user_id":"{user}","name":"{uname}","street":"500 Market St",'
                 '"city":"{city}","country":"US"}'),
    _E("checkout", "payment", "POST", "/api/payment/charge", 1.9, 110, 0.5,
       req_body='{"order_id":{order},"amount_cents":{amount},"currency":"USD",'
                '"card_token":"tok_{card}"}',
       resp_body='{"transaction_id":"txn_{txn}","status":"authorized","amount_cents":{amount},'
                 '"currency":"USD"}',
       p4xx=0.03, code4xx=402, burst=(503, 0.7, 8000)),
    _E("payment", GATEWAY, "POST", "/v1/charges", 1.9, 95, 0.45,
       req_body="amount={amount}&currency=usd&source=tok_{card}&metadata%5Border_id%5D={order}",
       resp_body='{"id":"ch_{txn}","object":"charge","amount":{amount},"currency":"usd",'
                 '"paid":true,"status":"succeeded"}',
       p4xx=0.03, code4xx=402, burst=(504, 0.7, 7900)),
    _E("checkout", SHIPPING, "POST", "/v2/quotes", 2, 140, 0.5,
       req_body='{"destination":{"city":"{city}","country":"US"},"parcels":[{"items":{qty}}]}',
       resp_body='{"quote_id":"q_{span}","carrier":"UPS","service":"ground","cost_cents":899,'
                 '"eta_days":3}', code4xx=400),
    *(_E("kubelet", s, "GET", "/healthz", 2, 0.8, 0.3, resp_body="ok", content_type=0, p4xx=0,
         p5xx=0) for s in APP_SERVICES),
)


@dataclass(frozen=True)
class Query:
    """One kind of database command from ``client``; ``error`` is the alternative reply, given
    with probability ``p_error``, and during the outage with ``burst`` = (probability, ms)."""

    client: str
    cmd: str
    req: str
    resp: str
    weight: float
    median_ms: float
    sigma: float = 0.5
    error: str = ""
    p_error: float = 0.0
    burst: tuple[float, float] = (0.0, 0.0)


_Q = Query
MYSQL_QUERIES = (
    _Q("checkout", "", "SELECT id, status, total_cents, created_at FROM orders WHERE user_id = "
       "'{user}' ORDER BY created_at DESC LIMIT 20", "Resultset rows = {rows}", 2.0, 160, 0.75),
    _Q("checkout", "", "INSERT INTO orders (user_id, cart_id, total_cents, status) VALUES "
       "('{user}', '{cart}', {amount}, 'pending')", "Affected rows = 1", 2.0, 2.4, 0.4,
       error="Duplicate entry '{order}' for key 'orders.PRIMARY'", p_error=0.004),
    _Q("checkout", "", "INSERT INTO order_items (order_id, product_id, quantity, price_cents) "
       "VALUES ({order}, {product}, {qty}, {price})", "Affected rows = 1", 2.0, 1.8, 0.4),
    _Q("checkout", "", "UPDATE orders SET status = 'paid', updated_at = NOW() WHERE id = {order}",
       "Affected rows = 1", 1.8, 1.9, 0.4),
    _Q("payment", "", "SELECT balance_cents FROM wallets WHERE user_id = '{user}' FOR UPDATE",
       "Resultset rows = 1", 1.9, 1.1, 0.5,
       error="Lock wait timeout exceeded; try restarting transaction", burst=(0.45, 50_000)),
    _Q("payment", "", "INSERT INTO transactions (order_id, amount_cents, provider, status) "
       "VALUES ({order}, {amount}, 'payments.example', 'authorized')", "Affected rows = 1",
       1.9, 2.1, 0.4),
    _Q("payment", "", "UPDATE wallets SET balance_cents = balance_cents - {amount} WHERE "
       "user_id = '{user}'", "Affected rows = 1", 1.9, 1.4, 0.45,
       error="Deadlock found when trying to get lock; try restarting transaction", p_error=0.003),
)
PGSQL_QUERIES = (
    _Q("catalog", "Query", "SELECT id, name, price_cents, category FROM products WHERE id = "
       "{product}", "SELECT 1", 3.0, 0.9),
    _Q("catalog", "Query", "SELECT id, name, price_cents FROM products WHERE active ORDER BY "
       "popularity DESC LIMIT 12 OFFSET {offset}", "SELECT 12", 2.0, 4.5, 0.6),
    _Q("catalog", "Query", "SELECT product_id, quantity FROM inventory WHERE product_id = "
       "{product}", "SELECT 1", 2.0, 0.7),
    _Q("users", "Query", "SELECT id, name, email FROM users WHERE id = '{user}'", "SELECT 1",
       2.0, 0.6),
    _Q("users", "Query", "SELECT street, city, postal_code, country FROM addresses WHERE "
       "user_id = '{user}' AND is_default", "SELECT 1", 1.0, 0.8),
    _Q("users", "Query", "UPDATE users SET last_seen_at = now() WHERE id = '{user}'", "UPDATE 1",
       1.5, 1.2, error="ERROR:  canceling statement due to statement timeout", p_error=0.002),
    _Q("users", "Query", "INSERT INTO audit_log (user_id, action, at) VALUES ('{user}', 'view', "
       "now())", "INSERT 0 1", 0.6, 1.5),
)
REDIS_COMMANDS = (
    _Q("cart", "HGETALL", '{"key":"cart:{cart}"}', '["{product}","{qty}"]', 5, 0.25),
    _Q("cart", "HSET", '{"key":"cart:{cart}","field_value":[{"field":"{product}",'
       '"value":"{qty}"}]}', "1", 3.5, 0.3),
    _Q("cart", "EXPIRE", '{"key":"cart:{cart}","seconds":"604800"}', "1", 3.5, 0.2),
    _Q("cart", "DEL", '{"key":["cart:{cart}"]}', "1", 1.8, 0.2),
    _Q("catalog", "GET", '{"key":"product:{product}"}',
       '{"id":"{product}","name":"{pname}","price_cents":{price}}', 12, 0.2,
       error="<NULL>", p_error=0.15),
    _Q("catalog", "SET", '{"key":"product:{product}","value":"{\\"id\\":\\"{product}\\",'
       '\\"price_cents\\":{price}}","options":["EX 300"]}', "OK", 2, 0.3),
    _Q("frontend", "GET", '{"key":"session:{sess}"}', '{"user_id":"{user}","cart_id":"{cart}"}',
       10, 0.2, error="<NULL>", p_error=0.05),
    _Q("frontend", "EXPIRE", '{"key":"session:{sess}","seconds":"1800"}', "1", 4, 0.2),
)
SEARCH_PATH = ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local")

# ---------------------------------------------------------------------------------------------
# CPU profiles: (stack, share of the process's samples)
# ---------------------------------------------------------------------------------------------

_GO_HTTP = "runtime.goexit.abi0;net/http.(*conn).serve;net/http.serverHandler.ServeHTTP;"
_GO_RUNTIME = (
    ("runtime.goexit.abi0;runtime.gcBgMarkWorker;runtime.gcDrain;runtime.scanobject", 12),
    ("runtime.mstart;runtime.schedule;runtime.findRunnable;runtime.netpoll;runtime.epollwait", 8),
)
_JAVA = ("java.lang.Thread.run;org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run;"
         "org.apache.coyote.http11.Http11Processor.service;"
         "org.springframework.web.servlet.DispatcherServlet.doDispatch;")
_PY = ("gunicorn.workers.gthread.ThreadWorker.handle;flask.app.Flask.wsgi_app;"
       "flask.app.Flask.full_dispatch_request;")
_NODE = "node::Start;uv_run;uv__io_poll;node::InternalCallbackScope::Close;"
_MYSQL = "mysqld;start_thread;pfs_spawn_thread;handle_connection;do_command;dispatch_command;"
_PG = "postgres;PostmasterMain;ServerLoop;BackendStartup;PostgresMain;exec_simple_query;"

STACKS: dict[str, tuple[tuple[str, float], ...]] = {
    "frontend": (
        (_NODE + "express.Router.handle;server.renderProductPage;"
         "react-dom/server.renderToString", 30),
        (_NODE + "express.Router.handle;server.renderIndex;react-dom/server.renderToString", 18),
        (_NODE + "express.static;send.SendStream.pipe;fs.read", 8),
        (_NODE + "http.IncomingMessage.read;llhttp_execute", 10),
        ("node::Start;v8::internal::Heap::CollectGarbage;v8::internal::Scavenger::Process", 12),
        (_NODE + "node-fetch.fetch;net.Socket.write;uv_write", 10),
    ),
    "catalog": (
        (_GO_HTTP + "main.(*Server).getProduct;github.com/jackc/pgx/v5.(*Conn).Query;"
         "internal/poll.(*FD).Read;syscall.read", 25),
        (_GO_HTTP + "main.(*Server).listProducts;encoding/json.Marshal;"
         "encoding/json.(*encodeState).reflectValue", 35),
        (_GO_HTTP + "main.(*Server).getProduct;github.com/redis/go-redis/v9.(*Client).Get;"
         "internal/poll.(*FD).Write;syscall.write", 15),
        *_GO_RUNTIME,
    ),
    "cart": (
        (_GO_HTTP + "main.(*CartServer).GetCart;github.com/redis/go-redis/v9.(*Client).HGetAll;"
         "internal/poll.(*FD).Write;syscall.write", 30),
        (_GO_HTTP + "main.(*CartServer).AddItem;encoding/json.(*Decoder).Decode", 18),
        (_GO_HTTP + "main.(*CartServer).GetCart;encoding/json.Marshal;"
         "encoding/json.(*encodeState).reflectValue", 22),
        *_GO_RUNTIME,
    ),
    "users": (
        (_GO_HTTP + "main.(*UserServer).GetUser;github.com/jackc/pgx/v5.(*Conn).QueryRow;"
         "internal/poll.(*FD).Read;syscall.read", 40),
        (_GO_HTTP + "main.(*UserServer).GetAddress;encoding/json.Marshal", 25),
        *_GO_RUNTIME,
    ),
    "checkout": (
        (_JAVA + "com.shop.checkout.CheckoutController.placeOrder;"
         "com.shop.checkout.OrderRepository.findRecentOrders;"
         "com.mysql.cj.protocol.a.NativeProtocol.readAllResults;"
         "com.mysql.cj.protocol.a.ResultsetRowReader.read", 30),
        (_JAVA + "com.shop.checkout.CheckoutController.placeOrder;"
         "com.fasterxml.jackson.databind.ObjectMapper.writeValueAsString;"
         "com.fasterxml.jackson.core.json.UTF8JsonGenerator.writeString", 25),
        (_JAVA + "com.shop.checkout.CheckoutController.placeOrder;"
         "com.shop.checkout.PaymentClient.charge;java.net.http.HttpClient.send;"
         "sun.nio.ch.SocketDispatcher.read", 15),
        (_JAVA + "com.shop.checkout.CheckoutController.placeOrder;"
         "com.shop.checkout.OrderRepository.insertOrder;"
         "com.zaxxer.hikari.pool.HikariProxyPreparedStatement.executeUpdate", 10),
        ("java.lang.Thread.run;GCTaskThread::run;G1ParEvacuateFollowersClosure::do_void;"
         "G1ParScanThreadState::trim_queue", 14),
    ),
    "payment": (
        (_PY + "payment.api.charge;payment.gateway.Client.authorize;"
         "requests.sessions.Session.send;ssl.SSLSocket.recv_into", 30),
        (_PY + "payment.api.charge;payment.db.debit_wallet;MySQLdb.cursors.Cursor.execute", 20),
        (_PY + "payment.api.charge;json.dumps;json.encoder.JSONEncoder.encode", 15),
        ("gunicorn.arbiter.Arbiter.run;gunicorn.arbiter.Arbiter.sleep;select.select", 10),
        (_PY + "payment.api.charge;payment.gateway.Client.authorize;urllib3.util.retry.Retry."
         "sleep;time.sleep", 8),
    ),
    "mysql": (
        (_MYSQL + "mysql_execute_command;Sql_cmd_dml::execute;JOIN::exec;filesort;"
         "Filesort::sort_buffer", 40),
        (_MYSQL + "mysql_execute_command;Sql_cmd_dml::execute;ha_innobase::index_read;"
         "row_search_mvcc", 20),
        (_MYSQL + "mysql_execute_command;trans_commit_stmt;ha_commit_trans;"
         "innobase_commit;log_write_up_to", 15),
        ("mysqld;start_thread;buf_flush_page_coordinator_thread;buf_flush_do_batch", 8),
    ),
    "postgres": (
        (_PG + "PortalRun;ExecutorRun;ExecIndexScan;index_getnext_tid;_bt_next", 35),
        (_PG + "PortalRun;ExecutorRun;ExecSort;tuplesort_performsort", 20),
        (_PG + "pg_parse_query;raw_parser;base_yyparse", 15),
        ("postgres;PostmasterMain;ServerLoop;StartChildProcess;WalWriterMain;"
         "XLogBackgroundFlush", 6),
    ),
    "redis": (
        ("redis-server;main;aeMain;aeProcessEvents;readQueryFromClient;processCommand;call;"
         "hgetallCommand;addReplyBulkCBuffer", 30),
        ("redis-server;main;aeMain;aeProcessEvents;readQueryFromClient;processCommand;call;"
         "getCommand;lookupKeyRead", 30),
        ("redis-server;main;aeMain;aeProcessEvents;writeToClient;connSocketWrite;write", 20),
        ("redis-server;main;aeMain;serverCron;databasesCron;activeExpireCycle", 8),
    ),
    "coredns": (
        ("runtime.goexit.abi0;github.com/miekg/dns.(*Server).serveUDPPacket;"
         "github.com/coredns/coredns/core/dnsserver.(*Server).ServeDNS;"
         "github.com/coredns/coredns/plugin/kubernetes.(*Kubernetes).ServeDNS", 40),
        ("runtime.goexit.abi0;github.com/miekg/dns.(*Server).serveUDPPacket;"
         "github.com/coredns/coredns/core/dnsserver.(*Server).ServeDNS;"
         "github.com/coredns/coredns/plugin/forward.(*Forward).ServeDNS", 20),
        *_GO_RUNTIME,
    ),
}

# ---------------------------------------------------------------------------------------------
# Small vectorised helpers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    start: int
    end: int  # now

    @property
    def burst(self) -> tuple[int, int]:
        return self.end - BURST_AGO[0], self.end - BURST_AGO[1]

    def in_burst(self, t: np.ndarray) -> np.ndarray:
        lo, hi = self.burst
        return (t >= lo) & (t < hi)

    def ticks(self) -> np.ndarray:
        first = -(-self.start // TICK) * TICK
        return np.arange(first, self.end + 1, TICK, dtype=np.int64)


def _traffic(t: np.ndarray) -> np.ndarray:
    """Relative traffic at absolute times t: slow waves around 1."""
    slow = (t % (47 * MIN)) / (47 * MIN)
    fast = (t % (7 * MIN)) / (7 * MIN)
    return 1 + 0.25 * np.sin(2 * np.pi * slow) + 0.08 * np.sin(2 * np.pi * fast)


def _event_times(rng: np.random.Generator, win: _Window, per_hour: float) -> np.ndarray:
    """Poisson arrivals at ``per_hour`` (modulated by ``_traffic``), sorted, inside the window."""
    seconds = win.start + np.arange(-(-(win.end - win.start) // NS), dtype=np.int64) * NS
    counts = rng.poisson(per_hour / 3600 * _traffic(seconds))
    t = np.repeat(seconds, counts) + rng.integers(0, NS, int(counts.sum()))
    return np.sort(t[t <= win.end])


def _lognormal_ns(rng: np.random.Generator, median_ms: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return (median_ms * MS * np.exp(sigma * rng.standard_normal(len(median_ms)))).astype(np.int64)


def _attr(specs: tuple | list, name: str) -> np.ndarray:
    """One attribute of every spec, as an array indexed like ``specs``."""
    return np.array([getattr(s, name) for s in specs])


def _per_call(specs: tuple | list, name: str, calls: _Calls) -> np.ndarray:
    """One attribute of each call's spec."""
    return _attr(specs, name)[calls.spec]


def _hex(rng: np.random.Generator, n: int, width: int) -> pl.Series:
    """n random lowercase hex strings of an even ``width``."""
    digits = rng.bytes(n * width // 2).hex().encode()
    return pl.Series(np.frombuffer(digits, dtype=f"S{width}")).cast(pl.String)


def _lookup(values: Iterable[object], idx: np.ndarray) -> pl.Series:
    """values[idx] as a Series (cheaper than building strings in numpy)."""
    return pl.Series(list(values)).gather(idx)


_FIELD = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class _Template:
    """A text with ``{field}`` placeholders, rendered column-wise by Polars."""

    literals: tuple[str, ...]
    names: tuple[str, ...]

    @staticmethod
    @functools.lru_cache(maxsize=512)
    def parse(text: str) -> _Template:
        pieces = _FIELD.split(text)
        return _Template(tuple(pieces[0::2]), tuple(pieces[1::2]))

    def text(self, limit: int | None) -> pl.Expr:
        """The rendering, cut to ``limit`` bytes (rendering only what can appear in them)."""
        parts, used = [], 0
        for i, literal in enumerate(self.literals):
            parts.append(pl.lit(literal))
            used += len(literal)
            if (limit is not None and used >= limit) or i == len(self.names):
                break
            parts.append(pl.col(self.names[i]).cast(pl.String))
        out = pl.concat_str(parts)
        return out if limit is None else out.str.slice(0, limit)

    def size(self) -> pl.Expr:
        """The full rendering's length in bytes."""
        fixed = sum(len(s.encode()) for s in self.literals)
        lengths = [pl.col(n).cast(pl.String).str.len_bytes().cast(pl.Int64) for n in self.names]
        return pl.sum_horizontal(pl.lit(fixed, pl.Int64), *lengths)


def _render(fields: pl.DataFrame, idx: np.ndarray, templates: list[str],
            limit: int | None = None) -> tuple[pl.Series, pl.Series]:
    """Row i rendered with ``templates[idx[i]]``: (text cut to ``limit``, full size in bytes)."""
    parsed = [_Template.parse(str(t)) for t in templates]
    order = np.argsort(idx, kind="stable")
    keys, starts, counts = np.unique(idx[order], return_index=True, return_counts=True)
    names = sorted({n for k in keys for n in parsed[k].names})
    rows = fields.select(pl.int_range(pl.len()).alias("_o"), *names)[order].lazy()
    parts = [rows.slice(int(lo), int(c)).select("_o", text=parsed[k].text(limit),
                                                 size=parsed[k].size())
             for k, lo, c in zip(keys, starts, counts, strict=True)]
    if not parts:
        return pl.Series("text", [], pl.String), pl.Series("size", [], pl.Int64)
    out = pl.concat(parts).collect()
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return out["text"].gather(inverse), out["size"].gather(inverse)


def _placeholders(*templates: object) -> set[str]:
    return {n for t in templates for n in _Template.parse(str(t)).names}


def _fields(rng: np.random.Generator, t: np.ndarray, needed: set[str]) -> pl.DataFrame:
    """Per-row values for the templates: ids from bounded sets, amounts, trace ids, dates.

    Costly string columns are made only when ``needed``."""
    n = len(t)
    products = pl.DataFrame(_PRODUCT_ROWS, schema=["product", "pname", "price", "category",
                                                   "price_usd"], orient="row", strict=False)
    users = pl.DataFrame(USERS, schema=["user", "uname", "email", "city", "cart"], orient="row")
    page = rng.integers(1, 5, n)
    base = pl.concat([products[rng.integers(0, len(PRODUCTS), n)],
                      users[rng.integers(0, len(USERS), n)]], how="horizontal").with_columns(
        ua=_lookup(BROWSERS, rng.integers(0, len(BROWSERS), n)),
        qty=rng.integers(1, 5, n), page=page, offset=(page - 1) * 12,
        order=rng.integers(88_000, 100_000, n), amount=rng.integers(499, 25_999, n),
        rows=rng.integers(0, 21, n), txid=rng.integers(0, 65_536, n))
    costly = {
        "card": lambda: _hex(rng, n, 8), "txn": lambda: _hex(rng, n, 12),
        "trace": lambda: _hex(rng, n, 32), "span": lambda: _hex(rng, n, 16),
        "sess": lambda: _hex(rng, n, 10),
        "date": lambda: pl.Series(t).cast(pl.Datetime("ns")).dt.strftime(
            "%a, %d %b %Y %H:%M:%S GMT"),
    }
    return base.with_columns(**{k: make() for k, make in costly.items() if k in needed})


def _finish(table: str, cols: Mapping[str, Any]) -> pl.DataFrame:
    """The columns in the order and types of ``TABLES[table]``, sorted by time_."""
    schema = TABLES[table].schema.polars()
    frame = pl.DataFrame({n: pl.Series(n, cols[n]).cast(dtype) for n, dtype in schema.items()})
    return frame.sort("time_", maintain_order=True)


# ---------------------------------------------------------------------------------------------
# Calls between processes (the protocol tables)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calls:
    t: np.ndarray
    spec: np.ndarray
    client: np.ndarray  # process index, -1 outside the cluster
    server: np.ndarray


def _calls(cl: Cluster, rng: np.random.Generator, win: _Window, pairs: list[tuple[str, str]],
           weights: np.ndarray, per_hour: float) -> _Calls:
    """Timed calls, each of a spec drawn by weight, between running processes."""
    t = _event_times(rng, win, per_hour)
    spec = rng.choice(len(pairs), size=len(t), p=weights / weights.sum())
    client, server = np.full(len(t), -1), np.full(len(t), -1)
    for k, (c, s) in enumerate(pairs):
        m = spec == k
        if c in cl.pods:
            client[m] = cl.pick(c, t[m], rng)
        if s in cl.pods:
            server[m] = cl.pick(s, t[m], rng)
    keep = cl.alive(client, t) & cl.alive(server, t)
    return _Calls(t[keep], spec[keep], client[keep], server[keep])


def _pair_port(client: Any, server: Any) -> Any:
    """The client port of the keep-alive connection between two processes."""
    return 32_768 + (client * 7_919 + server * 104_729) % 28_000


def _prefix(cl: Cluster, rng: np.random.Generator, calls: _Calls, role: np.ndarray,
            outside: np.ndarray, encrypted: np.ndarray) -> dict[str, Any]:
    """The columns every protocol table starts with, seen from the traced side (``role``);
    ``outside`` indexes ``cl.addrs`` for the side outside the cluster."""
    c, s = calls.client, calls.server
    traced, peer = np.where(role == 2, s, c), np.where(role == 2, c, s)
    server_port = np.where(s >= 0, cl.port[np.maximum(s, 0)], 443)
    ephemeral = np.where((c >= 0) & (s >= 0), _pair_port(c, s),
                         rng.integers(32_768, 61_000, len(c)))
    return {
        "time_": calls.t, "upid": _lookup(cl.upid, traced),
        "remote_addr": cl.addrs.gather(np.where(peer >= 0, peer, outside)),
        "remote_port": np.where(role == 2, ephemeral, server_port),
        "local_addr": cl.addrs.gather(traced),
        "local_port": np.where(role == 2, server_port, ephemeral),
        "trace_role": role, "encrypted": encrypted,
    }


def _outside(cl: Cluster, rng: np.random.Generator, calls: _Calls,
             specs: tuple[Endpoint, ...]) -> np.ndarray:
    """Where the side outside the cluster is (index in ``cl.addrs``): the node a request from
    the internet came through, the kubelet's node, or an external host."""
    out = np.full(len(calls.t), -1)
    for k, ep in enumerate(specs):
        m = calls.spec == k
        if ep.client == "internet":
            out[m] = cl.node_addr(rng.integers(0, len(NODES), int(m.sum())))
        elif ep.client == "kubelet":
            out[m] = cl.node_addr(cl.node[calls.server[m]])
        elif ep.server in EXTERNAL:
            out[m] = cl.host_addr(ep.server)
    return out


def _http_outcome(rng: np.random.Generator, win: _Window, calls: _Calls,
                  specs: tuple[Endpoint, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(resp_status, latency) per call, with the outage applied."""
    p4xx, p5xx = _per_call(specs, "p4xx", calls), _per_call(specs, "p5xx", calls)
    u = rng.random(len(calls.t))
    status = np.where(u < p4xx, _per_call(specs, "code4xx", calls),
                      _per_call(specs, "status", calls))
    status = np.where((u >= p4xx) & (u < p4xx + p5xx), 500, status)
    latency = _lognormal_ns(rng, _per_call(specs, "median_ms", calls),
                            _per_call(specs, "sigma", calls))
    burst = np.array([e.burst for e in specs])[calls.spec]
    hit = win.in_burst(calls.t) & (rng.random(len(calls.t)) < burst[:, 1])
    status = np.where(hit, burst[:, 0], status).astype(np.int64)
    latency = np.where(hit, _lognormal_ns(rng, burst[:, 2], np.full(len(hit), 0.15)), latency)
    return status, latency


def _req_headers(ep: Endpoint) -> str:
    if ep.client == "kubelet":
        host = "{local_addr}:{local_port}"
    elif ep.client == "internet":
        host = "shop.example.com"
    elif ep.server in SERVICE:
        svc = SERVICE[ep.server]
        host = f"{svc.name}.{svc.namespace}.svc.cluster.local:{svc.port}"
    else:
        host = ep.server
    headers = {"Host": host, "User-Agent": CLIENT_AGENT[ep.client], "Accept": "*/*"}
    if ep.req_body:
        json_body = ep.req_body.startswith("{")
        headers["Content-Type"] = ("application/json" if json_body
                                   else "application/x-www-form-urlencoded")
        headers["Content-Length"] = "{req_size}"
    if ep.client != "kubelet":
        headers["traceparent"] = "00-{trace}-{span}-01"
    return _compact(headers)


def _resp_headers(ep: Endpoint | None) -> str:
    if ep is None:
        kind = "application/json"
    elif ep.content_type == 1:
        kind = "application/json"
    elif ep.path.endswith(".js"):
        kind = "application/javascript"
    else:
        kind = "text/plain; charset=utf-8" if ep.path == "/healthz" else "text/html; charset=utf-8"
    headers = {"Content-Type": kind, "Content-Length": "{resp_size}", "Date": "{date}"}
    if ep is not None and ep.status == 302:
        headers["Location"] = "/cart"
    return _compact(headers)


def _http(cl: Cluster, rng: np.random.Generator, win: _Window, scale: float) -> pl.DataFrame:
    specs = ENDPOINTS
    calls = _calls(cl, rng, win, [(e.client, e.server) for e in specs], _attr(specs, "weight"),
                   PER_HOUR["http"] * scale)
    external = np.isin(_attr(specs, "server"), list(EXTERNAL))[calls.spec]
    cols = _prefix(cl, rng, calls, np.where(external, 1, 2), _outside(cl, rng, calls, specs),
                   external)
    status, latency = _http_outcome(rng, win, calls, specs)
    fields = _fields(rng, calls.t, _HTTP_FIELDS).with_columns(
        local_addr=pl.Series(cols["local_addr"]), local_port=pl.Series(cols["local_port"]),
        status=pl.Series(status), message=pl.Series(status).replace_strict(REASONS))
    return _finish("http_events", cols | _http_payload(calls, status, fields) | {
        "major_version": np.ones_like(status), "minor_version": np.ones_like(status),
        "content_type": np.where(status < 400, _attr(specs, "content_type")[calls.spec], 1),
        "req_method": _lookup(_attr(specs, "method"), calls.spec), "resp_status": status,
        "resp_message": fields["message"], "latency": latency})


_HTTP_FIELDS = _placeholders(ERROR_JSON, *(v for e in ENDPOINTS for v in (
    e.path, e.req_body, e.resp_body, _req_headers(e), _resp_headers(e))))


def _http_payload(calls: _Calls, status: np.ndarray, fields: pl.DataFrame) -> dict[str, Any]:
    """Paths, bodies (cut to 512 bytes, with full sizes) and JSON headers."""
    specs = ENDPOINTS
    resp_idx = np.where(status < 400, calls.spec, len(specs))
    req_body, req_size = _render(fields, calls.spec, list(_attr(specs, "req_body")), BODY_LIMIT)
    resp_body, resp_size = _render(fields, resp_idx, [*_attr(specs, "resp_body"), ERROR_JSON],
                                   BODY_LIMIT)
    fields = fields.with_columns(req_size=req_size, resp_size=resp_size)
    path, _ = _render(fields, calls.spec, list(_attr(specs, "path")))
    req_headers, _ = _render(fields, calls.spec, [_req_headers(e) for e in specs])
    resp_headers, _ = _render(fields, resp_idx, [*map(_resp_headers, specs), _resp_headers(None)])
    return {"req_path": path, "req_headers": req_headers, "req_body": req_body,
            "req_body_size": req_size, "resp_headers": resp_headers, "resp_body": resp_body,
            "resp_body_size": resp_size}


@dataclass(frozen=True)
class _Replies:
    cols: dict[str, Any]  # the protocol prefix and latency
    spec: np.ndarray
    failed: np.ndarray
    req: pl.Series
    resp: pl.Series


def _queries(cl: Cluster, rng: np.random.Generator, win: _Window, specs: tuple[Query, ...],
             server: str, per_hour: float) -> _Replies:
    """Database commands traced on the client side, with replies or errors."""
    calls = _calls(cl, rng, win, [(q.client, server) for q in specs], _attr(specs, "weight"),
                   per_hour)
    n = len(calls.t)
    cols = _prefix(cl, rng, calls, np.ones(n, np.int64), np.full(n, -1), np.zeros(n, bool))
    burst = np.array([q.burst for q in specs])[calls.spec]
    hit = win.in_burst(calls.t) & (rng.random(n) < burst[:, 0])
    failed = hit | (rng.random(n) < _per_call(specs, "p_error", calls))
    latency = np.where(hit, _lognormal_ns(rng, burst[:, 1], np.full(n, 0.02)),
                       _lognormal_ns(rng, _per_call(specs, "median_ms", calls),
                                     _per_call(specs, "sigma", calls)))
    replies = [*_attr(specs, "resp"), *_attr(specs, "error")]
    fields = _fields(rng, calls.t, _placeholders(*_attr(specs, "req"), *replies))
    req, _ = _render(fields, calls.spec, list(_attr(specs, "req")), BODY_LIMIT)
    resp, _ = _render(fields, calls.spec + failed * len(specs), replies, BODY_LIMIT)
    return _Replies(cols | {"latency": latency}, calls.spec, failed, req, resp)


def _mysql(cl: Cluster, rng: np.random.Generator, win: _Window, scale: float) -> pl.DataFrame:
    r = _queries(cl, rng, win, MYSQL_QUERIES, "mysql", PER_HOUR["mysql"] * scale)
    return _finish("mysql_events", r.cols | {
        "req_cmd": np.full(len(r.spec), 3), "req_body": r.req,
        "resp_status": np.where(r.failed, 3, 2), "resp_body": r.resp})


def _pgsql(cl: Cluster, rng: np.random.Generator, win: _Window, scale: float) -> pl.DataFrame:
    r = _queries(cl, rng, win, PGSQL_QUERIES, "postgres", PER_HOUR["pgsql"] * scale)
    return _finish("pgsql_events", r.cols | {
        "req_cmd": _lookup(_attr(PGSQL_QUERIES, "cmd"), r.spec), "req": r.req, "resp": r.resp})


def _redis(cl: Cluster, rng: np.random.Generator, win: _Window, scale: float) -> pl.DataFrame:
    r = _queries(cl, rng, win, REDIS_COMMANDS, "redis", PER_HOUR["redis"] * scale)
    return _finish("redis_events", r.cols | {
        "req_cmd": _lookup(_attr(REDIS_COMMANDS, "cmd"), r.spec), "req_args": r.req,
        "resp": r.resp})


# ---------------------------------------------------------------------------------------------
# DNS
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    client: str
    name: str
    addr: str  # "" for NXDOMAIN
    weight: float
    median_ms: float


def _dependencies() -> list[tuple[str, str]]:
    """(client service, server) pairs of all traffic, in a stable order."""
    pairs = [(e.client, e.server) for e in ENDPOINTS]
    for specs, server in ((MYSQL_QUERIES, "mysql"), (PGSQL_QUERIES, "postgres"),
                          (REDIS_COMMANDS, "redis")):
        pairs += [(q.client, server) for q in specs]
    return [p for p in dict.fromkeys(pairs) if p[0] in SERVICE]


def _lookups(cl: Cluster) -> tuple[Lookup, ...]:
    """What each app resolves: its peers' service names, and external hosts via the search path."""
    out: list[Lookup] = []
    for client, server in _dependencies():
        if server in SERVICE:
            name = f"{server}.{SERVICE[server].namespace}.svc.cluster.local"
            out.append(Lookup(client, name, cl.cluster_ip[server], 1.0, 0.35))
            continue
        out += [Lookup(client, f"{server}.{suffix}", "", 0.5, 0.4) for suffix in SEARCH_PATH]
        out.append(Lookup(client, server, EXTERNAL[server], 0.5, 9.0))
    return tuple(out)


def _dns_templates(lk: Lookup) -> tuple[str, str, str, str]:
    """(req_header, req_body, resp_header, resp_body) of one lookup; ``{txid}`` varies."""
    found = bool(lk.addr)
    req = {"txid": -1, "qr": 0, "opcode": 0, "aa": 0, "tc": 0, "rd": 1, "ra": 0, "ad": 0,
           "cd": 0, "rcode": 0, "num_queries": 1, "num_answers": 0, "num_auth": 0, "num_addl": 0}
    resp = req | {"qr": 1, "aa": 1, "ra": 1, "rcode": 0 if found else 3,
                  "num_answers": int(found), "num_auth": 0 if found else 1}
    answers = [{"name": lk.name, "type": "A", "addr": lk.addr}] if found else []
    return (_dns_header(req), _compact({"queries": [{"name": lk.name, "type": "A"}]}),
            _dns_header(resp), _compact({"answers": answers}))


def _dns_header(header: dict[str, int]) -> str:
    return _compact(header).replace('"txid":-1', '"txid":{txid}')


def _dns(cl: Cluster, rng: np.random.Generator, win: _Window, scale: float) -> pl.DataFrame:
    specs = _lookups(cl)
    calls = _calls(cl, rng, win, [(lk.client, "coredns") for lk in specs],
                   _attr(specs, "weight"), PER_HOUR["dns"] * scale)
    n = len(calls.t)
    cols = _prefix(cl, rng, calls, np.ones(n, np.int64), np.full(n, -1), np.zeros(n, bool))
    latency = _lognormal_ns(rng, _attr(specs, "median_ms")[calls.spec], np.full(n, 0.6))
    fields = pl.DataFrame({"txid": rng.integers(0, 65_536, n)})
    templates = zip(*map(_dns_templates, specs), strict=True)
    names = ("req_header", "req_body", "resp_header", "resp_body")
    rendered = {k: _render(fields, calls.spec, list(tpl))[0]
                for k, tpl in zip(names, templates, strict=True)}
    return _finish("dns_events", cols | rendered | {"latency": latency})


# ---------------------------------------------------------------------------------------------
# Periodic tables: process_stats, conn_stats, stack_traces, proc_exit_events
# ---------------------------------------------------------------------------------------------


def _load(cl: Cluster, win: _Window, proc: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """Relative activity of each process at each tick: traffic waves, more during the outage."""
    boost = np.array([BURST_LOAD.get(s, 1.0) for s in cl.service])[np.maximum(proc, 0)]
    return _traffic(ticks)[None, :] * np.where(win.in_burst(ticks)[None, :], boost[:, None], 1.0)


def _counter(rng: np.random.Generator, per_s: np.ndarray, age0: np.ndarray, load: np.ndarray,
             alive: np.ndarray) -> np.ndarray:
    """A cumulative counter per (row, tick): the value at the window start plus noisy increments."""
    inc = per_s[:, None] * (TICK / NS) * load * rng.lognormal(0.0, 0.15, load.shape) * alive
    return (per_s * age0 / NS)[:, None].astype(np.int64) + np.cumsum(inc, axis=1).astype(np.int64)


def _cells(alive: np.ndarray, ticks: np.ndarray, keys: dict[str, pl.Series],
           grids: dict[str, np.ndarray]) -> dict[str, Any]:
    """Flatten (row, tick) grids to the cells where ``alive``: per-row keys and per-cell values."""
    row, tick = np.nonzero(alive)
    return ({"time_": ticks[tick]} | {k: v.gather(row) for k, v in keys.items()}
            | {k: v[row, tick] for k, v in grids.items()})


def _process_stats(cl: Cluster, rng: np.random.Generator, win: _Window, ticks: np.ndarray
                   ) -> pl.DataFrame:
    proc = np.arange(len(cl.upid))
    svc = [SERVICE[s] for s in cl.service]
    alive, load = cl.alive_grid(proc, ticks), _load(cl, win, proc, ticks)
    age0 = np.maximum(ticks[0] - cl.start, 0)
    cores = _attr(svc, "cpu") * NS
    io, disk = _attr(svc, "io_kib") * 1024.0, _attr(svc, "disk_kib") * 1024.0
    counter = functools.partial(_counter, rng, age0=age0, load=load, alive=alive)
    grids = {
        "major_faults": counter(np.full(len(proc), 0.02)),
        "minor_faults": counter(cores / NS * 900),
        "cpu_utime_ns": counter(0.78 * cores), "cpu_ktime_ns": counter(0.22 * cores),
        "rchar_bytes": counter(io), "wchar_bytes": counter(0.8 * io),
        "read_bytes": counter(0.3 * disk), "write_bytes": counter(disk),
    } | _process_gauges(cl, rng, win, svc, ticks)
    return _finish("process_stats", _cells(alive, ticks, {"upid": pl.Series(cl.upid)}, grids))


def _process_gauges(cl: Cluster, rng: np.random.Generator, win: _Window, svc: list[Service],
                    ticks: np.ndarray) -> dict[str, np.ndarray]:
    """Threads and memory; the process that gets OOM-killed leaks from the outage's start."""
    shape = (len(svc), len(ticks))
    rss = _attr(svc, "rss_mib")[:, None] * float(1 << 20) * rng.normal(1.0, 0.01, shape)
    doomed = (cl.end < NEVER)[:, None]
    leak_ns = np.clip(ticks - win.burst[0], 0, None)[None, :]
    slope = (LEAK_TO_BYTES - rss[:, :1]) / (BURST_AGO[0] - BURST_AGO[1])
    rss = np.where(doomed, rss + leak_ns * slope, rss).astype(np.int64)
    busy = win.in_burst(ticks)[None, :] & (cl.service == "payment")[:, None]
    threads = _attr(svc, "threads")[:, None] + rng.poisson(0.3, shape) + busy * 12
    return {"num_threads": threads, "rss_bytes": rss, "vsize_bytes": rss * 3 + (600 << 20)}


def _flows(cl: Cluster, scale: float) -> dict[tuple[str, str, int], float]:
    """Calls per second per (client, server, protocol), as the protocol tables are generated."""
    groups = [
        ([(e.client, e.server) for e in ENDPOINTS], _attr(ENDPOINTS, "weight"), "http"),
        ([(q.client, "mysql") for q in MYSQL_QUERIES], _attr(MYSQL_QUERIES, "weight"), "mysql"),
        ([(q.client, "postgres") for q in PGSQL_QUERIES], _attr(PGSQL_QUERIES, "weight"), "pgsql"),
        ([(q.client, "redis") for q in REDIS_COMMANDS], _attr(REDIS_COMMANDS, "weight"), "redis"),
    ]
    lookups = _lookups(cl)
    groups.append(([(lk.client, "coredns") for lk in lookups], _attr(lookups, "weight"), "dns"))
    rates: dict[tuple[str, str, int], float] = {}
    for pairs, weights, proto in groups:
        per_s = PER_HOUR[proto] * scale / 3600 * weights / weights.sum()
        for (client, server), rate in zip(pairs, per_s, strict=True):
            key = (client, server, PROTOCOL[proto])
            rates[key] = rates.get(key, 0.0) + float(rate)
    return rates


def _link(proc: int, peer: int, addr: str, port: int, role: int, proto: int, rate: float,
          keepalive: bool) -> dict[str, Any]:
    req, resp = CALL_BYTES[proto]
    sent, recv = (req, resp) if role == 1 else (resp, req)
    return {"proc": proc, "peer": peer, "remote_addr": addr, "remote_port": port,
            "trace_role": role, "protocol": proto, "ssl": port == 443, "rate": rate,
            "churn": 0.002 if keepalive else rate, "pool": 1 + rate if keepalive else rate * 0.05,
            "sent": float(sent), "recv": float(recv)}


def _inbound(cl: Cluster, s: int, client: str, proto: int, rate: float) -> list[dict[str, Any]]:
    """Server-side groups of process ``s``: one per client process, or per node outside."""
    if client in ("internet", "kubelet"):
        ips = [ip for _, ip in NODES] if client == "internet" else [NODES[cl.node[s]][1]]
        return [_link(s, -1, ip, 0, 2, proto, rate / len(ips), False) for ip in ips]
    return [_link(s, int(c), cl.ip[c], int(_pair_port(c, s)), 2, proto, rate, proto != 6)
            for c in cl.procs_of(client)]


def _outbound(cl: Cluster, c: int, server: str, proto: int, rate: float) -> list[dict[str, Any]]:
    """Client-side groups of process ``c``: one per server pod (whichever process runs in it)."""
    if server in EXTERNAL:
        return [_link(c, -1, EXTERNAL[server], 443, 1, proto, rate, True)]
    return [_link(c, -1, cl.ip[p], int(cl.port[p]), 1, proto, rate, proto != 6)
            for p in cl.pods[server][0]]


def _links(cl: Cluster, scale: float) -> pl.DataFrame:
    """One row per (process, peer) connection group, on both sides when both are traced."""
    rows: list[dict[str, Any]] = []
    for (client, server, proto), rate in _flows(cl, scale).items():
        per_pod = rate / (cl.n_pods(server) * cl.n_pods(client))
        for s in cl.procs_of(server):
            rows += _inbound(cl, int(s), client, proto, per_pod)
        for c in cl.procs_of(client):
            rows += _outbound(cl, int(c), server, proto, per_pod)
    key = ["proc", "peer", "remote_addr", "remote_port", "trace_role", "protocol", "ssl"]
    return pl.DataFrame(rows).group_by(key, maintain_order=True).agg(  # internet + kubelet
        pl.col("rate", "churn", "pool").sum(), pl.col("sent", "recv").first())


def _conn_stats(cl: Cluster, rng: np.random.Generator, win: _Window, ticks: np.ndarray,
                scale: float) -> pl.DataFrame:
    links = _links(cl, scale)
    col = {name: links[name].to_numpy() for name in links.columns}
    proc, peer = col["proc"], col["peer"]
    alive = cl.alive_grid(proc, ticks) & cl.alive_grid(peer, ticks)
    load = _load(cl, win, proc, ticks)
    since = np.maximum(cl.start[proc], np.where(peer >= 0, cl.start[np.maximum(peer, 0)], 0))
    age0 = np.maximum(ticks[0] - since, 0)
    counter = functools.partial(_counter, rng, age0=age0, load=load, alive=alive)
    grids = _connections(rng, col["churn"], col["pool"], age0, load, alive) | {
        "bytes_sent": counter(col["rate"] * col["sent"]),
        "bytes_recv": counter(col["rate"] * col["recv"])}
    keys = {k: links[k] for k in ("remote_addr", "remote_port", "trace_role", "protocol", "ssl")}
    keys |= {"upid": _lookup(cl.upid, proc), "addr_family": pl.Series(np.full(len(proc), 2))}
    return _finish("conn_stats", _cells(alive, ticks, keys, grids))


def _connections(rng: np.random.Generator, churn: np.ndarray, pool: np.ndarray, age0: np.ndarray,
                 load: np.ndarray, alive: np.ndarray) -> dict[str, np.ndarray]:
    """conn_open/conn_close cumulative and conn_active = open - close, all consistent."""
    active = rng.poisson(pool[:, None] * np.ones_like(load)) * alive
    step = np.diff(active, axis=1, prepend=active[:, :1])
    cycled = rng.poisson(churn[:, None] * (TICK / NS) * load) * alive
    closed0 = (churn * age0 / NS).astype(np.int64)
    conn_open = (closed0 + active[:, 0])[:, None] + np.cumsum(cycled + np.maximum(step, 0), axis=1)
    conn_close = closed0[:, None] + np.cumsum(cycled + np.maximum(-step, 0), axis=1)
    return {"conn_open": conn_open, "conn_close": conn_close, "conn_active": conn_open - conn_close}


def _stack_catalog() -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """All stacks (their index is stack_trace_id) and, per service, (ids, sample shares)."""
    stacks: list[str] = []
    per_service = {}
    for svc, entries in STACKS.items():
        ids = np.arange(len(stacks), len(stacks) + len(entries))
        stacks += [s for s, _ in entries]
        shares = np.array([w for _, w in entries], dtype=float)
        per_service[svc] = (ids, shares / shares.sum())
    return stacks, per_service


def _stack_traces(cl: Cluster, rng: np.random.Generator, win: _Window, ticks: np.ndarray
                  ) -> pl.DataFrame:
    stacks, per_service = _stack_catalog()
    parts = []
    for svc, (ids, shares) in per_service.items():
        proc = cl.procs_of(svc)
        alive = cl.alive_grid(proc, ticks)
        samples = SERVICE[svc].cpu * PROFILE_HZ * (TICK / NS) * _load(cl, win, proc, ticks) * alive
        counts = rng.poisson(samples[:, :, None] * shares[None, None, :])
        p, k, s = np.nonzero(counts)
        parts.append(pl.DataFrame({"time_": ticks[k], "upid": _lookup(cl.upid, proc[p]),
                                   "stack_trace_id": ids[s], "stack_trace": _lookup(stacks, ids[s]),
                                   "count": counts[p, k, s]}))
    return _finish("stack_traces", pl.concat(parts).to_dict())


def _proc_exit(cl: Cluster, win: _Window) -> pl.DataFrame:
    """The OOM kill: exit code 0 with signal 9, as the kernel reports a SIGKILL."""
    idx = np.flatnonzero((cl.end >= win.start) & (cl.end <= win.end))
    return _finish("proc_exit_events", {
        "time_": cl.end[idx], "upid": cl.upid[idx], "exit_code": np.zeros(len(idx), np.int64),
        "signal": np.full(len(idx), 9), "comm": cl.comm[idx]})


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _stream(seed: int, table: int) -> np.random.Generator:
    """An independent random stream per table, so that tables do not shift one another."""
    return np.random.default_rng([seed, table])


def _now(now_ns: int | None) -> int:
    return time.time_ns() if now_ns is None else int(now_ns)


def demo_tables(now_ns: int | None = None, *, seed: int = 7, minutes: int = 60,
                scale: float = 1.0) -> dict[str, pl.DataFrame]:
    """Every built-in table for the ``minutes`` before ``now_ns`` (default: now).

    ``scale`` multiplies the number of calls (≈ 60 000 HTTP requests per hour at 1.0).
    """
    if minutes <= 0 or scale < 0:
        raise ValueError("minutes must be positive and scale non-negative")
    now = _now(now_ns)
    cl, win = _cluster(now, seed), _Window(now - int(minutes * MIN), now)
    ticks = win.ticks()
    rng = functools.partial(_stream, seed)
    return {
        "http_events": _http(cl, rng(1), win, scale),
        "mysql_events": _mysql(cl, rng(2), win, scale),
        "pgsql_events": _pgsql(cl, rng(3), win, scale),
        "redis_events": _redis(cl, rng(4), win, scale),
        "dns_events": _dns(cl, rng(5), win, scale),
        "conn_stats": _conn_stats(cl, rng(6), win, ticks, scale),
        "process_stats": _process_stats(cl, rng(7), win, ticks),
        "stack_traces": _stack_traces(cl, rng(8), win, ticks),
        "proc_exit_events": _proc_exit(cl, win),
    }


def demo_metadata(now_ns: int | None = None, *, seed: int = 7) -> pl.DataFrame:
    """One row per upid: pid, start_time, cmdline, hostname, container, pod, service, namespace,
    node, deployment and replicaset (Pixie's "namespace/name" form where Pixie uses it)."""
    return _cluster(_now(now_ns), seed).meta.clone()


FORMATS = {"parquet": ".parquet", "csv": ".csv", "ndjson": ".ndjson", "arrow": ".arrow"}


def _write(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "csv":
        frame.write_csv(path)
    elif fmt == "ndjson":
        frame.write_ndjson(path)
    else:
        frame.write_ipc(path)


def write_demo(out_dir: str | Path, fmt: str = "parquet", *, now_ns: int | None = None,
               seed: int = 7, minutes: int = 60, scale: float = 1.0) -> list[Path]:
    """Write each demo table to ``out_dir/TABLE<suffix>`` and the metadata to
    ``upid_metadata<suffix>``, for a ``fmt`` of ``FORMATS``; the keywords are ``demo_tables``'s."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    now = _now(now_ns)
    frames = demo_tables(now, seed=seed, minutes=minutes, scale=scale)
    frames["upid_metadata"] = demo_metadata(now, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in frames.items():
        path = out / f"{name}{FORMATS[fmt]}"
        _write(frame, path, fmt)
        paths.append(path)
    return paths
