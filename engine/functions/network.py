"""Network functions (Pixie's net_ops): px.cidrs_contain_ip.

Pixie's ``px.cidrs_contain_ip(cidrs, ip)`` takes the CIDR ranges as a JSON array string; pxl
also takes a constant list (``['10.0.0.0/8', '192.168.0.0/16']``). The ranges must be a constant
here (Pixie also reads them from a column) and a malformed range is a compile error (Pixie skips
it). IPv4 addresses against IPv4 ranges are checked with Polars integer arithmetic; ranges with
IPv6 fall back to Python's ipaddress, once per distinct address. An IPv4 address written as
IPv4-mapped IPv6 (::ffff:10.0.0.1) counts as the IPv4 address.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import polars as pl

from engine.functions.helpers import per_value
from engine.registry import REGISTRY, ArgumentError, CallArgs, ScalarFunction, sig

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_IPV4 = r"^(?i:::ffff:)?(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$"


def _ranges(value: Any) -> list[str]:
    """The CIDR strings of a constant: a list, or a JSON array string; ValueError if neither."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("the CIDR ranges must be a JSON array of strings or a list, e.g. "
                             "['10.0.0.0/8']") from None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("the CIDR ranges must be a JSON array of strings or a list, e.g. "
                         "['10.0.0.0/8']")
    return list(value)


def _networks(value: Any) -> list[Network]:
    out = []
    for text in _ranges(value):
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not a CIDR range such as '10.0.0.0/8'") from None
    return out


def _normalize(consts: list[Any]) -> list[Any]:
    if consts[0] is not None:
        try:
            _networks(consts[0])
        except ValueError as exc:
            raise ArgumentError(0, str(exc)) from None
    return consts


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _contains(networks: list[Network], text: str) -> bool:
    addr = _address(text)
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


def _cidrs_contain_ip(a: CallArgs) -> pl.Expr:
    networks = _networks(a.consts[0])
    ip = a[1]
    if not all(n.version == 4 for n in networks):
        return per_value(ip, lambda text: _contains(networks, text), pl.Boolean())
    octets = ip.str.extract_groups(_IPV4)
    parts = [octets.struct.field(str(i)).cast(pl.Int64) for i in range(1, 5)]
    valid = pl.all_horizontal([p <= 255 for p in parts])
    value = parts[0] * 16_777_216 + parts[1] * 65_536 + parts[2] * 256 + parts[3]
    inside = pl.lit(False)
    for n in networks:
        size = 2 ** (32 - n.prefixlen)
        inside = inside | (value // size == int(n.network_address) // size)
    return pl.when(ip.is_null()).then(None).otherwise((valid & inside).fill_null(False))


def _fold(cidrs: Any, ip: str) -> bool:
    args = CallArgs([pl.lit(None), pl.lit(ip, dtype=pl.String)], [], [cidrs, ip])
    return pl.select(_cidrs_contain_ip(args).alias("v")).item()


REGISTRY.add(ScalarFunction(
    "cidrs_contain_ip", sig("STRING, STRING -> BOOLEAN"),
    "Whether the IP address (second argument) lies in any of the CIDR ranges (first argument, a "
    "constant JSON array string or list, as in Pixie); false for text that is not an address.",
    category="network", polars=_cidrs_contain_ip, literal_args=(0,), normalize=_normalize,
    fold=_fold,
    examples=("df.internal = px.cidrs_contain_ip(['10.0.0.0/8', '192.168.0.0/16'], "
              "df.remote_addr)",)))
