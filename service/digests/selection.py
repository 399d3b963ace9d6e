"""Which tips a person gets next (pure): everyone walks the tips meant for their role in one
rotation order (sections interleaved) and sees every tip once before any repeats; a new hire
starts at the beginning; a new tip joins the current cycle."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class Ordered(Protocol):
    """What the rotation needs of a tip."""

    id: int
    position: int
    section: str


Tip = TypeVar("Tip", bound=Ordered)


def rotation_order(tips: Iterable[Tip]) -> list[Tip]:
    """Pack order with sections interleaved, so one digest mixes topics."""
    by_section: dict[str, list[Tip]] = defaultdict(list)
    for tip in sorted(tips, key=lambda t: (t.position, t.id)):
        by_section[tip.section].append(tip)
    order: list[Tip] = []
    for rank in range(max((len(v) for v in by_section.values()), default=0)):
        order.extend(group[rank] for group in by_section.values() if rank < len(group))
    return order


def select_tips(
    eligible: Sequence[int],
    history: Sequence[Sequence[int]],
    count: int,
    priority: Sequence[int] = (),
) -> list[int]:
    """Pick the next ``count`` tip ids for one person.

    ``eligible`` is the rotation order of the tips meant for them, ``history``
    their earlier digests (oldest first) and ``priority`` tips to put first
    (sections changed recently). A tip does not repeat until every eligible
    tip has been shown since the cycle began.
    """
    eligible_set = set(eligible)
    seen: set[int] = set()
    for digest in history:
        for tip_id in digest:
            if tip_id in eligible_set:
                seen.add(tip_id)
                if seen >= eligible_set:
                    seen = set()
    recent = set(history[-1]) if history else set()
    picked = [t for t in dict.fromkeys(priority) if t in eligible_set][:count]
    # unseen tips first; a tip from last week's digest waits its turn (no back-to-back repeats),
    # and once the cycle is complete inside this digest, the next cycle starts from the top
    passes = (
        lambda t: t not in seen and t not in recent,
        lambda t: t not in seen,
        lambda t: t not in recent,
        lambda t: True,
    )
    for allowed in passes:
        for tip_id in eligible:
            if len(picked) >= count:
                return picked
            if tip_id not in picked and allowed(tip_id):
                picked.append(tip_id)
    return picked
