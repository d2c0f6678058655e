"""Slates: k of N shared candidates ranked per request, under business rules.

`SlateRequest` → `DecisionEngine.decide_slate` → `SlateDecision`; each position's
probability is conditional on the positions above, as in VW's CCB. Logged as one DSJson
record per position; `ccb_lines` turns them into VW's CCB DSJson layout.
"""

from .dsjson import ccb_line, ccb_lines, is_position_record
from .schema import SlateDecision, SlatePosition, SlateRequest

__all__ = [
    "SlateDecision",
    "SlatePosition",
    "SlateRequest",
    "ccb_line",
    "ccb_lines",
    "is_position_record",
]
