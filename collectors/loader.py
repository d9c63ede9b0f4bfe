"""Loading the collectors' BPF objects with pylibbpf, and the lifecycle they share.

Every BPF collector goes open → configure → load → attach → poll → close (libbpf-bootstrap's
skeleton lifecycle), here as :class:`BpfCollector`:

- **open** reads ``collectors/bpf/<name>.bpf.o`` (package data) and checks the host can run it;
- **configure** sets the collector's settings, which are the object's ``const volatile`` globals;
- **load** writes those settings into the object's ``.rodata`` and hands it to pylibbpf, which
  opens, CO-RE-relocates and verifies it (pylibbpf 0.0.6 opens and loads in one call, with no
  hook in between, so the settings are patched into a private copy of the ELF file);
- **attach** attaches every program (tracepoints attach by their section name) and notes the
  offset from ``bpf_ktime_get_ns()`` to wall-clock time;
- **poll** drains the ``events`` ring buffer in one batch and decodes it;
- **close** detaches, unmaps and drops the object (links die with it, so it is kept till then).

The BPF C side and the Python side share record layouts through :class:`Record`, each written
once in its collector's module next to the C header it mirrors.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from collectors.ringbuf import RingBuffer

if TYPE_CHECKING:
    from typing import Self

__all__ = ["CollectorError", "Record", "BpfCollector", "object_path", "unavailable_reason",
           "elf_sections", "elf_symbols", "patch_rodata", "ktime_to_wall_offset_ns"]

log = logging.getLogger(__name__)
E = TypeVar("E")


#: Tries at loading an object whose verification a signal interrupted (EAGAIN).
LOAD_ATTEMPTS = 3
_EAGAIN = os.strerror(errno.EAGAIN)  # how pylibbpf's message says it


class CollectorError(RuntimeError):
    """A collector cannot open, load or attach on this host; the message says why."""


# ---- where objects are, and whether this host can run them -------------------------------------

def object_path(name: str) -> Path:
    """The compiled object ``collectors/bpf/<name>.bpf.o`` shipped with the package."""
    return Path(__file__).resolve().parent / "bpf" / f"{name}.bpf.o"


def unavailable_reason() -> str | None:
    """Why BPF collectors cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "loading BPF programs needs root"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux), needed for CO-RE"
    if not Path("/sys/kernel/tracing/events").is_dir() and \
            not Path("/sys/kernel/debug/tracing/events").is_dir():
        return "tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)"
    try:
        import pylibbpf  # noqa: F401
    except ImportError:
        return "pylibbpf is not installed"
    return None


def ktime_to_wall_offset_ns(samples: int = 5) -> int:
    """What to add to ``bpf_ktime_get_ns()`` (CLOCK_MONOTONIC) to get ns since the epoch: the
    tightest of a few back-to-back readings."""
    best = None
    for _ in range(samples):
        m0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        wall = time.time_ns()
        m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, wall - (m0 + m1) // 2)
    assert best is not None
    return best[1]


# ---- settings: const volatile globals in .rodata -----------------------------------------------

@dataclass(frozen=True)
class ElfSymbol:
    section: str
    offset: int  # into the section
    size: int


_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym


