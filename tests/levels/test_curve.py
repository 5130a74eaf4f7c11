"""The MEE6 level curve: its published table, and level_for, total_xp_for and progress agreeing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botops.levels import level_for, progress, total_xp_for, xp_to_next

# Everyday levels, and levels whose XP is past a float's precision (the exact path of level_for).
levels = st.one_of(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=10**40))
xps = st.one_of(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**120))

# MEE6's published table (the same one discordLevelingSystem ships): total XP to reach each level.
MEE6_TOTAL_XP = {
    0: 0,
    1: 100,
    2: 255,
    3: 475,
    4: 770,
    5: 1150,
    6: 1625,
    7: 2205,
    8: 2900,
    9: 3720,
    10: 4675,
    50: 268_375,
    100: 1_899_250,
}


@pytest.mark.parametrize(("level", "total"), MEE6_TOTAL_XP.items())
def test_total_xp_for_matches_mee6s_table(level: int, total: int) -> None:
    assert total_xp_for(level) == total


@pytest.mark.parametrize(("level", "total"), MEE6_TOTAL_XP.items())
def test_level_for_reaches_mee6s_levels_at_their_xp(level: int, total: int) -> None:
    assert level_for(total) == level


@given(level=levels)
def test_each_level_costs_5n2_plus_50n_plus_100(level: int) -> None:
    assert (
        total_xp_for(level + 1) - total_xp_for(level) == xp_to_next(level) == 5 * level**2 + 50 * level + 100
    )


@given(level=levels)
def test_a_level_is_reached_exactly_at_its_total_xp(level: int) -> None:
    assert level_for(total_xp_for(level)) == level


@given(level=levels.filter(lambda level: level >= 1))
def test_one_xp_short_of_a_level_is_the_level_below(level: int) -> None:
    assert level_for(total_xp_for(level) - 1) == level - 1


def test_every_level_up_to_1100_starts_exactly_at_its_total_xp() -> None:
    # Low levels come from a table of thresholds, higher ones from the formula: both, and the seam.
    for level in range(1, 1100):
        total = total_xp_for(level)
        assert (level_for(total - 1), level_for(total)) == (level - 1, level)


@given(xp=xps, more=xps)
def test_more_xp_never_means_a_lower_level(xp: int, more: int) -> None:
    assert level_for(xp) <= level_for(xp + more)


@given(xp=xps)
def test_progress_splits_xp_into_the_level_reached_and_the_way_to_the_next(xp: int) -> None:
    where = progress(xp)
    assert where.level == level_for(xp)
    assert total_xp_for(where.level) + where.xp_into_level == xp
    assert 0 <= where.xp_into_level < where.xp_for_next == xp_to_next(where.level)
    assert where.xp_remaining == total_xp_for(where.level + 1) - xp


def test_negative_xp_is_rejected() -> None:
    with pytest.raises(ValueError, match="xp must not be negative"):
        level_for(-1)


def test_negative_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="level must not be negative"):
        total_xp_for(-1)
