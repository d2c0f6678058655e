"""Drawing a slate: position by position, each over the candidates the rules and the
positions above leave, from the policy's pmf over exactly those, so the logged
probability of every position is the exact conditional probability it was drawn with.

For position j (1-based) with candidates F_j:

    p_j = floor(explore(policy pmf over F_j)),  a_j ~ p_j  (seed: app seed, event id, j)

F_j = the offered actions, minus excluded and pinned ids, minus a_1 … a_{j−1}, within
position j's allowed set, minus any group already at its cap (pinned ids count towards
their group from the start). A pinned position takes its id with probability 1.
VW policies parse the request once and predict each position on the parsed examples
(scorers.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from ..config import AppConfig
from ..decision import pmf as pmf_ops
from ..decision.features import FeatureSet
from ..decision.sampling import draw, event_seed
from ..decision.schema import ExplorationOverride, RankedAction
from ..policies import Policy
from ..slate_config import NEW_GROUP, SlateConfig, SlateRules
from .scorers import scorer, subset


class SlateRuleError(ValueError):
    """The rules cannot be met by the candidates offered (a 422 over HTTP)."""


@dataclass(frozen=True, slots=True)
class PositionChoice:
    """One position: the candidates it could take, its pmf over them, the draw first."""

    position: int
    features: FeatureSet
    order: list[int]
    probabilities: list[float]
    pinned: bool = False
    group: str | None = None  # the shown item's exposure group, when floors are set

    @property
    def action_id(self) -> str:
        return self.features.action_ids[self.order[0]]

    @property
    def probability(self) -> float:
        return self.probabilities[self.order[0]]


def shaped(
    p: list[float],
    config: AppConfig,
    exploration: ExplorationOverride | None,
    floors: dict[str, float] | None = None,
    groups: Sequence[str | None] | None = None,
) -> list[float]:
    """The engine's shaping of a policy's pmf (`pmf.shaped`), with the slate's exposure
    floors (`with_floors`) before the app's (or the request's) floor."""
    exposure = None
    if floors and groups is not None:
        exposure = partial(with_floors, groups=groups, floors=floors)
    return pmf_ops.shaped(p, config.min_probability, exploration, exposure)


def _floor_groups(x: FeatureSet, rules: SlateRules, slate: SlateConfig | None) -> list[str | None]:
    """Each candidate's group for the exposure floors: "new" when younger than the
    cold-start age, else its group in the rules."""
    young = slate.cold_start.max_age_seconds if slate and slate.cold_start else None
    ages = rules.item_age_seconds
    out: list[str | None] = []
    for a in x.action_ids:
        age = ages.get(a)
        is_new = young is not None and age is not None and age < young
        out.append(NEW_GROUP if is_new else rules.groups.get(a))
    return out


class _Candidates:
    """Which candidates each position may take, as the slate fills."""

    def __init__(self, x: FeatureSet, positions: int, rules: SlateRules) -> None:
        ids = x.action_ids
        where = {a: i for i, a in enumerate(ids)}
        excluded = {where[a] for a in rules.exclude if a in where}
        self.pinned: dict[int, int] = {}
        for action_id, position in rules.pin.items():
            if action_id not in where:
                raise SlateRuleError(f"rules.pin: {action_id!r} is not among the actions offered")
            if where[action_id] in excluded:
                raise SlateRuleError(f"rules: {action_id!r} is both pinned and excluded")
            if position > positions:
                raise SlateRuleError(
                    f"rules.pin: {action_id!r} pinned to position {position} of a slate of {positions}"
                )
            self.pinned[position] = where[action_id]
        pinned = set(self.pinned.values())
        self.free = [i for i in range(len(ids)) if i not in excluded and i not in pinned]
        self.allowed = {
            position: {where[a] for a in allowed if a in where}
            for position, allowed in rules.allowed.items()
        }
        self.group = [rules.groups.get(a) for a in ids]
        self.cap = {g: rules.cap(g) for g in set(self.group) if g is not None}
        self.count: Counter[str] = Counter(
            self.group[i] for i in pinned if self.group[i] is not None
        )
        self.taken: set[int] = set()

    def take(self, i: int) -> None:
        self.taken.add(i)
        g = self.group[i]
        if g is not None and i not in self.pinned.values():
            self.count[g] += 1

    def left(self) -> list[int]:
        """Not yet in the slate (nor excluded, nor pinned)."""
        return [i for i in self.free if i not in self.taken]

    def feasible(self, position: int) -> list[int]:
        allowed = self.allowed.get(position)
        out = []
        for i in self.left():
            if allowed is not None and i not in allowed:
                continue
            g = self.group[i]
            cap = self.cap.get(g) if g is not None else None
            if cap is not None and self.count[g] >= cap:
                continue
            out.append(i)
        return out


def choose_slate(
    config: AppConfig,
    policy: Policy,
    x: FeatureSet,
    event_id: str,
    positions: int,
    rules: SlateRules,
    exploration: ExplorationOverride | None = None,
    slate: SlateConfig | None = None,
) -> list[PositionChoice]:
    """The slate's positions, in order."""
    cands = _Candidates(x, positions, rules)
    floors = slate.floors() if slate is not None else {}
    floor_group = _floor_groups(x, rules, slate) if floors else []
    unpinned = positions - len(cands.pinned)
    if len(cands.free) < unpinned:
        raise SlateRuleError(
            f"{positions} positions but only {len(cands.free) + len(cands.pinned)} actions "
            "are left after the rules' exclusions"
        )
    pmf_over = scorer(policy, x)
    out: list[PositionChoice] = []
    for position in range(1, positions + 1):
        pinned = cands.pinned.get(position)
        if pinned is not None:
            cands.take(pinned)
            group = floor_group[pinned] if floors else None
            out.append(
                PositionChoice(position, subset(x, [pinned]), [0], [1.0], pinned=True, group=group)
            )
            continue
        feasible = cands.feasible(position)
        if not feasible:
            raise SlateRuleError(
                f"position {position}: the rules leave no action for it "
                "(allowed set, group caps and the positions above)"
            )
        seed = event_seed(config.seed, event_id, str(position))
        p = shaped(
            pmf_over(feasible, seed),
            config,
            exploration,
            floors,
            [floor_group[i] for i in feasible] if floors else None,
        )
        chosen = draw(p, seed)
        cands.take(feasible[chosen])
        order = pmf_ops.ranking_order(p, chosen)
        group = floor_group[feasible[chosen]] if floors else None
        out.append(PositionChoice(position, subset(x, feasible), order, p, group=group))
    return out


