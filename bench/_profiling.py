"""What the benchmarks share: a cProfile of every thread, and the peak RSS."""

from __future__ import annotations

import resource
import sys
import threading
from collections.abc import Callable
from typing import Any


class ThreadProfiles:
    """cProfile of the calling thread and of every thread started after ``start`` (the
    work runs in thread pools and Textual's workers; a plain cProfile sees only the main
    thread waiting)."""

    def __init__(self) -> None:
        import cProfile

        self._new = cProfile.Profile
        self.profiles: list[Any] = []
        self._lock = threading.Lock()

    def _in_thread(self, *_: Any) -> None:
        sys.setprofile(None)
        prof = self._new()
        with self._lock:
            self.profiles.append(prof)
        prof.enable()

    def start(self) -> None:
        threading.setprofile(self._in_thread)
        prof = self._new()
        self.profiles.append(prof)
        prof.enable()

    def run(self, fn: Callable[[], Any]) -> None:
        threading.setprofile(self._in_thread)
        main = self._new()
        self.profiles.append(main)
        try:
            main.runcall(fn)
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]

    def dump(self, path: str) -> None:
        import pstats

        threading.setprofile(None)  # type: ignore[arg-type]
        with self._lock:
            for prof in self.profiles:
                prof.create_stats()
            pstats.Stats(*self.profiles).dump_stats(path)


def rss_mb() -> float:
    """Peak RSS of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
