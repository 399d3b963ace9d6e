"""Tip rotation: no repeat before a cycle ends, new tips join, new hires start at the beginning."""

from hypothesis import given, settings
from hypothesis import strategies as st

from service.digests import rotation_order, select_tips
from service.models import Tip


def simulate(eligible_by_week: list[list[int]], count: int) -> list[list[int]]:
    history: list[list[int]] = []
    for eligible in eligible_by_week:
        history.append(select_tips(eligible, history, count))
    return history


@settings(max_examples=200)
@given(size=st.integers(1, 40), count=st.integers(1, 5), weeks=st.integers(1, 30))
def test_no_tip_repeats_before_every_tip_was_shown(size: int, count: int, weeks: int) -> None:
    eligible = list(range(100, 100 + size))
    sent = [t for digest in simulate([eligible] * weeks, count) for t in digest]
    per_digest = min(count, size)
    assert all(len(d) == per_digest for d in simulate([eligible] * weeks, count))
    # the flattened stream is the rotation order repeated: cycles are complete before repeats
    for start in range(0, len(sent), size):
        cycle = sent[start : start + size]
        assert len(set(cycle)) == len(cycle)
    assert sent == [eligible[i % size] for i in range(len(sent))]


@settings(max_examples=200)
@given(size=st.integers(2, 30), count=st.integers(1, 4), weeks_before=st.integers(1, 12),
       weeks_after=st.integers(1, 12), new_position=st.integers(0, 30))
def test_a_new_tip_joins_the_cycle_without_restarting_anyone(
    size: int, count: int, weeks_before: int, weeks_after: int, new_position: int
) -> None:
    eligible = list(range(size))
    history = simulate([eligible] * weeks_before, count)
    grown = eligible[:]
    grown.insert(min(new_position, size), 999)
    for _ in range(weeks_after):
        history.append(select_tips(grown, history, count))
    after = [t for d in history[weeks_before:] for t in d]
    if len(after) >= len(grown) + count:
        assert 999 in after  # the new tip shows up within one cycle of the grown list
    assert_no_early_repeat(history, [eligible] * weeks_before + [grown] * weeks_after)


def assert_no_early_repeat(history: list[list[int]], eligible_by_week: list[list[int]]) -> None:
    """A tip repeats only after a whole cycle: the cycle that contained its previous
    showing (which may have begun up to one cycle-length earlier) covered every tip
    eligible at both times."""
    stream = [(week, tip) for week, digest in enumerate(history) for tip in digest]
    last: dict[int, int] = {}
    for index, (week, tip) in enumerate(stream):
        if tip in last:
            start = last[tip]
            required = set(eligible_by_week[stream[start][0]]) & set(eligible_by_week[week])
            shown = {t for _, t in stream[max(0, start - len(required) + 1) : index]}
            assert shown >= required, (tip, stream)
        last[tip] = index


def test_new_hire_starts_at_the_beginning_and_priority_goes_first() -> None:
    eligible = [1, 2, 3, 4, 5, 6]
    assert select_tips(eligible, [], 3) == [1, 2, 3]
    assert select_tips(eligible, [[1, 2, 3]], 3) == [4, 5, 6]
    assert select_tips(eligible, [[1, 2, 3], [4, 5, 6]], 3) == [1, 2, 3]
    assert select_tips(eligible, [[1, 2, 3], [4, 5]], 3) == [6, 1, 2]  # cycle ends mid-digest
    assert select_tips(eligible, [[1, 2, 3]], 3, priority=[2, 9]) == [2, 4, 5]  # 9 is not for them
    assert select_tips([1, 2], [], 3) == [1, 2]


def test_rotation_interleaves_sections_in_pack_order() -> None:
    tips = [
        Tip(id=i, section=section, position=i, key=f"t{i}", title="", body="", audience=["all"], refs=[])
        for i, section in enumerate(["A", "A", "A", "B", "C", "C"])
    ]
    assert [t.id for t in rotation_order(tips)] == [0, 3, 4, 1, 5, 2]
