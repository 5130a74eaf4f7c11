"""Retention arithmetic: which backups a RetentionPolicy keeps, and why; properties and worked examples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botops.backup.retention import (
    FUTURE_TOLERANCE,
    NEWER_THAN_VERIFIED,
    NEWEST_VERIFIED,
    BackupDatedInFuture,
    InvalidRetentionPolicy,
    RetentionPlan,
    RetentionPolicy,
    plan_retention,
)
from botops.errors import BackupError


@dataclass(frozen=True)
class Stamp:
    """A backup as retention sees it."""

    id: str
    created_at: datetime
    verified: bool = True


EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
LATER = EPOCH + timedelta(days=1000)  # a `now` after every generated backup


def nightly(first: date, last: date, *, hour: int = 3) -> list[Stamp]:
    """Return one verified backup per day from ``first`` to ``last``, at ``hour`` UTC."""
    days = (last - first).days + 1
    return [
        Stamp(
            f"b{day:04d}",
            datetime.combine(first + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=hour),
        )
        for day in range(days)
    ]


def kept_dates(plan: RetentionPlan[Stamp]) -> set[date]:
    return {backup.created_at.date() for backup in plan.keep}


def newest_verified(backups: list[Stamp]) -> Stamp | None:
    verified = [backup for backup in backups if backup.verified]
    return max(verified, key=lambda backup: (backup.created_at, backup.id), default=None)


# Days from a short span (many backups share a day and a week) or a long one (months and years apart).
_days = st.one_of(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=800))


@st.composite
def backup_lists(draw: st.DrawFn, *, verified: st.SearchStrategy[bool] | None = None) -> list[Stamp]:
    moments = draw(st.lists(st.tuples(_days, st.integers(min_value=0, max_value=24 * 60 - 1)), max_size=40))
    flags = verified if verified is not None else st.booleans()
    return [
        Stamp(f"b{index:03d}", EPOCH + timedelta(days=day, minutes=minute), draw(flags))
        for index, (day, minute) in enumerate(moments)
    ]


# RetentionPolicy refuses all three at 0 while building, so map that draw to a usable policy instead.
policies = st.tuples(
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=0, max_value=8),
).map(lambda counts: RetentionPolicy(*counts) if any(counts) else RetentionPolicy(1, 0, 0))


# The policy


def test_default_policy_keeps_seven_daily_four_weekly_six_monthly() -> None:
    assert RetentionPolicy().counts() == (("daily", 7), ("weekly", 4), ("monthly", 6))


@pytest.mark.parametrize("rule", ["daily", "weekly", "monthly"])
def test_policy_refuses_a_negative_count(rule: str) -> None:
    with pytest.raises(InvalidRetentionPolicy, match=f"{rule} must be a whole number of 0 or more"):
        RetentionPolicy(**{rule: -1})  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [1.5, True, "3", None])
def test_policy_refuses_a_count_that_is_not_a_whole_number(count: object) -> None:
    with pytest.raises(InvalidRetentionPolicy, match="weekly must be a whole number"):
        RetentionPolicy(weekly=count)  # type: ignore[arg-type]


def test_policy_refuses_keeping_nothing_by_period() -> None:
    with pytest.raises(InvalidRetentionPolicy, match="keep at least 1 daily, weekly or monthly backup"):
        RetentionPolicy(daily=0, weekly=0, monthly=0)


def test_policy_errors_are_backup_errors() -> None:
    with pytest.raises(BackupError):
        RetentionPolicy(daily=-1)


def test_policy_with_a_single_rule_is_allowed() -> None:
    assert RetentionPolicy(daily=0, weekly=0, monthly=1).monthly == 1


# Properties


@given(backup_lists(), policies)
def test_every_backup_is_either_kept_or_deleted(backups: list[Stamp], policy: RetentionPolicy) -> None:
    plan = plan_retention(backups, policy, now=LATER)
    kept = [backup.id for backup in plan.keep]
    deleted = [backup.id for backup in plan.delete]
    assert sorted(kept + deleted) == sorted(backup.id for backup in backups)
    assert not set(kept) & set(deleted)


@given(backup_lists(), policies)
def test_newest_verified_backup_is_never_deleted(backups: list[Stamp], policy: RetentionPolicy) -> None:
    newest = newest_verified(backups)
    plan = plan_retention(backups, policy, now=LATER)
    if newest is not None:
        assert newest in plan.keep
        assert NEWEST_VERIFIED in plan.reasons[newest.id]


@given(backup_lists(verified=st.just(True)), policies)
def test_kept_count_is_at_most_the_policy_total_plus_one(
    backups: list[Stamp], policy: RetentionPolicy
) -> None:
    plan = plan_retention(backups, policy, now=LATER)
    assert len(plan.keep) <= policy.daily + policy.weekly + policy.monthly + 1


@given(backup_lists(), policies)
def test_kept_verified_backups_are_at_most_the_policy_total(
    backups: list[Stamp], policy: RetentionPolicy
) -> None:
    plan = plan_retention(backups, policy, now=LATER)
    assert sum(backup.verified for backup in plan.keep) <= policy.daily + policy.weekly + policy.monthly


@given(backup_lists(), policies)
def test_each_rule_keeps_at_most_its_count(backups: list[Stamp], policy: RetentionPolicy) -> None:
    plan = plan_retention(backups, policy, now=LATER)
    for rule, count in policy.counts():
        by_rule = [why for reasons in plan.reasons.values() for why in reasons if why.startswith(f"{rule} ")]
        assert len(by_rule) <= count


@given(backup_lists(), policies)
def test_unverified_backups_are_kept_exactly_while_newer_than_the_newest_verified(
    backups: list[Stamp], policy: RetentionPolicy
) -> None:
    newest = newest_verified(backups)
    plan = plan_retention(backups, policy, now=LATER)
    for backup in backups:
        if backup.verified:
            continue
        newer = newest is None or (backup.created_at, backup.id) > (newest.created_at, newest.id)
        assert (backup in plan.keep) == newer


@given(backup_lists(), policies)
def test_kept_backups_have_reasons_and_deleted_ones_none(
    backups: list[Stamp], policy: RetentionPolicy
) -> None:
    plan = plan_retention(backups, policy, now=LATER)
    assert all(plan.reasons[backup.id] for backup in plan.keep)
    assert set(plan.reasons) == {backup.id for backup in plan.keep}


@given(backup_lists(), policies)
def test_planning_again_over_what_was_kept_deletes_nothing(
    backups: list[Stamp], policy: RetentionPolicy
) -> None:
    plan = plan_retention(backups, policy, now=LATER)
    again = plan_retention(plan.keep, policy, now=LATER)
    assert again.delete == ()
    assert again.reasons == plan.reasons


@given(backup_lists(), policies, st.integers(min_value=1, max_value=400 * 24 * 60), st.booleans())
def test_adding_an_older_backup_never_changes_what_happens_to_newer_ones(
    backups: list[Stamp], policy: RetentionPolicy, minutes_before: int, verified: bool
) -> None:
    oldest = min((backup.created_at for backup in backups), default=EPOCH)
    older = Stamp("older", oldest - timedelta(minutes=minutes_before), verified)
    before = plan_retention(backups, policy, now=LATER)
    after = plan_retention([*backups, older], policy, now=LATER)
    assert [backup for backup in after.keep if backup != older] == list(before.keep)


@given(backup_lists(), policies)
def test_plan_does_not_depend_on_the_order_backups_are_given_in(
    backups: list[Stamp], policy: RetentionPolicy
) -> None:
    assert plan_retention(backups, policy, now=LATER) == plan_retention(reversed(backups), policy, now=LATER)


# Worked examples


def test_a_year_of_nightly_backups_keeps_seven_days_four_weeks_six_months() -> None:
    # 400 nights up to Saturday 2026-11-28 (ISO week 2026-W48).
    backups = nightly(date(2025, 10, 25), date(2026, 11, 28))
    assert len(backups) == 400
    plan = plan_retention(backups, RetentionPolicy(), now=datetime(2026, 11, 28, 12, tzinfo=UTC))
    daily = {date(2026, 11, day) for day in range(22, 29)}  # the newest 7 days
    weekly = {date(2026, 11, 28), date(2026, 11, 22), date(2026, 11, 15), date(2026, 11, 8)}  # W48..W45
    monthly = {
        date(2026, 11, 28),
        date(2026, 10, 31),
        date(2026, 9, 30),
        date(2026, 8, 31),
        date(2026, 7, 31),
        date(2026, 6, 30),
    }
    assert kept_dates(plan) == daily | weekly | monthly
    assert len(plan.keep) == 14  # 7 days, 2 more Sundays, 5 more month ends
    assert len(plan.delete) == 386


def test_a_backup_kept_by_several_rules_lists_every_reason() -> None:
    backups = nightly(date(2025, 10, 25), date(2026, 11, 28))
    plan = plan_retention(backups, RetentionPolicy(), now=datetime(2026, 11, 28, 12, tzinfo=UTC))
    assert plan.reasons[plan.keep[0].id] == (
        "daily 2026-11-28",
        "weekly 2026-W48",
        "monthly 2026-11",
        NEWEST_VERIFIED,
    )
    assert plan.reasons[backups[-7].id] == ("daily 2026-11-22", "weekly 2026-W47")


def test_keep_and_delete_are_newest_first() -> None:
    backups = nightly(date(2026, 1, 1), date(2026, 3, 1))
    plan = plan_retention(backups, RetentionPolicy(), now=LATER)
    for listed in (plan.keep, plan.delete):
        assert [backup.created_at for backup in listed] == sorted(
            (b.created_at for b in listed), reverse=True
        )


def test_days_without_backups_do_not_count_towards_the_daily_rule() -> None:
    # Backups stopped a month ago: the last seven nights are still kept, not deleted as "too old".
    backups = nightly(date(2026, 10, 1), date(2026, 10, 28))
    plan = plan_retention(
        backups, RetentionPolicy(daily=7, weekly=0, monthly=0), now=datetime(2026, 11, 28, tzinfo=UTC)
    )
    assert kept_dates(plan) == {date(2026, 10, day) for day in range(22, 29)}


def test_daily_rule_keeps_the_newest_backup_of_a_day() -> None:
    day = datetime(2026, 11, 28, tzinfo=UTC)
    backups = [Stamp("early", day + timedelta(hours=3)), Stamp("late", day + timedelta(hours=15))]
    plan = plan_retention(backups, RetentionPolicy(daily=1, weekly=0, monthly=0), now=LATER)
    assert [backup.id for backup in plan.delete] == ["early"]


def test_days_are_counted_in_utc() -> None:
    # 01:00 on 1 March at UTC+2 is 23:00 on 28 February in UTC.
    backup = Stamp("b", datetime(2026, 3, 1, 1, tzinfo=timezone(timedelta(hours=2))))
    plan = plan_retention([backup], RetentionPolicy(daily=1, weekly=0, monthly=1), now=LATER)
    assert plan.reasons["b"] == ("daily 2026-02-28", "monthly 2026-02", NEWEST_VERIFIED)


def test_weeks_are_iso_weeks_across_a_new_year() -> None:
    # Friday 2027-01-01 belongs to the last ISO week of 2026, with Monday 2026-12-28.
    backups = [
        Stamp("monday", datetime(2026, 12, 28, 3, tzinfo=UTC)),
        Stamp("friday", datetime(2027, 1, 1, 3, tzinfo=UTC)),
    ]
    plan = plan_retention(backups, RetentionPolicy(daily=0, weekly=2, monthly=0), now=LATER)
    assert plan.reasons == {"friday": ("weekly 2026-W53", NEWEST_VERIFIED)}


def test_an_unverified_backup_does_not_displace_a_verified_one_of_its_day() -> None:
    day = datetime(2026, 11, 27, tzinfo=UTC)
    backups = [
        Stamp("verified", day + timedelta(hours=3)),
        Stamp("failed", day + timedelta(hours=15), verified=False),
        Stamp("newest", day + timedelta(days=1, hours=3)),
    ]
    plan = plan_retention(backups, RetentionPolicy(daily=2, weekly=0, monthly=0), now=LATER)
    assert [backup.id for backup in plan.keep] == ["newest", "verified"]
    assert [backup.id for backup in plan.delete] == ["failed"]


def test_an_unverified_backup_newer_than_every_verified_one_is_kept() -> None:
    day = datetime(2026, 11, 27, tzinfo=UTC)
    backups = [Stamp("verified", day), Stamp("unchecked", day + timedelta(days=1), verified=False)]
    plan = plan_retention(backups, RetentionPolicy(daily=1, weekly=0, monthly=0), now=LATER)
    assert plan.reasons["unchecked"] == (NEWER_THAN_VERIFIED,)


def test_nothing_is_deleted_while_no_backup_has_verified() -> None:
    backups = [Stamp(f"b{day}", EPOCH + timedelta(days=day), verified=False) for day in range(30)]
    plan = plan_retention(backups, RetentionPolicy(daily=1, weekly=0, monthly=0), now=LATER)
    assert plan.delete == ()


def test_newest_verified_is_kept_even_when_older_than_every_rules_pick() -> None:
    # Only the newest verified survives from a run of failed checks; the rules pick among verified ones.
    backups = [
        Stamp("good", EPOCH),
        *(Stamp(f"bad{day}", EPOCH - timedelta(days=day), verified=False) for day in range(1, 5)),
    ]
    plan = plan_retention(backups, RetentionPolicy(), now=LATER)
    assert [backup.id for backup in plan.keep] == ["good"]


def test_no_backups_make_an_empty_plan() -> None:
    assert plan_retention([], RetentionPolicy(), now=LATER) == RetentionPlan(keep=(), delete=(), reasons={})


# Refusals


def test_a_backup_dated_after_now_is_refused() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    future = Stamp("future", now + FUTURE_TOLERANCE + timedelta(seconds=1))
    with pytest.raises(BackupDatedInFuture, match="nothing was pruned; fix the clock"):
        plan_retention([future], RetentionPolicy(), now=now)


def test_a_backup_a_few_seconds_after_now_is_planned() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    backup = Stamp("b", now + timedelta(seconds=2))
    assert plan_retention([backup], RetentionPolicy(), now=now).keep == (backup,)


def test_a_backup_time_without_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="without a timezone"):
        plan_retention([Stamp("b", datetime(2026, 11, 28))], RetentionPolicy(), now=LATER)


def test_a_now_without_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        plan_retention([], RetentionPolicy(), now=datetime(2026, 11, 28))


def test_two_backups_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match="two backups have the id b"):
        plan_retention([Stamp("b", EPOCH), Stamp("b", LATER)], RetentionPolicy(), now=LATER)
