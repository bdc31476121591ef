"""File and folder names for database objects, whatever their names hold.

A legacy server configured by hand can name a table `../x`, `Bảng "tạm"`,
`a.b`, `CON` or `Mixed` next to `MIXED`. Files named after such tables (backup
part folders, Data Docs pages) must stay inside their folder, be valid on any
file system an auditor copies them to, and stay apart from each other, also on
a case-insensitive file system.

A name of upper-case ASCII letters, digits and `_` (every TS24 name) is used as
it is; any other name becomes its ASCII letters, digits, `_` and `-` (others
replaced by `_`, Vietnamese letters without their marks) plus `-` and a hash of
the exact name. So two different names never share a stem: a plain name has no
`-`, and hashed ones differ in their (lower-case hex) hash.

When every name sharing the folder is known at once, object_file_stems keeps
more names readable (lower-case ones too) and still keeps them apart.

Example::

    object_file_stem("HO_SO")              # 'HO_SO'
    object_file_stem('Bảng "tạm" 2019')    # 'Bang__tam__2019-a4baad083e8c'
    object_file_stems(["units", "Mixed", "MIXED"])
    # {'units': 'units', 'Mixed': 'Mixed-f340b6d6edef', 'MIXED': 'MIXED'}
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

_PLAIN = re.compile(r"[A-Z0-9_]{1,64}")
_READABLE = re.compile(r"[A-Za-z0-9_]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Device names Windows refuses as file names, whatever the extension.
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_SLUG_CHARS = 40
_HASH_CHARS = 12


def object_file_stem(name: str) -> str:
    """A file or folder name for the database object `name`: safe, portable and unique per name."""
    if _PLAIN.fullmatch(name) and name not in _WINDOWS_DEVICES:
        return name
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE.sub("_", folded)[:_SLUG_CHARS] or "_"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{slug}-{digest}"


def object_file_stems(names: Iterable[str]) -> dict[str, str]:
    """Stems for objects whose files share one folder, all known at once (e.g. one Data Docs site):
    a name of ASCII letters, digits and `_` is kept as it is when no other differs from it only in
    case; any other name gets object_file_stem."""
    names = list(names)
    folded = Counter(name.casefold() for name in names)
    return {
        name: name
        if _READABLE.fullmatch(name) and folded[name.casefold()] == 1 and name.upper() not in _WINDOWS_DEVICES
        else object_file_stem(name)
        for name in names
    }
