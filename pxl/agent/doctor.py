"""``pxl doctor``: can this host run the collectors? One line per check, with the fix for each ✕."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Check", "run_checks", "format_checks", "collectors_ready"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _kernel() -> Check:
    release = platform.release()
    m = re.match(r"(\d+)\.(\d+)", release)
    version = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    ok = platform.system() == "Linux" and version >= (5, 8)
    return Check("kernel", ok, f"{platform.system()} {release}",
                 "the collectors need Linux 5.8 or newer (BPF ring buffers)")


def _btf() -> Check:
    ok = Path("/sys/kernel/btf/vmlinux").is_file()
    return Check("BTF", ok, "/sys/kernel/btf/vmlinux" + (" present" if ok else " missing"),
                 "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels are)")


def _tracefs() -> Check:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if Path(root, "events", "syscalls").is_dir():
            return Check("tracefs", True, f"mounted at {root}")
    return Check("tracefs", False, "not mounted",
                 "mount -t tracefs tracefs /sys/kernel/tracing")


def _privileges() -> Check:
    if os.geteuid() == 0:
        return Check("privileges", True, "running as root")
    return Check("privileges", False, f"running as uid {os.geteuid()}",
                 "run the agent as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE)")


def _memory() -> Check:
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kb = int(re.search(r"MemAvailable:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    except (OSError, AttributeError, ValueError):
        return Check("memory", False, "cannot read /proc/meminfo", "run on Linux with /proc")
    ok = kb >= 512 * 1024
    return Check("memory", ok, f"{kb // 1024:,} MiB available",
                 "free memory: the agent needs ~200 MB plus its table budget")


def _loader() -> Check:
    try:
        import pylibbpf  # noqa: F401
    except ImportError as exc:
        return Check("BPF loader", False, f"pylibbpf not importable ({exc})",
                     "pip install 'pylibbpf==0.0.6' (Python 3.11) or 0.0.7 (3.12+)")
    objects = sorted(Path(__file__).resolve().parents[2].glob("collectors/bpf/*.bpf.o"))
    if not objects:
        return Check("BPF loader", False, "no compiled BPF objects in collectors/bpf/",
                     "rebuild them: python -m collectors.build")
    return Check("BPF loader", True, f"pylibbpf and {len(objects)} BPF objects")


def run_checks() -> list[Check]:
    return [_kernel(), _btf(), _tracefs(), _privileges(), _memory(), _loader()]


def format_checks(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{'✔' if c.ok else '✕'} {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"    fix: {c.fix}")
    return "\n".join(lines)


def collectors_ready(checks: list[Check] | None = None) -> bool:
    return all(c.ok for c in (checks if checks is not None else run_checks()))
