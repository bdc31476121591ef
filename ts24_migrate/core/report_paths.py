"""Name files in reports from the inventory's folder, never by the pipeline host's absolute paths.

A report travels: an auditor opens it on another machine, years later. A path
such as `/srv/ts24/work/ledger/hn-01.jsonl` says nothing there and tells about
the host; `work/ledger/hn-01.jsonl` (the work folder) or
`backups/hn-01/<backup-id>` (the backup folder) says where to look in the
copy an auditor is handed. Folders inside the inventory's folder are named by
their path from it; a work or backup folder elsewhere is named `work/` or
`backups/`.

`PathNames.scrub` rewrites every string of a report's data (messages
included), and `scrub_text` the rendered HTML or Markdown, so no section, the
ones added later included, can leak a host path.

Example::

    names = PathNames.for_inventory(app.inventory)
    names.name("/srv/ts24/work/ledger/hn-01.jsonl")      # 'work/ledger/hn-01.jsonl'
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Inventory

_AFTER_A_PATH = r"(?![\w.\-/])"  # the root ends here: not the start of a longer folder name


def _absolute(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(str(path)))


@dataclass(frozen=True)
class PathNames:
    """(absolute root, its name) pairs; the longest root wins. Name "" is the inventory's folder."""

    roots: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, roots: Iterable[tuple[str | Path, str]]) -> PathNames:
        found: dict[str, str] = {}
        for root, name in roots:
            for form in {_absolute(root), os.path.realpath(str(root))}:
                if form != os.sep:
                    found.setdefault(form, name)
        return cls(tuple(sorted(found.items(), key=lambda item: -len(item[0]))))

    @classmethod
    def for_inventory(cls, inventory: Inventory, recorded: Mapping[str, str] | None = None) -> PathNames:
        """The inventory's folders; `recorded` adds those a run recorded (see `recordable`), so a
        report rebuilt on another machine still names the pipeline host's files."""
        return cls.of([*_named(recorded or {}), *_named(cls.recordable(inventory))])

    @classmethod
    def for_inventory_folders(cls, recorded: Mapping[str, str] | None) -> PathNames:
        """The folders a run recorded (`recordable`), without an inventory at hand."""
        return cls.of(_named(recorded or {}))

    @staticmethod
    def recordable(inventory: Inventory) -> dict[str, str]:
        """The inventory's folders as a run records them (kept in the control store, never in a report)."""
        return {
            "inventory": _absolute(inventory.base_dir),
            "work": _absolute(inventory.work_path),
            "backups": _absolute(inventory.backup_path),
        }

    def merged(self, other: PathNames) -> PathNames:
        return PathNames.of([*self.roots, *other.roots])

    def name(self, path: str | Path) -> str:
        return self.scrub_text(_absolute(path)) if os.path.isabs(str(path)) else str(path)

    def scrub_text(self, text: str) -> str:
        for root, name in self.roots:
            for form in {root, html.escape(root, quote=True)}:
                if form not in text:
                    continue
                text = text.replace(form + "/", f"{name}/" if name else "")
                text = re.sub(re.escape(form) + _AFTER_A_PATH, name or ".", text)
        return text

    def scrub(self, value: Any) -> Any:
        """`value` (dicts, lists, strings) with every root in its strings replaced by its name."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, Mapping):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(item) for item in value]
        if isinstance(value, Path):
            return self.name(value)
        return value


def _named(folders: Mapping[str, str]) -> list[tuple[str, str]]:
    """The inventory's folder is "", the work and backup folders are named from it when inside it."""
    base = folders.get("inventory")
    named = []
    for kind in ("work", "backups"):
        folder = folders.get(kind)
        if not folder:
            continue
        inside = base is not None and (folder == base or folder.startswith(base.rstrip(os.sep) + os.sep))
        named.append((folder, Path(os.path.relpath(folder, base)).as_posix() if inside else kind))
    if base:
        named.append((base, ""))
    return named
