"""The engine's timer table: one instance per named timer, as the original's E_queue keeps.

Queueing a timer that is already queued reschedules it. Deadlines are kept in whole
microseconds (the original's `sp_time`), so 0.25 + 0.25 lands exactly on 0.5 and ties fire in
the order they were queued, as they do in the original's sorted event queue.
"""

from __future__ import annotations

from collections.abc import Callable


class Timers:
    def __init__(self) -> None:
        self._due: dict[str, tuple[int, int]] = {}  # name -> (deadline_us, queue order)
        self._handlers: dict[str, Callable[[], None]] = {}
        self._order = 0

    def register(self, name: str, handler: Callable[[], None]) -> None:
        self._handlers[name] = handler

    def queue(self, name: str, now_us: int, delay: float) -> None:
        self._order += 1
        self._due[name] = (now_us + round(delay * 1_000_000), self._order)

    def dequeue(self, name: str) -> None:
        self._due.pop(name, None)

    def queued(self, name: str) -> bool:
        return name in self._due

    def deadline(self, name: str) -> int | None:
        entry = self._due.get(name)
        return None if entry is None else entry[0]

    def next_deadline_us(self) -> int | None:
        if not self._due:
            return None
        return min(self._due.values())[0]

    def pop_due(self, now_us: int) -> Callable[[], None] | None:
        """The handler of the earliest timer due at `now_us`, removed from the table."""
        if not self._due:
            return None
        name, (deadline, _order) = min(self._due.items(), key=lambda kv: kv[1])
        if deadline > now_us:
            return None
        del self._due[name]
        return self._handlers[name]

    def names(self) -> list[str]:
        return sorted(self._due, key=self._due.__getitem__)
