"""The engine's timer table: one instance per named timer, as the original's E_queue keeps.

Queueing a timer that is already queued reschedules it. Deadlines are kept in whole
microseconds (the original's `sp_time`), so 0.25 + 0.25 lands exactly on 0.5 and ties fire in
the order they were queued, as they do in the original's sorted event queue.
"""

from __future__ import annotations

from collections.abc import Callable

_NEVER = 1 << 62


class Timers:
    def __init__(self) -> None:
        self._due: dict[str, tuple[int, int]] = {}  # name -> (deadline_us, queue order)
        self._handlers: dict[str, Callable[[], None]] = {}
        self._order = 0
        self._earliest = _NEVER  # a lower bound of every deadline (exact when not stale)
        self._stale = False

    def register(self, name: str, handler: Callable[[], None]) -> None:
        self._handlers[name] = handler

    def queue(self, name: str, now_us: int, delay: float) -> None:
        self.queue_us(name, now_us + round(delay * 1_000_000))

    def queue_us(self, name: str, deadline_us: int) -> None:
        self._order += 1
        if name in self._due:
            self._stale = True  # the old deadline may have been the earliest
        self._due[name] = (deadline_us, self._order)
        if deadline_us < self._earliest:
            self._earliest = deadline_us

    def dequeue(self, name: str) -> None:
        if self._due.pop(name, None) is not None:
            self._stale = True

    def queued(self, name: str) -> bool:
        return name in self._due

    def deadline(self, name: str) -> int | None:
        entry = self._due.get(name)
        return None if entry is None else entry[0]

    def _refresh(self) -> None:
        self._earliest = min(self._due.values())[0] if self._due else _NEVER
        self._stale = False

    def next_deadline_us(self) -> int | None:
        if self._stale:
            self._refresh()
        return None if self._earliest == _NEVER else self._earliest

    def pop_due(self, now_us: int) -> Callable[[], None] | None:
        """The handler of the earliest timer due at `now_us`, removed from the table."""
        if self._earliest > now_us:
            return None  # the bound says nothing can be due
        if self._stale:
            self._refresh()
            if self._earliest > now_us:
                return None
        name, (_deadline, _order) = min(self._due.items(), key=lambda kv: kv[1])
        del self._due[name]
        self._stale = True
        return self._handlers[name]

    def names(self) -> list[str]:
        return sorted(self._due, key=self._due.__getitem__)
