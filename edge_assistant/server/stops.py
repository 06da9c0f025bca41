"""Stop strings over a token stream: hold back text that may be the start of a stop string."""

from __future__ import annotations


class StopScanner:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self._pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Text that is safe to emit now; sets ``stopped`` when a stop string appeared."""
        if not self.stops:
            return piece
        self._pending += piece
        hits = [i for i in (self._pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self._pending = self._pending[:min(hits)], ""
            return out
        # Keep the longest suffix that is a prefix of some stop string.
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        out = self._pending[:len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep:]
        return out

    def flush(self) -> str:
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out
