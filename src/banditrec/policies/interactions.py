"""Which namespaces a VW policy crosses, and whether the crosses it was given can match.

Unset `interactions` (the default) crosses every context namespace with every action
namespace (the action id's "id" too) by full name (VW's
`--experimental_full_name_interactions context|action`), so the context can change which
action wins while no context × context or action × action cross is paid for, and a
"user" context namespace is never confused with a "url" action namespace as first-letter
crosses would. Namespaces are only known once requests arrive, so the crosses grow as
they appear: a learning policy looks at the namespaces of every `CHECK_EVERY`-th event it
learns (the first one included) and adds the crosses it has not got yet. The crosses are
saved in the VW model itself, so a model loaded anywhere (a replica, `vw -i`) has them.

Explicit `interactions` are VW's first-letter terms; one that can match no namespace the
policy has seen is reported: a warning in the log, and the events learned meanwhile are
counted (`unmatched_events`, the learner adds them to the app's stats as
`unmatched_interaction_events`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

FULL_NAME_FLAG = "--experimental_full_name_interactions"
CHECK_EVERY = 16
_IN_MODEL = re.compile(rb"--experimental_full_name_interactions ([^\s\x00]+)")
_CROSSABLE = re.compile(r"^[^|\s:,]+$")  # what VW's "a|b" syntax can carry


def namespaces(
    context: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]
) -> tuple[set[str], set[str]]:
    """The context's and the actions' namespaces (VW's JSON: keys not starting with '_')."""
    ctx = {ns for ns in context if not ns.startswith("_")}
    act = {ns for a in actions for ns in a if not ns.startswith("_")}
    return ctx, act


def unmatched_terms(terms: Iterable[str], seen: Iterable[str]) -> list[str]:
    """First-letter terms with a letter no seen namespace starts with (':' matches any).

    >>> unmatched_terms(["ut", "ui", "u:"], ["user", "id"])
    ['ut']
    """
    letters = {ns[0] for ns in seen if ns}
    return [t for t in terms if any(c != ":" and c not in letters for c in t)]


class InteractionCheck:
    """A VW policy's crosses (auto) or its explicit terms' check, fed with sampled events."""

    def __init__(self, terms: list[str] | None, model: bytes | None = None) -> None:
        self.auto = terms is None
        self.terms = list(terms or ())
        self.crosses: set[tuple[str, str]] = set()
        if self.auto and model:
            head = model[: 1 << 16]  # VW's header: the options it was trained with
            for m in _IN_MODEL.finditer(head):
                ctx, _, act = m.group(1).decode().partition("|")
                self.crosses.add((ctx, act))
        self.seen: set[str] = set()
        self.unmatched: list[str] = []
        self.unmatched_events = 0
        self._n = 0
        self._warned: set[str] = set()

    def cross_args(self) -> list[str]:
        """VW arguments for every cross this policy's model has."""
        return [a for ctx, act in sorted(self.crosses) for a in (FULL_NAME_FLAG, f"{ctx}|{act}")]

    def take_unmatched_events(self) -> int:
        """The events counted since the last call (what the learner adds to the app's stats)."""
        n, self.unmatched_events = self.unmatched_events, 0
        return n

    def due(self) -> bool:
        """Called once per learned event: whether to look at this one's namespaces."""
        due = self._n % CHECK_EVERY == 0
        self._n += 1
        if self.unmatched:
            self.unmatched_events += 1
        return due

    def observe(
        self, context: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Take one event's namespaces; VW arguments for the crosses to add (the model keeps
        those it has: loading it with them again would list them twice in its header)."""
        ctx, act = namespaces(context, actions)
        if self.auto:
            new = {
                (c, a)
                for c in ctx
                for a in act
                if (c, a) not in self.crosses and _CROSSABLE.match(c) and _CROSSABLE.match(a)
            }
            self.crosses |= new
            return [a for ctx, act in sorted(new) for a in (FULL_NAME_FLAG, f"{ctx}|{act}")]
        if not self.seen.issuperset(ctx | act):
            self.seen |= ctx | act
        was = bool(self.unmatched)
        self.unmatched = unmatched_terms(self.terms, self.seen)
        if self.unmatched and not was:
            self.unmatched_events += 1  # this event too
        for term in self.unmatched:
            if term not in self._warned:
                self._warned.add(term)
                log.warning(
                    "VW interaction %r matches no namespace seen (%s): it adds nothing; fix the "
                    "app's interactions, or leave them unset to cross every context namespace "
                    "with every action namespace",
                    term,
                    ", ".join(sorted(self.seen)) or "none",
                )
        return []
