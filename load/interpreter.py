"""Process-wide interpreter settings a load changes while it runs, and puts back after.

Two of CPython's settings are tuned for interactive programs, not for a load
that moves a million rows through Python:

- the thread switch interval (5 ms): the merge thread mostly waits on the
  database and then needs the GIL back for a moment, while the read-ahead
  thread (load.prefetch) holds it for Python work; every statement's answer
  waited up to 5 ms to be picked up, which for a chunk's dozen statements
  cost more than the statements themselves. While a load runs: 0.5 ms.
- the garbage collector's thresholds (700, 10, 10): a load allocates
  millions of short-lived objects (row tuples, values) next to a few hundred
  thousand long-lived ones (chunks read ahead, the transform's key stores),
  and the collector kept scanning the long-lived ones: at 1.2M legacy rows it
  took a sixth of the read and transform time. The load makes no reference
  cycles to speak of, so collecting a hundred times less often costs no
  memory. While a load runs: (100000, 50, 100).

Both are settings of the whole process (other threads see them too), so they
are counted: the first user changes them, the last one puts them back.

Example::

    with fewer_collections():
        ...   # read, transform, merge
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SWITCH_SECONDS = 0.0005
GC_THRESHOLDS = (100_000, 50, 100)


class _SharedSetting:
    """A process-wide setting changed while at least one user holds it."""

    def __init__(self, read: Callable[[], Any], write: Callable[[Any], None], during: Callable[[Any], Any]):
        self._read, self._write, self._during = read, write, during
        self._lock = threading.Lock()
        self._users = 0
        self._saved: Any = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = self._read()
                self._write(self._during(self._saved))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._write(self._saved)


short_switch_interval = _SharedSetting(
    sys.getswitchinterval, sys.setswitchinterval, lambda saved: min(saved, SWITCH_SECONDS)
).held
fewer_collections = _SharedSetting(
    gc.get_threshold,
    lambda thresholds: gc.set_threshold(*thresholds),
    lambda saved: tuple(max(a, b) for a, b in zip(saved, GC_THRESHOLDS)),
).held
