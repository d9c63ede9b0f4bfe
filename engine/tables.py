"""The built-in tables: one schema registry for the store, the compiler, the REPL and docs/.

Names and columns follow Pixie's so that its users' scripts carry over. Every column has a data
type, a semantic type and a one-line description.

>>> TABLES["http_events"].schema["latency"]
ColumnType(dtype=<DataType.INT64: 'INT64'>, semantic=<SemanticType.DURATION_NS: 'duration_ns'>)
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import ColumnType, DataType, Schema, SemanticType

__all__ = ["TableSpec", "TABLES", "semantic_of"]

B, INT, F, S, T = (DataType.BOOLEAN, DataType.INT64, DataType.FLOAT64, DataType.STRING,
                   DataType.TIME64NS)
St = SemanticType


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[tuple[str, DataType, SemanticType, str], ...]

    @property
    def schema(self) -> Schema:
        return Schema(tuple((n, ColumnType(d, s)) for n, d, s, _ in self.columns))

    def describe(self, column: str) -> str:
        for n, _, _, doc in self.columns:
            if n == column:
                return doc
        return ""


_PROTOCOL_PREFIX = (
    ("time_", T, St.TIME, "When the request was seen"),
    ("upid", S, St.UPID, "The traced process (host id, pid, start time)"),
    ("remote_addr", S, St.IP_ADDRESS, "IP address of the peer"),
    ("remote_port", INT, St.PORT, "Port of the peer"),
    ("local_addr", S, St.IP_ADDRESS, "IP address of this side"),
    ("local_port", INT, St.PORT, "Port of this side"),
    ("trace_role", INT, St.NONE, "1 = traced as client, 2 = traced as server"),
    ("encrypted", B, St.NONE, "Whether the traffic was TLS (captured in plaintext)"),
)
_LATENCY = (("latency", INT, St.DURATION_NS, "Time from request to response, in ns"),)


def _protocol(name: str, description: str, *cols: tuple) -> TableSpec:
    return TableSpec(name, description, _PROTOCOL_PREFIX + tuple(cols) + _LATENCY)


_SPECS = (
    _protocol(
        "http_events", "HTTP/1.x and HTTP/2 requests paired with their responses",
        ("major_version", INT, St.NONE, "HTTP major version"),
        ("minor_version", INT, St.NONE, "HTTP minor version"),
        ("content_type", INT, St.NONE, "0 unknown, 1 JSON, 2 gRPC"),
        ("req_headers", S, St.NONE, "Request headers as a JSON object"),
        ("req_method", S, St.HTTP_REQ_METHOD, "Request method"),
        ("req_path", S, St.NONE, "Request path with query string"),
        ("req_body", S, St.NONE, "Request body, truncated"),
        ("req_body_size", INT, St.BYTES, "Full size of the request body"),
        ("resp_headers", S, St.NONE, "Response headers as a JSON object"),
        ("resp_status", INT, St.HTTP_RESP_STATUS, "Response status code"),
        ("resp_message", S, St.HTTP_RESP_MESSAGE, "Response reason phrase"),
        ("resp_body", S, St.NONE, "Response body, truncated"),
        ("resp_body_size", INT, St.BYTES, "Full size of the response body"),
    ),
    _protocol(
        "mysql_events", "MySQL commands paired with their responses",
        ("req_cmd", INT, St.NONE, "MySQL command code (3 = COM_QUERY)"),
        ("req_body", S, St.NONE, "Query text or statement"),
        ("resp_status", INT, St.NONE, "0 unknown, 1 none, 2 OK, 3 error"),
        ("resp_body", S, St.NONE, "Response summary or error message"),
    ),
    _protocol(
        "pgsql_events", "PostgreSQL queries paired with their responses",
        ("req_cmd", S, St.NONE, "Message type (Query, Parse, Execute …)"),
        ("req", S, St.NONE, "Query text"),
        ("resp", S, St.NONE, "Response summary or error"),
    ),
    _protocol(
        "redis_events", "Redis commands paired with their replies",
        ("req_cmd", S, St.NONE, "Command name"),
        ("req_args", S, St.NONE, "Command arguments as JSON"),
        ("resp", S, St.NONE, "Reply"),
    ),
    _protocol(
        "dns_events", "DNS queries paired with their answers",
        ("req_header", S, St.NONE, "Query header as JSON"),
        ("req_body", S, St.NONE, "Questions as JSON"),
        ("resp_header", S, St.NONE, "Answer header as JSON (rcode …)"),
        ("resp_body", S, St.NONE, "Answers as JSON"),
    ),
    TableSpec("conn_stats", "Connection counters per process and peer (cumulative)", (
        ("time_", T, St.TIME, "When the counters were read"),
        ("upid", S, St.UPID, "The process owning the connections"),
        ("remote_addr", S, St.IP_ADDRESS, "IP address of the peer"),
        ("remote_port", INT, St.PORT, "Port of the peer"),
        ("trace_role", INT, St.NONE, "1 = client, 2 = server"),
        ("addr_family", INT, St.NONE, "2 = IPv4, 10 = IPv6"),
        ("protocol", INT, St.NONE, "Inferred protocol (1 HTTP, 3 MySQL, 5 PostgreSQL, 6 DNS, 7 Redis)"),
        ("ssl", B, St.NONE, "Whether TLS was seen"),
        ("conn_open", INT, St.NONE, "Connections opened so far"),
        ("conn_close", INT, St.NONE, "Connections closed so far"),
        ("conn_active", INT, St.NONE, "Connections open now"),
        ("bytes_sent", INT, St.BYTES, "Bytes sent so far"),
        ("bytes_recv", INT, St.BYTES, "Bytes received so far"),
    )),
    TableSpec("process_stats", "Per-process CPU, memory and I/O counters (cumulative)", (
        ("time_", T, St.TIME, "When /proc was read"),
        ("upid", S, St.UPID, "The process"),
        ("major_faults", INT, St.NONE, "Major page faults so far"),
        ("minor_faults", INT, St.NONE, "Minor page faults so far"),
        ("cpu_utime_ns", INT, St.DURATION_NS, "User CPU time so far"),
        ("cpu_ktime_ns", INT, St.DURATION_NS, "Kernel CPU time so far"),
        ("num_threads", INT, St.NONE, "Threads now"),
        ("vsize_bytes", INT, St.BYTES, "Virtual memory size"),
        ("rss_bytes", INT, St.BYTES, "Resident memory"),
        ("rchar_bytes", INT, St.BYTES, "Bytes read by read-like calls so far"),
        ("wchar_bytes", INT, St.BYTES, "Bytes written by write-like calls so far"),
        ("read_bytes", INT, St.BYTES, "Bytes read from storage so far"),
        ("write_bytes", INT, St.BYTES, "Bytes written to storage so far"),
    )),
    TableSpec("stack_traces", "Sampled CPU stacks per process (99 Hz)", (
        ("time_", T, St.TIME, "End of the sampling window"),
        ("upid", S, St.UPID, "The sampled process"),
        ("stack_trace_id", INT, St.NONE, "Id of the stack within the window"),
        ("stack_trace", S, St.NONE, "Frames, outermost first, joined by ';'"),
        ("count", INT, St.NONE, "Samples of this stack in the window"),
    )),
    TableSpec("proc_exit_events", "Processes that exited", (
        ("time_", T, St.TIME, "When the process exited"),
        ("upid", S, St.UPID, "The process"),
        ("exit_code", INT, St.NONE, "Exit code"),
        ("signal", INT, St.NONE, "Terminating signal, 0 if none"),
        ("comm", S, St.NONE, "Process name"),
    )),
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _SPECS}


def semantic_of(table: str, column: str) -> SemanticType:
    """The semantic type of a column of a built-in table, or of a well-known column name."""
    spec = TABLES.get(table)
    if spec is not None:
        for n, _, s, _ in spec.columns:
            if n == column:
                return s
    if column == "time_":
        return SemanticType.TIME
    if column == "upid":
        return SemanticType.UPID
    return SemanticType.NONE
