"""Relay rounds: the jobs of a cut (see `jobs`) given to N students, round by round.

A round ends when its last card is done; then results go up on the poster and the next
round's inputs come down from it. So there are as many rounds as the data flow is deep,
whatever N: a job sits in a round after those of every job it reads, and a job with slack
(the attention of row 1 can wait while row 4's is computed) moves to the round where it
lengthens the lesson least. Within a round, cards go to students longest first, each to
the student with the least work in that round (and, between equals, the least so far), and
then single cards move or swap between two students while that narrows the gap between
them: every student's share of a round is as even as whole cards allow.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from .jobs import PACE, Cut, Job

PASSES = 4  # passes over the jobs with slack; more have not changed a schedule yet


@dataclass
class Schedule:
    """Which round and student each job has; `cards[r][s]`: student s's jobs in round r
    (both from 0), in the order the student does them."""

    students: int
    cards: list[list[list[Job]]]
    seconds: dict[int, float] = field(default_factory=dict)  # id(job) → hand time

    def loads(self, r: int) -> list[float]:
        return [sum(self.seconds[id(j)] for j in jobs) for jobs in self.cards[r]]

    def length(self, r: int) -> float:
        """A round lasts as long as its busiest student's cards."""
        return max(self.loads(r), default=0.0)

    def minutes(self) -> float:
        """The lesson's estimated length: every round and its hand-off."""
        total = sum(self.length(r) + PACE.handoff for r in range(len(self.cards)))
        return total / 60


def links(cut: Cut) -> tuple[dict[int, list[Job]], dict[int, list[Job]]]:
    """Each job's predecessors (the jobs that make what it reads) and successors, by id."""
    preds: dict[int, list[Job]] = {id(j): [] for j in cut.jobs}
    succs: dict[int, list[Job]] = {id(j): [] for j in cut.jobs}
    for job in cut.jobs:
        for p in dict.fromkeys(cut.maker[c] for c in cut.inputs(job)):
            preds[id(job)].append(p)
            succs[id(p)].append(job)
    return preds, succs


def makespan(times: list[float], students: int) -> float:
    """The longest load when these cards go to `students`, longest first, each to the
    least loaded (LPT): the length of a round."""
    loads = [0.0] * min(students, len(times))
    if not loads:
        return 0.0
    heapq.heapify(loads)
    for t in sorted(times, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads)


def rounds(cut: Cut, students: int) -> list[list[Job]]:
    """The jobs of each round: as early as possible, then each job with slack, longest
    first, moved to the round within its slack where the lesson is shortest."""
    preds, succs = links(cut)
    depth = max(j.level for j in cut.jobs)
    at = {id(j): j.level - 1 for j in cut.jobs}
    time = {id(j): cut.seconds(j) for j in cut.jobs}
    members: list[list[Job]] = [[] for _ in range(depth)]
    for job in cut.jobs:
        members[at[id(job)]].append(job)

    def length(r: int) -> float:
        return makespan([time[id(j)] for j in members[r]], students)

    movable = sorted(cut.jobs, key=lambda j: -time[id(j)])
    for _ in range(PASSES):
        moved = False
        for job in movable:
            low = max((at[id(p)] + 1 for p in preds[id(job)]), default=0)
            high = min((at[id(s)] - 1 for s in succs[id(job)]), default=depth - 1)
            if low == high:
                continue
            here = at[id(job)]
            members[here].remove(job)
            affected = set(range(low, high + 1)) | {here}
            best, best_cost = here, None
            for r in range(low, high + 1):
                members[r].append(job)
                cost = sum(length(k) for k in affected)
                members[r].remove(job)
                if (
                    best_cost is None
                    or cost < best_cost - 1e-9
                    or (abs(cost - best_cost) <= 1e-9 and r == here)
                ):
                    best, best_cost = r, cost
            members[best].append(job)
            at[id(job)] = best
            moved |= best != here
        if not moved:
            break
    order = {id(j): k for k, j in enumerate(cut.jobs)}
    return [sorted(m, key=lambda j: order[id(j)]) for m in members]


EXACT = 8  # a round of at most this many cards is split among students by trying every way


def spread(loads: list[float]) -> float:
    """How uneven a round is: the largest distance of a student's load from the mean of
    the students with cards, as a share of that mean (0.25: within a quarter)."""
    busy = [x for x in loads if x > 0]
    if not busy:
        return 0.0
    mean = sum(busy) / len(busy)
    return max(abs(x - mean) for x in busy) / mean


def partitions(n: int, most: int) -> Iterator[list[int]]:
    """Every way to put n items into at most `most` groups, as each item's group number
    (restricted growth strings: group k opens only after group k − 1)."""
    if n == 0:
        yield []
        return
    block = [0] * n

    def grow(i: int, used: int) -> Iterator[list[int]]:
        if i == n:
            yield list(block)
            return
        for g in range(min(used + 1, most)):
            block[i] = g
            yield from grow(i + 1, max(used, g + 1))

    yield from grow(1, 1)


SAME_LENGTH = 15.0  # seconds: rounds this close in length count as equally long
SEARCH = 200_000  # placements an exhaustive search for an even split may try


def loads_of(times: list[float], split: list[list[int]]) -> list[float]:
    return [sum(times[k] for k in group) for group in split]


def choose(times: list[float], splits: list[list[list[int]]]) -> list[list[int]]:
    """The best of some splits of a round's cards (by position, a group per busy student):
    among those within SAME_LENGTH of the shortest, the most even, then the one with the
    most students busy, then the shortest."""
    lengths = [max(loads_of(times, split), default=0.0) for split in splits]
    shortest = min(lengths)

    def key(k: int) -> tuple[float, int, float]:
        return (round(spread(loads_of(times, splits[k])), 9), -len(splits[k]), lengths[k])

    near = [k for k in range(len(splits)) if lengths[k] <= shortest + SAME_LENGTH]
    return splits[min(near, key=key)]