def _sections(elf: bytes) -> list[tuple[str, tuple[int, ...]]]:
    """(name, Elf64_Shdr fields) of each section of a 64-bit little-endian ELF file."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise CollectorError("not a 64-bit little-endian ELF object")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [_SHDR.unpack_from(elf, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    return [(_cstr(elf, names_at + h[0]), h) for h in headers]


def _cstr(elf: bytes, at: int) -> str:
    return elf[at:elf.index(b"\0", at)].decode()


def elf_sections(elf: bytes) -> dict[str, tuple[int, int]]:
    """Section name → (file offset, size)."""
    return {name: (h[4], h[5]) for name, h in _sections(elf)}


def elf_symbols(elf: bytes) -> dict[str, ElfSymbol]:
    """The data symbols (STT_OBJECT: globals, maps) of an ELF object, by name."""
    sections = _sections(elf)
    out: dict[str, ElfSymbol] = {}
    for _, (_n, sh_type, _f, _a, sh_offset, sh_size, sh_link, _i, _al, entsize) in sections:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        strtab_at = sections[sh_link][1][4]
        for k in range(sh_size // entsize):
            st_name, st_info, _o, shndx, value, size = _SYM.unpack_from(elf, sh_offset + k * entsize)
            if st_info & 0xF == 1 and 0 < shndx < len(sections):
                out[_cstr(elf, strtab_at + st_name)] = ElfSymbol(sections[shndx][0], value, size)
    return out


def patch_rodata(elf: bytes, values: Mapping[str, bytes]) -> bytes:
    """A copy of ``elf`` with the named ``const volatile`` globals set to ``values`` (raw bytes,
    exactly the variable's size): what libbpf's skeletons do through ``skel->rodata``."""
    symbols = elf_symbols(elf)
    rodata_at = elf_sections(elf).get(".rodata", (None, 0))[0]
    out = bytearray(elf)
    for name, raw in values.items():
        sym = symbols.get(name)
        if sym is None or sym.section != ".rodata" or rodata_at is None:
            raise CollectorError(f"the object has no const volatile setting {name!r}")
        if len(raw) != sym.size:
            raise CollectorError(f"setting {name!r} is {sym.size} bytes, got {len(raw)}")
        out[rodata_at + sym.offset:rodata_at + sym.offset + sym.size] = raw
    return bytes(out)


# ---- records shared with the C side ------------------------------------------------------------

class Record:
    """The Python mirror of one C event struct: its fields in order with their struct codes.

    The C structs are laid out with no implicit padding, so little-endian ``struct`` codes with
    no alignment ("<") give the same offsets; a test checks them against the object's BTF.

    >>> r = Record("pair", [("a", "I"), ("b", "Q")])
    >>> r.size, r.offsets
    (12, {'a': 0, 'b': 4})
    """

    def __init__(self, name: str, fields: Sequence[tuple[str, str]], tail: str | None = None):
        self.name = name
        self.fields = tuple(fields)
        self.tail = tail  # a flexible/variable-length last member (not in the struct codes)
        self.struct = struct.Struct("<" + "".join(code for _, code in self.fields))
        self.size = self.struct.size
        self.offsets: dict[str, int] = {}
        at = 0
        for fname, code in self.fields:
            self.offsets[fname] = at
            at += struct.calcsize("<" + code)
        if tail:
            self.offsets[tail] = at

    def unpack(self, buf: bytes, offset: int = 0) -> tuple[Any, ...]:
        return self.struct.unpack_from(buf, offset)

    @cached_property
    def dtype(self) -> Any:
        """The same layout as a numpy structured dtype, padded to whole 8-byte words (records
        start 8-aligned in a ring: a gather of a record's words reads as one of these; built
        once, every drain reads it).

        >>> d = Record("pair", [("a", "I"), ("b", "Q")]).dtype
        >>> d.names, d.fields["b"][1], d.itemsize
        (('a', 'b'), 4, 16)
        """
        import numpy as np

        return np.dtype({"names": [name for name, _ in self.fields],
                         "formats": [_NUMPY_CODES.get(code) or f"S{code[:-1]}"
                                     for _, code in self.fields],
                         "offsets": [self.offsets[name] for name, _ in self.fields],
                         "itemsize": -(-self.size // 8) * 8})


# struct codes → numpy type codes ("16s" becomes "S16")
_NUMPY_CODES = {"Q": "<u8", "q": "<i8", "I": "<u4", "i": "<i4", "H": "<u2", "h": "<i2",
                "B": "u1", "b": "i1"}


# ---- the lifecycle ----------------------------------------------------------------------------

class BpfCollector(Generic[E]):
    """Base of the BPF collectors: subclasses name their object and decode its records.

    Subclasses set ``name`` (the object's stem), ``settings`` (a frozen dataclass with a
    ``rodata()`` method giving the const volatile globals' bytes) and implement ``decode``.
    """

    name: ClassVar[str]
    ring_map: ClassVar[str] = "events"
    #: Every record the programs write to the ring starts with a u64 bpf_ktime_get_ns(), which
    #: lets the ring be walked in numpy (RingBuffer's ``stamped``).
    stamped: ClassVar[bool] = True
    lost_map: ClassVar[str] = "lost_events"
    settings: Any

    def __init__(self) -> None:
        self._elf: bytes | None = None
        self._obj: Any = None
        self._programs: dict[str, Any] = {}
        self._ring: RingBuffer | None = None
        self.clock_offset_ns = 0
        #: events handed out by poll()
        self.events = 0
        self._lost_before_close = 0

    # open → configure → load → attach → poll → close
    def open(self) -> Self:
        reason = unavailable_reason()
        if reason:
            raise CollectorError(f"{self.name}: {reason}")
        path = object_path(self.name)
        if not path.exists():
            raise CollectorError(f"{path} missing: run python -m collectors.build")
        self._elf = path.read_bytes()
        return self

    def configure(self, **changes: Any) -> Self:
        """Change settings (only before load: they become constants in the verified code)."""
        from dataclasses import replace

        if self._obj is not None:
            raise CollectorError(f"{self.name}: settings are fixed once loaded")
        self.settings = replace(self.settings, **changes)
        return self

    def load(self) -> Self:
        import pylibbpf

        if self._elf is None:
            self.open()
        assert self._elf is not None
        elf = patch_rodata(self._elf, self.settings.rodata())
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="pxl-bpf-") as tmp:
            path = Path(tmp) / f"{self.name}.bpf.o"  # the name libbpf gives the object
            path.write_bytes(elf)
            for attempt in range(LOAD_ATTEMPTS):
                obj = pylibbpf.BpfObject(str(path))
                try:
                    obj.load()
                    break
                except pylibbpf.BpfException as exc:
                    # The verifier gives up with EAGAIN when a signal arrives while it works (a
                    # child exiting, a profiler's ptrace stops); that is worth another try.
                    if _EAGAIN in str(exc) and attempt + 1 < LOAD_ATTEMPTS:
                        log.debug("%s: load interrupted (%s), trying again", self.name, exc)
                        continue
                    raise CollectorError(f"{self.name}: load failed (the verifier log, if any, "
                                         f"is on stderr): {exc}") from exc
        self._obj = obj
        ring = obj.get_map(self.ring_map)
        self._ring = RingBuffer(ring.get_fd(), ring.get_max_entries(), stamped=self.stamped)
        log.debug("%s: loaded in %.0f ms", self.name, (time.perf_counter() - t0) * 1e3)
        return self

    def attach(self) -> Self:
        import pylibbpf

        if self._obj is None:
            self.load()
        try:
            self._programs = dict(self._obj.attach_all())
        except pylibbpf.BpfException as exc:
            self.close()
            raise CollectorError(f"{self.name}: attach failed: {exc}") from exc
        self.clock_offset_ns = ktime_to_wall_offset_ns()
        return self

    def start(self) -> Self:
        """open → load → attach, with the current settings."""
        return self.open().load().attach()

    def poll(self, timeout_ms: int = 0, max_events: int | None = None) -> list[E]:
        """The events that arrived, as one batch; waits up to ``timeout_ms`` if there are none."""
        if self._ring is None:
            raise CollectorError(f"{self.name}: poll() before load()")
        blob, starts, lengths = self._consume(max_events)
        if not len(starts) and timeout_ms:
            self._ring.wait(timeout_ms)
            blob, starts, lengths = self._consume(max_events)
        batch = self.decode([blob[a:a + n] for a, n in zip(starts.tolist(), lengths.tolist(),
                                                            strict=True)])
        self.events += len(batch)
        return batch

    def _consume(self, max_records: int | None) -> tuple[bytes, Any, Any]:
        """One drain: the records ready now as ``RingBuffer.consume_raw`` gives them
        (a collector with more than one ring merges them here)."""
        assert self._ring is not None
        return self._ring.consume_raw(max_records)

    def close(self) -> None:
        if self._obj is not None:
            self._lost_before_close = self.lost  # the counter dies with the object
        for prog in self._programs.values():
            prog.detach()
        self._programs = {}
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self._obj = None

    def __enter__(self) -> Self:
        """Starts whatever of open → load → attach has not happened yet."""
        if self._obj is None:
            return self.start()
        return self if self._programs else self.attach()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # what subclasses provide
    def decode(self, records: list[bytes]) -> list[E]:
        raise NotImplementedError

    # counters and maps
    @property
    def lost(self) -> int:
        """Records the kernel refused (the ring buffer was full, or since Linux 6.15 its lock
        was not taken in time); after ``close()``, the count at close."""
        if self._obj is None:
            return self._lost_before_close
        value = self._obj.get_map(self.lost_map).lookup(0)
        return int(value or 0)

    @property
    def ring(self) -> RingBuffer:
        """The ring buffer the events arrive through (for its positions and counters)."""
        if self._ring is None:
            raise CollectorError(f"{self.name}: not loaded")
        return self._ring

    @property
    def attached(self) -> list[str]:
        return sorted(self._programs)

    def map(self, name: str) -> Any:
        """A pylibbpf map of the loaded object."""
        if self._obj is None:
            raise CollectorError(f"{self.name}: not loaded")
        return self._obj.get_map(name)
