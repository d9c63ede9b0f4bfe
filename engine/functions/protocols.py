"""Protocol code → name functions (Pixie's protocol_ops): http_resp_message,
mysql_command_name, dns_rcode_name and protocol_name.

The tables are Pixie's: an unknown HTTP status is 'Unassigned', an unknown MySQL command or DNS
rcode is the number itself ('42'), an unknown protocol 'Invalid (42)'.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from engine.registry import REGISTRY, CallArgs, ScalarFunction, sig
from engine.types import SemanticType

HTTP_MESSAGES = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 306: "(Unused)", 307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Payload Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
    417: "Expectation Failed", 421: "Misdirected Request", 422: "Unprocessable Entity",
    423: "Locked", 424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required",
    428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    510: "Not Extended", 511: "Network Authentication Required",
}

MYSQL_COMMANDS = dict(enumerate((
    "Sleep", "Quit", "InitDB", "Query", "FieldList", "CreateDB", "DropDB", "Refresh", "Shutdown",
    "Statistics", "ProcessInfo", "Connect", "ProcessKill", "Debug", "Ping", "Time",
    "DelayedInsert", "ChangeUser", "BinlogDump", "TableDump", "ConnectOut", "RegisterSlave",
    "StmtPrepare", "StmtExecute", "StmtSendLongData", "StmtClose", "StmtReset", "SetOption",
    "StmtFetch", "Daemon", "BinlogDumpGTID", "ResetConnection")))

DNS_RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
    16: "BADVERS", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG",
    22: "BADTRUNC", 23: "BADCOOKIE",
}

#: Pixie's protocol numbers (conn_stats.protocol)
PROTOCOLS = dict(enumerate((
    "Unknown", "HTTP", "HTTP2", "MySQL", "CQL", "PGSQL", "DNS", "Redis", "NATS", "Mongo", "Kafka",
    "Mux", "AMQP", "TLS")))


def _lookup(table: dict[int, str], default: Callable[[pl.Expr], pl.Expr]):
    keys = pl.Series(list(table), dtype=pl.Int64)
    names = pl.Series(list(table.values()), dtype=pl.String)

    def build(a: CallArgs) -> pl.Expr:
        name = a[0].replace_strict(keys, names, default=default(a[0]), return_dtype=pl.String)
        return pl.when(a[0].is_null()).then(None).otherwise(name)

    return build


def _add(name: str, table: dict[int, str], default: Callable[[pl.Expr], pl.Expr],
         fold_default: Callable[[int], str], doc: str, example: str,
         semantic: SemanticType = SemanticType.NONE) -> None:
    REGISTRY.add(ScalarFunction(
        name, sig("INT64 -> STRING"), doc, category="protocols", polars=_lookup(table, default),
        semantic=lambda _types: semantic, fold=lambda code: table.get(code, fold_default(code)),
        examples=(example,)))


def _number(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String)


_add("http_resp_message", HTTP_MESSAGES, lambda e: pl.lit("Unassigned"), lambda _c: "Unassigned",
     "The reason phrase of an HTTP status code (404 → 'Not Found'; 'Unassigned' if unknown).",
     "df.message = px.http_resp_message(df.resp_status)", SemanticType.HTTP_RESP_MESSAGE)
_add("mysql_command_name", MYSQL_COMMANDS, _number, str,
     "The name of a MySQL command code (3 → 'Query'; the number itself if unknown).",
     "df.command = px.mysql_command_name(df.req_cmd)")
_add("dns_rcode_name", DNS_RCODES, _number, str,
     "The name of a DNS response code (3 → 'NXDOMAIN'; the number itself if unknown).",
     "df.rcode = px.dns_rcode_name(px.pluck_int64(df.resp_header, 'rcode'))")
_add("protocol_name", PROTOCOLS, lambda e: pl.concat_str(pl.lit("Invalid ("), _number(e),
                                                          pl.lit(")")),
     lambda c: f"Invalid ({c})",
     "The name of one of Pixie's protocol numbers, as in conn_stats.protocol (1 → 'HTTP').",
     "df.protocol_name = px.protocol_name(df.protocol)")
