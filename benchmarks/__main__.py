"""Run benchmarks: `python -m benchmarks NAME [ARGS...]` runs benchmarks/NAME.py's main(ARGS).

Without a name (`make benchmark`), runs them all in turn. Each prints ratios
against a baseline measured in the same run, plus peak memory; none is a test.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def _names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = _names()
    if argv and argv[0] in ("-h", "--help"):
        print("usage: python -m benchmarks [NAME [ARGS...]]\nbenchmarks: " + (", ".join(names) or "none"))
        return 0
    if not argv:
        return max([_run(name, []) for name in names], default=0)
    name, args = argv[0], argv[1:]
    if name not in names:
        print(f"no benchmark {name!r} (there are: {', '.join(names) or 'none'})", file=sys.stderr)
        return 2
    return _run(name, args)


def _run(name: str, args: list[str]) -> int:
    print(f"== benchmark {name}", flush=True)
    module = importlib.import_module(f"benchmarks.{name}")
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
