"""The best schedule found so far, per capacity searched: what the search minimises and how ties go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..core.arch import Architecture
from ..core.errors import ConvschedError
from ..core.schedule import Schedule
from ..model.closed_form import Traffic, evaluate
from .space import Objective

#: (objective bytes, on-chip buffer bytes, tiles): the search's key, least first.
Key = tuple[int, int, int]


def schedule_key(traffic: Traffic, sched: Schedule, objective: Objective) -> Key:
    """What the search minimises: (objective bytes, on-chip buffer bytes, tiles)."""
    obj = traffic.total_bytes if objective == "bytes" else traffic.input.read_bytes + traffic.weight.read_bytes
    return int(obj), int(traffic.total_buffer_bytes), int(sched.n_tiles)


@dataclass(frozen=True)
class Found:
    """A schedule the search found: its order, buffer levels and tiles."""

    order: tuple[str, ...]
    levels: dict[str, int]
    tiles: dict[str, int]


class Best:
    """The least key found so far for one capacity, and its schedule.

    A seed (a known feasible schedule, e.g. a textbook dataflow's best) only
    sets the bar: the first searched schedule with an equal key replaces it,
    so the search returns exactly what it would without the seed, sooner.
    Among equal keys the one of least rank (structure, grid position) wins
    (docs/optimizer.md, rule 8).
    """

    def __init__(self) -> None:
        self.key: Key | None = None
        self.found: Found | None = None
        self.rank: tuple[int, int] = (0, 0)
        self.seeded = False

    @property
    def bar(self) -> int | None:
        """The objective bytes to beat (None: nothing found yet)."""
        return None if self.key is None else self.key[0]

    def seed(self, sched: Schedule, arch: Architecture, objective: Objective) -> None:
        """Start from `sched`, which must fit `arch`."""
        t = evaluate(sched, arch)
        if not arch.fits(t.buffer_words):
            raise ConvschedError("the incumbent schedule does not fit the buffer capacity")
        self.key, self.found, self.seeded = schedule_key(t, sched, objective), None, True

    def offer(self, key: Key, order: tuple[str, ...], levels: Mapping[str, int], tiles: Mapping[str, int],
              rank: tuple[int, int]) -> None:
        """Keep the least key; among equal keys the least rank (structure, grid position) found."""
        if (self.key is None or key < self.key or (self.seeded and key == self.key)
                or (key == self.key and rank < self.rank)):
            self.key, self.found, self.rank = key, Found(order, dict(levels), dict(tiles)), rank
            self.seeded = False
