"""The subscription state machine as data (contract subscriptions.md, "Status").

Each ``Action`` names the statuses it may start from and the status it leads to
(``None``: the status is left as it is). ``check`` is the only place that decides whether
an action is legal; services call it before touching a subscription.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from novabilling.errors import BusinessRule

__all__ = ["RULES", "Action", "Rule", "Status", "check", "parse_status"]


class Status(StrEnum):
    """Contract statuses (``CANCELED`` with one L)."""

    ACTIVE = "ACTIVE"
    TRIALING = "TRIALING"
    PAUSED = "PAUSED"
    PAST_DUE = "PAST_DUE"
    CANCELED = "CANCELED"


class Action(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    SCHEDULE_CANCEL = "schedule_cancel"
    CHANGE_PLAN = "change_plan"
    TRIAL_END = "trial_end"
    RENEW = "renew"
    PAYMENT_FAILED = "payment_failed"
    REACTIVATE = "reactivate"


@dataclass(frozen=True, slots=True)
class Rule:
    sources: frozenset[Status]
    target: Status | None
    verb: str


_LIVE = frozenset(Status) - {Status.CANCELED}

RULES: Mapping[Action, Rule] = {
    Action.PAUSE: Rule(frozenset({Status.ACTIVE}), Status.PAUSED, "pause"),
    Action.RESUME: Rule(frozenset({Status.PAUSED}), Status.ACTIVE, "resume"),
    Action.CANCEL: Rule(_LIVE, Status.CANCELED, "cancel"),
    Action.SCHEDULE_CANCEL: Rule(_LIVE, None, "cancel"),
    Action.CHANGE_PLAN: Rule(_LIVE, None, "change the plan of"),
    Action.TRIAL_END: Rule(frozenset({Status.TRIALING}), Status.ACTIVE, "end the trial of"),
    Action.RENEW: Rule(frozenset({Status.ACTIVE, Status.PAST_DUE}), None, "renew"),
    Action.PAYMENT_FAILED: Rule(
        frozenset({Status.ACTIVE, Status.PAST_DUE, Status.TRIALING}),
        Status.PAST_DUE,
        "mark as past due",
    ),
    Action.REACTIVATE: Rule(frozenset({Status.PAST_DUE}), Status.ACTIVE, "reactivate"),
}


def check(action: Action, current: str) -> Status:
    """The status ``action`` leads to from ``current``, or ``BusinessRule`` (400)."""
    rule = RULES[action]
    status = Status(current)
    if status not in rule.sources:
        allowed = " or ".join(sorted(s.value for s in rule.sources))
        if status is Status.CANCELED:
            raise BusinessRule(f"Cannot {rule.verb} a subscription that is already CANCELED")
        raise BusinessRule(
            f"Cannot {rule.verb} a subscription with status {status.value}; it must be {allowed}"
        )
    return rule.target or status


def parse_status(value: str) -> Status | None:
    """``Status`` for an exact contract spelling, else None."""
    try:
        return Status(value)
    except ValueError:
        return None
