"""Rebuild the collectors' CO-RE BPF objects from ``bpf_src/``: ``python -m collectors.build``.

For each ``bpf_src/<name>.bpf.c`` this writes ``collectors/bpf/<name>.bpf.o`` (DWARF stripped,
BTF kept) and records the sha256 of the sources it was built from in
``collectors/bpf/manifest.json``, so a test can tell when an object is stale. ``vmlinux.h`` (the
kernel's types, ~3 MB, not committed) is generated from ``/sys/kernel/btf/vmlinux`` when missing.
Needs clang, llvm-strip and bpftool (``apt-get install clang llvm libbpf-dev bpftool``) at build
time only: the objects relocate themselves against the running kernel's BTF when loaded.

Examples::

    python -m collectors.build                  # every object
    python -m collectors.build socket_trace     # one
    python -m collectors.build --out /tmp/bpf   # somewhere else (the manifest is not touched)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["SRC_DIR", "OBJ_DIR", "build", "source_digest", "sources", "main"]

log = logging.getLogger(__name__)

#: bpf_src/ of the source tree this package lives in (absent from an installed wheel).
SRC_DIR = Path(__file__).resolve().parent.parent / "bpf_src"
#: Where the compiled objects ship, as package data.
OBJ_DIR = Path(__file__).resolve().parent / "bpf"
MANIFEST = OBJ_DIR / "manifest.json"
VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
CFLAGS = ("-O2", "-g", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86", "-Wall", "-Werror",
          "-Wno-unused-function")


class BuildError(RuntimeError):
    """A tool is missing or the compiler failed."""


def sources(name: str, src_dir: Path = SRC_DIR) -> list[Path]:
    """The files an object is built from: ``<name>.bpf.c`` and ``<name>.h`` (its record)."""
    files = [src_dir / f"{name}.bpf.c", src_dir / f"{name}.h"]
    return [f for f in files if f.exists()]


def source_digest(name: str, src_dir: Path = SRC_DIR) -> str:
    """sha256 over an object's sources, in a fixed order."""
    h = hashlib.sha256()
    for f in sources(name, src_dir):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"{name} not found: apt-get install clang llvm libbpf-dev bpftool")
    return path


def ensure_vmlinux_h(src_dir: Path = SRC_DIR) -> Path:
    """``bpf_src/vmlinux.h``, dumped from the running kernel's BTF if it is not there yet."""
    header = src_dir / "vmlinux.h"
    if not header.exists():
        if not VMLINUX_BTF.exists():
            raise BuildError(f"{VMLINUX_BTF} missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
        out = subprocess.run([_tool("bpftool"), "btf", "dump", "file", str(VMLINUX_BTF), "format",
                              "c"], check=True, capture_output=True).stdout
        header.write_bytes(out)
        log.info("wrote %s (%d bytes)", header, len(out))
    return header


def build(names: list[str] | None = None, out_dir: Path = OBJ_DIR,
          src_dir: Path = SRC_DIR) -> dict[str, Path]:
    """Compile ``names`` (default: every ``*.bpf.c``) into ``out_dir``; return name → object."""
    if names is None:
        names = sorted(p.name.removesuffix(".bpf.c") for p in src_dir.glob("*.bpf.c"))
    clang, strip = _tool("clang"), _tool("llvm-strip")
    ensure_vmlinux_h(src_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            src = src_dir / f"{name}.bpf.c"
            if not src.exists():
                raise BuildError(f"no source {src}")
            t0 = time.perf_counter()
            raw = Path(tmp) / f"{name}.bpf.o"
            # Keep the build host's paths out of the BTF line info (reproducible objects).
            cmd = [clang, *CFLAGS, f"-fdebug-prefix-map={src_dir}=bpf_src", "-I.", "-c",
                   src.name, "-o", str(raw)]
            proc = subprocess.run(cmd, cwd=src_dir, capture_output=True, text=True)
            if proc.returncode != 0:
                raise BuildError(f"clang failed on {src.name}:\n{proc.stderr}")
            obj = out_dir / f"{name}.bpf.o"
            subprocess.run([strip, "-g", str(raw), "-o", str(obj)], check=True)
            built[name] = obj
            log.info("built %s (%d bytes) in %.2f s", obj, obj.stat().st_size,
                     time.perf_counter() - t0)
    if out_dir.resolve() == OBJ_DIR.resolve():
        _update_manifest(built, src_dir)
    return built


def _update_manifest(built: dict[str, Path], src_dir: Path) -> None:
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    clang = subprocess.run([_tool("clang"), "--version"], capture_output=True, text=True)
    for name in built:
        manifest[name] = {"sources_sha256": source_digest(name, src_dir),
                          "compiler": clang.stdout.splitlines()[0].strip()}
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="objects to build (default: all)")
    parser.add_argument("--out", type=Path, default=OBJ_DIR, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        build(args.names or None, args.out)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