def every_split(times: list[float], students: int) -> list[list[list[int]]]:
    """Every way to give a round's cards to at most `students` students."""
    out = []
    for groups in partitions(len(times), students):
        split: list[list[int]] = [[] for _ in range(max(groups, default=-1) + 1)]
        for k, g in enumerate(groups):
            split[g].append(k)
        out.append(split)
    return out


def even_split(times: list[float], k: int, cap: float) -> list[list[int]] | None:
    """Cards (by position) to k students, each within a quarter of their mean load and none
    above `cap`, found by trying every way, longest cards first (students with equal loads
    are interchangeable); None when there is none, or none within SEARCH placements."""
    order = sorted(range(len(times)), key=lambda i: -times[i])
    mean = sum(times) / k
    low, high = 0.75 * mean, min(1.25 * mean, cap)
    load = [0.0] * k
    groups: list[list[int]] = [[] for _ in range(k)]
    left = [sum(times[i] for i in order[n:]) for n in range(len(order) + 1)]
    tries = [0]

    def place(n: int) -> bool:
        if n == len(order):
            return all(x >= low - 1e-9 for x in load)
        if sum(max(0.0, low - x) for x in load) > left[n] + 1e-9 or tries[0] > SEARCH:
            return False
        i, seen = order[n], set()
        for b in range(k):
            if load[b] in seen or load[b] + times[i] > high + 1e-9:
                continue
            seen.add(load[b])
            tries[0] += 1
            load[b] += times[i]
            groups[b].append(i)
            if place(n + 1):
                return True
            load[b] -= times[i]
            groups[b].pop()
        return False

    return [sorted(g) for g in groups] if place(0) else None


def assign(cut: Cut, students: int) -> Schedule:
    """The rounds' jobs given to students (see the module's docstring)."""
    time = {id(j): cut.seconds(j) for j in cut.jobs}
    total = [0.0] * students
    cards: list[list[list[Job]]] = []
    for jobs in rounds(cut, students):
        groups = _groups(jobs, students, time)
        # the heaviest group to the student with the least work so far
        groups.sort(key=lambda g: -sum(time[id(j)] for j in g))
        mine: list[list[Job]] = [[] for _ in range(students)]
        for group in groups:
            s = min((k for k in range(students) if not mine[k]), key=lambda k: (total[k], k))
            mine[s] = group
        for s in range(students):
            total[s] += sum(time[id(j)] for j in mine[s])
        order = {id(j): k for k, j in enumerate(jobs)}
        cards.append([sorted(m, key=lambda j: order[id(j)]) for m in mine])
    return Schedule(students, cards, time)


def _groups(jobs: list[Job], students: int, time: dict[int, float]) -> list[list[Job]]:
    """A round's jobs in groups, one per student with cards (see `choose`): every way
    tried for a few cards; for more, longest first to the least loaded student, single
    cards then moved or swapped, for each number of busy students that could keep the
    round as short; and where that is not within a quarter, a search for a split that is."""
    times = [time[id(j)] for j in jobs]
    if len(jobs) <= EXACT:
        splits = every_split(times, students)
    else:
        shortest = makespan(times, students)
        top = min(students, len(jobs))
        low = max(1, math.floor(sum(times) / (shortest + SAME_LENGTH)))
        splits = [_spread_out(times, k) for k in range(top, low - 1, -1)]
        if spread(loads_of(times, choose(times, splits))) > 0.25:
            for k in range(top, low - 1, -1):
                found = even_split(times, k, shortest + SAME_LENGTH)
                if found is not None:
                    splits.append(found)
    return [[jobs[i] for i in group] for group in choose(times, splits) if group]


def _spread_out(times: list[float], k: int) -> list[list[int]]:
    """Cards (by position) to k students longest first, each to the least loaded, then
    evened out by single moves and swaps."""
    mine: list[list[int]] = [[] for _ in range(k)]
    load = [0.0] * k
    for i in sorted(range(len(times)), key=lambda i: -times[i]):
        s = min(range(k), key=lambda x: (load[x], x))
        mine[s].append(i)
        load[s] += times[i]
    _even_out(mine, load, times)
    return [sorted(g) for g in mine]


def _even_out(mine: list[list[int]], load: list[float], time: list[float]) -> None:
    """Move or swap single cards between two students while that makes the round more
    even without lengthening it."""
    while True:
        step = _better(mine, load, time)
        if step is None:
            return
        a, b, ja, jb = step
        for job, src, dst in ((ja, a, b), (jb, b, a)):
            if job is not None:
                mine[src].remove(job)
                mine[dst].append(job)
                load[src] -= time[job]
                load[dst] += time[job]


def _better(
    mine: list[list[int]], load: list[float], time: list[float]
) -> tuple[int, int, int, int | None] | None:
    """The move (a's card to b) or swap (a's card for b's) that makes the round most even
    without lengthening it; None when none makes it more even."""
    longest = max(load)
    best, key = None, spread(load) - 1e-9
    for a in range(len(mine)):
        for b in range(len(mine)):
            if a == b or load[a] <= load[b]:
                continue
            for ja in mine[a]:
                options = [None, *mine[b]] if len(mine[a]) > 1 else list(mine[b])
                for jb in options:
                    d = time[ja] - (time[jb] if jb is not None else 0.0)
                    if d <= 0 or load[b] + d > longest + 1e-9:
                        continue
                    trial = list(load)
                    trial[a] -= d
                    trial[b] += d
                    if spread(trial) < key:
                        best, key = (a, b, ja, jb), spread(trial) - 1e-9
    return best
