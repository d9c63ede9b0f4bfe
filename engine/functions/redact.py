"""px.redact_pii_best_effort (Pixie's pii_ops): personal data in text → placeholders.

Found and replaced, with Pixie's placeholders: e-mail addresses (<REDACTED_EMAIL>, also with a
URL-encoded @), IPv4 and IPv6 addresses (<REDACTED_IPV4>, <REDACTED_IPV6>), MAC addresses
(<REDACTED_MAC_ADDR>), IMEI numbers (<REDACTED_IMEI>, Luhn-checked), card numbers of 13-19 digits
with optional spaces or dashes (<REDACTED_CC_NUMBER>, Luhn-checked), IBANs (<REDACTED_IBAN>,
country length and ISO 7064 mod-97 checked) and US social security numbers (<REDACTED_SSN>,
area/group/serial checked). Where matches overlap the longest wins.

Unlike Pixie, matches must not run on into neighbouring digits or letters ('std::' is not an
IPv6 address, a 25-digit number is not a card number), an IBAN or card number followed by more
digits or text is still found, e-mail addresses may hold non-ASCII letters, and '=', '&', '/'
and '?' (URL delimiters) do not start an address ('to=a@b.c' keeps 'to=').

Polars first tests every row with one simple pattern (Rust regex); only rows where it matches
run through Python, once per distinct value, looking only for the kinds whose part of the simple
pattern matched. Best effort: do not rely
on it for privacy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from engine.registry import REGISTRY, ScalarFunction, sig

#: IBAN length by country (ISO 13616)
IBAN_LENGTHS = {
    "AL": 28, "AD": 24, "AT": 20, "AZ": 28, "BE": 16, "BH": 22, "BY": 28, "BA": 20, "BR": 29,
    "BG": 22, "CR": 22, "HR": 21, "CY": 28, "CZ": 24, "DK": 18, "DO": 28, "EE": 20, "FO": 18,
    "FI": 18, "FR": 27, "GE": 22, "DE": 22, "GI": 23, "GR": 27, "GL": 18, "GT": 28, "HU": 28,
    "IS": 26, "IE": 22, "IL": 23, "IT": 27, "IQ": 23, "JO": 30, "KZ": 20, "KW": 30, "LV": 21,
    "LB": 28, "LI": 21, "LT": 20, "LU": 20, "MK": 19, "MT": 31, "MR": 27, "MU": 30, "MC": 27,
    "MD": 24, "ME": 22, "NL": 18, "NO": 15, "PK": 24, "PS": 29, "PL": 28, "PT": 25, "RO": 24,
    "SM": 27, "SA": 24, "SV": 28, "RS": 22, "SK": 24, "SI": 19, "ES": 24, "SE": 24, "CH": 21,
    "TN": 24, "TR": 26, "AE": 23, "GB": 22, "VG": 24, "XK": 20, "UA": 29, "VA": 22, "QA": 29,
    "LC": 32, "ST": 25, "TL": 23, "SC": 31,
}

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})"


def luhn(digits: str) -> bool:
    """Whether the last digit is the Luhn check digit of the others."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Country code with its length, then ISO 7064 mod 97 == 1."""
    s = re.sub(r"[ -]", "", text).upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s.isalnum() or not s.isascii():
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_span(m: re.Match[str]) -> tuple[int, int] | None:
    """The IBAN at the start of a candidate (which may run on into the following text)."""
    text = m.group(0)
    want = IBAN_LENGTHS.get(text[:2].upper())
    if want is None:
        return None
    count = 0
    for i, c in enumerate(text):
        if c.isalnum():
            count += 1
            if count == want:
                end = i + 1
                nxt = m.string[m.start() + end: m.start() + end + 1]
                if nxt.isalnum() or not iban_ok(text[:end]):
                    return None
                return m.start(), m.start() + end
    return None


def _card_span(m: re.Match[str]) -> tuple[int, int] | None:
    """The longest Luhn-valid run of 13-19 digits that starts the candidate and ends at one of
    its digit groups' ends (a card number followed by other numbers is still found)."""
    text = m.group(0)
    ends = [i + 1 for i, c in enumerate(text) if c.isdigit() and (
        i + 1 == len(text) or not text[i + 1].isdigit())]
    for end in reversed(ends):
        digits = re.sub(r"[ -]", "", text[:end])
        if 13 <= len(digits) <= 19 and luhn(digits):
            return m.start(), m.start() + end
    return None