def slate_ranking(choices: Sequence[PositionChoice]) -> list[RankedAction]:
    """The slate, then the candidates the last drawn position left, by their probability there."""
    ranking = [RankedAction(c.action_id, c.probability) for c in choices]
    drawn = [c for c in choices if not c.pinned]
    if drawn:
        last = drawn[-1]
        shown = {r.id for r in ranking}
        ids, probs = last.features.action_ids, last.probabilities
        ranking += [RankedAction(ids[i], probs[i]) for i in last.order if ids[i] not in shown]
    return ranking


def with_floors(
    p: list[float], groups: Sequence[str | None], floors: dict[str, float]
) -> list[float]:
    """The least mixing of p with uniform-within-group pmfs that gives every group g with
    candidates at least floors[g] of the mass:

        p' = (1 − Λ) p + Σ_g λ_g u_g,   λ_g = max(0, f_g − (1 − Λ) m_g),   Λ = Σ_g λ_g

    (m_g: g's mass under p, u_g: uniform over g's candidates), Λ found by fixed-point
    iteration (Λ only grows; Σ f_g ≤ 1 is validated). A group at its floor already moves
    nothing; the order of the rest is kept within each group.
    """
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        if g is not None and g in floors:
            members.setdefault(g, []).append(i)
    if not members:
        return p
    mass = {g: sum(p[i] for i in idx) for g, idx in members.items()}
    lam: dict[str, float] = dict.fromkeys(members, 0.0)
    total = 0.0
    for _ in range(50):
        lam = {g: max(0.0, floors[g] - (1.0 - total) * mass[g]) for g in members}
        new_total = sum(lam.values())
        if abs(new_total - total) < 1e-12:
            break
        total = min(new_total, 1.0)
    if total <= 0.0:
        return p
    out = [(1.0 - total) * v for v in p]
    for g, idx in members.items():
        share = lam[g] / len(idx)
        for i in idx:
            out[i] += share
    norm = sum(out)
    return [v / norm for v in out]
