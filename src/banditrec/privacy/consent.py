"""Opt-out of personalization: the request's `opt_out: true`.

An opted-out request is served the default action (the first action offered, in each
slot) with probability 1, by no policy, and is not logged: its context reaches neither the
policy nor Redis, the spool or an export, so there is nothing of it to erase later. A
reward sent for its event id finds no decision (outcome `unknown`) and is not learned from.
"""

from __future__ import annotations

from ..decision.schema import Decision, DecisionRequest, RankedAction, SlotDecision

OPT_OUT_MODE = "opt_out"


def _ranking(actions: list) -> list[RankedAction]:
    return [RankedAction(a.id, 1.0 if i == 0 else 0.0) for i, a in enumerate(actions)]


def opted_out(request: DecisionRequest) -> Decision:
    """The default action, every slot, as the decision of an opted-out request."""
    if request.actions is not None:
        ranking = _ranking(request.actions)
        return Decision(request.event_id, ranking[0].id, 1.0, ranking, 0, OPT_OUT_MODE)
    slots = []
    for s in request.slots or []:
        ranking = _ranking(s.actions)
        slots.append(SlotDecision(s.id, ranking[0].id, 1.0, ranking))
    return Decision(request.event_id, None, None, [], 0, OPT_OUT_MODE, slots)