def _ssn_ok(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" \
        and serial != "0000"


def _ipv6_ok(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return any(c not in ":." for c in text)


@dataclass(frozen=True)
class _Tagger:
    token: str
    pattern: re.Pattern[str]
    #: a Rust-regex pattern (no look-arounds) that every text the pattern matches also matches:
    #: Polars tests all rows with it, and only rows where it matches reach Python
    prefilter: str
    check: Callable[[str], bool] = lambda _text: True
    #: for patterns whose match must be cut down (IBAN, cards): the real span, or None
    span: Callable[[re.Match[str]], tuple[int, int] | None] | None = None


_TAGGERS = (  # Pixie's order, which breaks ties between overlapping matches of equal length
    _Tagger("<REDACTED_IBAN>", re.compile(
        r"(?<![A-Za-z0-9])[A-Za-z]{2}[ -]?[0-9]{2}[ -]?(?:[A-Za-z0-9][ -]?){11,28}"),
        r"(?:^|[^A-Za-z0-9])[A-Za-z]{2}[ -]?[0-9]{2}[ -]?(?:[A-Za-z0-9][ -]?){11}",
        span=_iban_span),
    _Tagger("<REDACTED_EMAIL>", re.compile(r"[\w!#$%'*+\-^`{|}~.]+(?:@|%40)(?:[\w-]+\.)*[\w-]+"),
            r"[\w!#$%'*+\-^`{|}~.](?:@|%40)[\w-]"),
    _Tagger("<REDACTED_IPV6>", re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f.]*:)[0-9A-Fa-f:]"
                                          r"[0-9A-Fa-f:.]*[0-9A-Fa-f:](?![\w:])"),
            r"(?:^|[^\w:.])(?:[0-9A-Fa-f]{0,4}:){2}", check=_ipv6_ok),
    _Tagger("<REDACTED_IPV4>", re.compile(
        rf"(?<![0-9.]){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?!\.?[0-9])"),
        r"(?:^|[^0-9.])[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]"),
    _Tagger("<REDACTED_MAC_ADDR>", re.compile(
        r"(?<![0-9A-Fa-f:-])(?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f]|[-:][0-9A-Fa-f])"),
        r"(?:^|[^0-9A-Fa-f:-])(?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2}"),
    _Tagger("<REDACTED_IMEI>", re.compile(r"(?<![0-9-])[0-9]{2}-[0-9]{6}-[0-9]{6}-[0-9](?![0-9])"),
            r"(?:^|[^0-9-])[0-9]{2}-[0-9]{6}-[0-9]{6}-[0-9]", check=lambda t: luhn(t.replace("-", ""))),
    _Tagger("<REDACTED_IMEI>", re.compile(
        r"(?<![0-9-])[0-9]{2}-[0-9]{6}-[0-9]{6}-[0-9]{2}(?![0-9])"),
        r"(?:^|[^0-9-])[0-9]{2}-[0-9]{6}-[0-9]{6}-[0-9]{2}"),
    _Tagger("<REDACTED_CC_NUMBER>", re.compile(r"(?<![0-9])[0-9](?:[ -]*[0-9]){12,}"),
            r"(?:^|[^0-9])[0-9](?:[ -]*[0-9]){12}", span=_card_span),
    _Tagger("<REDACTED_SSN>", re.compile(r"(?<![0-9])[0-9]{3}[ -]+[0-9]{2}[ -]+[0-9]{4}(?![0-9])"),
            r"(?:^|[^0-9])[0-9]{3}[ -]+[0-9]{2}[ -]+[0-9]{4}", check=_ssn_ok),
)
_ALL = (1 << len(_TAGGERS)) - 1
_ANY = "|".join(f"(?:{t.prefilter})" for t in _TAGGERS)


def redact_pii(text: str, taggers: int = _ALL) -> str:
    """``text`` with each piece of personal data found replaced by its placeholder (looking
    only for the kinds whose bit is set in ``taggers``)."""
    found: list[tuple[int, int, int, str]] = []  # (start, -length, tagger rank, token)
    for rank, tagger in enumerate(_TAGGERS):
        if not taggers >> rank & 1:
            continue
        for m in tagger.pattern.finditer(text):
            span = tagger.span(m) if tagger.span is not None else (m.start(), m.end())
            if span is None or span[1] <= span[0] or not tagger.check(text[span[0]:span[1]]):
                continue
            found.append((span[0], span[0] - span[1], rank, tagger.token))
    if not found:
        return text
    found.sort()
    out, pos, i = [], 0, 0
    while i < len(found):
        start, neg, _, _ = found[i]
        if start < pos:
            i += 1
            continue
        end = start - neg
        # of the matches starting inside this one, keep the longest (the earliest on a tie)
        group = [f for f in found[i:] if f[0] < end]
        best = min(group, key=lambda f: (f[1], f[0], f[2]))
        out.append(text[pos:best[0]])
        out.append(best[3])
        pos = best[0] - best[1]
        i += len(group)
    out.append(text[pos:])
    return "".join(out)


def _redact_batch(s: pl.Series) -> pl.Series:
    todo = s.filter(s.str.contains(_ANY)).unique()  # one pass over all rows, in Rust
    if todo.is_empty():
        return s
    kinds = pl.select(pl.sum_horizontal([
        pl.lit(todo).str.contains(t.prefilter).cast(pl.Int64) * (1 << i)
        for i, t in enumerate(_TAGGERS)])).to_series()
    redacted = [redact_pii(text, k) for text, k in zip(todo.to_list(), kinds.to_list(),
                                                       strict=True)]
    return s.replace(todo, pl.Series(redacted, dtype=pl.String))


REGISTRY.add(ScalarFunction(
    "redact_pii_best_effort", sig("STRING -> STRING"),
    "The text with e-mail, IP and MAC addresses, IMEI, card (Luhn), IBAN (mod 97) and US social "
    "security numbers replaced by Pixie's placeholders ('<REDACTED_EMAIL>', '<REDACTED_IPV4>' …). "
    "Best effort only.",
    category="strings", fold=redact_pii,
    polars=lambda a: a[0].map_batches(_redact_batch, return_dtype=pl.String, is_elementwise=True),
    examples=("df.body = px.redact_pii_best_effort(df.req_body)",)))
