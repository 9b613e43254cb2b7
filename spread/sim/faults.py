"""Fault schedules: timed network and daemon faults as plain data.

A schedule is a tuple of `Fault`s, so a run can be described, printed, replayed and shrunk
(Hypothesis builds schedules directly). `random_schedule` draws one from a seed's generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Links:
    """Link behaviour from now on, for every datagram copy."""

    loss: float = 0.0  # probability a copy is dropped
    dup: float = 0.0  # probability a copy is delivered twice
    reorder: float = 0.0  # probability a copy is held back by up to `reorder_delay`
    jitter: float = 0.0005  # extra uniform delay (s) on top of the base delay
    reorder_delay: float = 0.02

    def __str__(self) -> str:
        return (
            f"links loss={self.loss:.3f} dup={self.dup:.3f} reorder={self.reorder:.3f} "
            f"jitter={self.jitter * 1000:.2f}ms"
        )


@dataclass(frozen=True, slots=True)
class Partition:
    """Only daemons in the same group can talk. Daemons not listed are alone."""

    groups: tuple[tuple[int, ...], ...]

    def __str__(self) -> str:
        return "partition " + " | ".join(
            "{" + ",".join(f"d{d}" for d in g) + "}" for g in self.groups
        )


@dataclass(frozen=True, slots=True)
class Heal:
    def __str__(self) -> str:
        return "heal"


@dataclass(frozen=True, slots=True)
class Crash:
    """The daemon dies: its engine and everything it had not delivered are gone."""

    daemon: int

    def __str__(self) -> str:
        return f"crash d{self.daemon}"


@dataclass(frozen=True, slots=True)
class Restart:
    """A fresh engine for a crashed daemon, with a new wall-clock offset (seconds).

    The simulator never moves a daemon's clock backwards across a restart (see network.py).
    """

    daemon: int
    clock_offset: float = 0.0

    def __str__(self) -> str:
        return f"restart d{self.daemon} clock{self.clock_offset:+.3f}s"


FaultKind = Links | Partition | Heal | Crash | Restart


@dataclass(frozen=True, slots=True, order=True)
class Fault:
    at: float
    what: FaultKind

    def __str__(self) -> str:
        return f"{self.at:9.4f} {self.what}"


Schedule = tuple[Fault, ...]


@dataclass(frozen=True, slots=True)
class FaultProfile:
    """How wild `random_schedule` gets. Probabilities are upper bounds for one Links event."""

    max_loss: float = 0.05
    max_dup: float = 0.05
    max_reorder: float = 0.05
    max_jitter: float = 0.002
    partitions: bool = True
    crashes: bool = True
    link_changes: bool = True
    mean_gap: float = 3.0  # mean seconds between fault events
    max_clock_offset: float = 5.0
    calm_fraction: float = 0.25  # runs with clean links and sparse faults (timing is checked)
    calm_gap: float = 9.0


def random_partition(rng: random.Random, n: int) -> Partition:
    parts = rng.randint(2, min(4, n))
    labels = [rng.randrange(parts) for _ in range(n)]
    groups = tuple(
        tuple(d for d in range(n) if labels[d] == p) for p in range(parts) if p in labels
    )
    return Partition(groups)


def random_schedule(rng: random.Random, n: int, duration: float, profile: FaultProfile) -> Schedule:
    """Faults between t=2 s and `duration`; the runner adds the final heal itself.

    A `calm_fraction` of schedules keep clean links and space faults `calm_gap` apart on
    average, so crashes happen in quiet stretches where their timing can be checked.
    """
    faults: list[Fault] = []
    crashed: set[int] = set()
    kinds: list[str] = []
    calm = rng.random() < profile.calm_fraction
    gap = profile.calm_gap if calm else profile.mean_gap
    if profile.link_changes and not calm:
        kinds += ["links", "links"]
    if profile.partitions:
        kinds += ["partition", "heal"]
    if profile.crashes:
        kinds += ["crash", "restart"]
    t = 2.0
    while kinds:
        t += rng.expovariate(1.0 / gap)
        if t >= duration:
            break
        kind = rng.choice(kinds)
        what: FaultKind
        if kind == "links":
            what = Links(
                loss=rng.uniform(0, profile.max_loss),
                dup=rng.uniform(0, profile.max_dup),
                reorder=rng.uniform(0, profile.max_reorder),
                jitter=rng.uniform(0, profile.max_jitter),
            )
        elif kind == "partition":
            what = random_partition(rng, n)
        elif kind == "heal":
            what = Heal()
        elif kind == "crash":
            alive = [d for d in range(n) if d not in crashed]
            if len(alive) <= 1:
                continue
            victim = rng.choice(alive)
            crashed.add(victim)
            what = Crash(victim)
        else:
            if not crashed:
                continue
            back = rng.choice(sorted(crashed))
            crashed.discard(back)
            off = rng.uniform(-profile.max_clock_offset, profile.max_clock_offset)
            what = Restart(back, round(off, 3))
        faults.append(Fault(round(t, 4), what))
    return tuple(faults)


def final_heal(at: float, n: int, down: set[int]) -> Schedule:
    """What the runner appends at the end of the fault phase: everything back to normal."""
    out = [Fault(at, Heal()), Fault(at, Links())]
    out += [Fault(at, Restart(d, 0.0)) for d in sorted(down)]
    return tuple(out)
