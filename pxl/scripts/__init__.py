"""Bundled PxL scripts, run by name: ``pxl run px/http_data``.

Each is a file ``pxl/scripts/<namespace>/<name>.pxl`` whose first comment line is its summary;
a Pixie vis.json may sit beside it as ``<name>.vis.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BundledScript", "bundled", "find", "vis_path_for"]

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BundledScript:
    name: str  # e.g. "px/http_data"
    path: Path

    @property
    def summary(self) -> str:
        for line in self.path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text.startswith("#") and not text.startswith("#px:"):
                return text.lstrip("# ").strip()
            if text:
                break
        return ""


def bundled() -> list[BundledScript]:
    """Every bundled script, by name."""
    return sorted((BundledScript(f"{p.parent.name}/{p.stem}", p) for p in ROOT.glob("*/*.pxl")),
                  key=lambda s: s.name)


def find(name: str) -> BundledScript | None:
    name = name.removesuffix(".pxl")
    return next((s for s in bundled() if s.name == name), None)


def vis_path_for(script: Path) -> Path | None:
    """A Pixie vis.json beside a script: ``<stem>.vis.json``, or ``vis.json`` in its folder."""
    for candidate in (script.with_suffix(".vis.json"), script.parent / "vis.json"):
        if candidate.is_file():
            return candidate
    return None
