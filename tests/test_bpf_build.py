"""The BPF objects: built from the current sources, their records mirrored exactly in Python,
their settings where the loader writes them, and a rebuild from source that works."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from collectors import build
from collectors.events import ConnEvent, ConnKey, DataEvent, Direction, Role
from collectors.loader import CollectorError, elf_sections, elf_symbols, object_path, patch_rodata
from collectors.proc_events import PROCESS_EVENT, ProcEventsSettings
from collectors.socket_trace import (
    CONN_EVENT,
    DATA_EVENT,
    EVENT_CLOSE,
    EVENT_DATA,
    MAX_CAPTURE,
    SocketTraceSettings,
    decode,
)

NAMES = ["proc_events", "socket_trace"]
RECORDS = {"socket_trace": [DATA_EVENT, CONN_EVENT], "proc_events": [PROCESS_EVENT]}
SETTINGS = {"socket_trace": SocketTraceSettings(), "proc_events": ProcEventsSettings()}


def test_every_source_has_an_object():
    assert sorted(p.name.removesuffix(".bpf.c") for p in build.SRC_DIR.glob("*.bpf.c")) == NAMES
    for name in NAMES:
        assert object_path(name).exists()


@pytest.mark.parametrize("name", NAMES)
def test_objects_are_built_from_the_current_sources(name):
    manifest = json.loads(build.MANIFEST.read_text())
    assert manifest[name]["sources_sha256"] == build.source_digest(name), \
        f"bpf_src/{name}.* changed since collectors/bpf/{name}.bpf.o was built: " \
        "run python -m collectors.build"


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
@pytest.mark.parametrize("name", NAMES)
def test_python_records_mirror_the_btf_of_the_object(name):
    dump = subprocess.run(["bpftool", "-j", "btf", "dump", "file", str(object_path(name))],
                          check=True, capture_output=True, text=True).stdout
    structs = {t["name"]: t for t in json.loads(dump)["types"] if t["kind"] == "STRUCT"}
    for record in RECORDS[name]:
        btf = structs[record.name]
        assert {m["name"]: m["bits_offset"] // 8 for m in btf["members"]} == record.offsets
        tail = MAX_CAPTURE if record.tail else 0
        assert btf["size"] == record.size + tail


@pytest.mark.parametrize("name", NAMES)
def test_settings_are_const_volatile_globals(name):
    elf = object_path(name).read_bytes()
    symbols = elf_symbols(elf)
    values = SETTINGS[name].rodata()
    for var, raw in values.items():
        assert symbols[var].section == ".rodata" and symbols[var].size == len(raw)
    patched = patch_rodata(elf, values)
    assert len(patched) == len(elf)
    with pytest.raises(CollectorError, match="no const volatile setting"):
        patch_rodata(elf, {"no_such_setting": b"\0"})


def test_patch_writes_the_bytes_of_a_setting():
    elf = object_path("socket_trace").read_bytes()
    sym = elf_symbols(elf)["capture_bytes"]
    at = elf_sections(elf)[".rodata"][0] + sym.offset
    patched = patch_rodata(elf, {"capture_bytes": (123).to_bytes(4, "little")})
    assert int.from_bytes(elf[at:at + 4], "little") == MAX_CAPTURE  # the C default
    assert int.from_bytes(patched[at:at + 4], "little") == 123
    assert patched[:at] == elf[:at] and patched[at + 4:] == elf[at + 4:]
    with pytest.raises(CollectorError, match="is 4 bytes"):
        patch_rodata(elf, {"capture_bytes": b"\0"})


def test_decode_records():
    data = DATA_EVENT.struct.pack(1_000, EVENT_DATA, 42, 43, 7, 9, 1, 5000, 3, 0) + b"GET"
    conn = CONN_EVENT.struct.pack(2_000, EVENT_CLOSE, 42, 43, 7, 9, 2, socket.AF_INET6, 80,
                                  5555, 0, socket.inet_pton(socket.AF_INET6, "::1"),
                                  socket.inet_pton(socket.AF_INET6, "fe80::1"), 10, 20)
    assert decode([data, conn], clock_offset_ns=10) == [
        DataEvent(1_010, ConnKey(42, 7, 9), Direction.INGRESS, b"GET", 5000),
        ConnEvent(2_010, ConnKey(42, 7, 9), False, Role.SERVER, socket.AF_INET6, "::1", 80,
                  "fe80::1", 5555, 10, 20),
    ]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="capture_bytes"):
        SocketTraceSettings(capture_bytes=MAX_CAPTURE + 1)
    with pytest.raises(ValueError, match="ports"):
        SocketTraceSettings(ports=(0,))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("clang") is None or not build.VMLINUX_BTF.exists(),
                    reason="rebuilding needs clang and the kernel's BTF")
def test_rebuild_from_source(tmp_path: Path):
    src = tmp_path / "bpf_src"
    src.mkdir()
    for f in build.SRC_DIR.iterdir():
        if f.name != "vmlinux.h" and f.suffix in (".c", ".h"):
            shutil.copy(f, src / f.name)
    built = build.build(out_dir=tmp_path / "out", src_dir=src)
    assert sorted(built) == NAMES
    for name, obj in built.items():
        assert set(elf_symbols(obj.read_bytes())) == set(elf_symbols(object_path(name).read_bytes()))
    assert (src / "vmlinux.h").stat().st_size > 1_000_000


@pytest.mark.parametrize("name", ["collectors.loader"])
def test_docstring_examples(name):
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(name)).failed == 0
