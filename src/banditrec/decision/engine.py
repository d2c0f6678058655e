"""The in-process decision core: what serving, simulation and replay all call.

decide: request → features → policy pmf → mode / per-request exploration / floor →
seeded draw → decision (+ its DSJson log record). learn: joined record → policy update.
The served state (config, policies, model version) is one immutable object replaced in a
single assignment, so a model swap or a reconfiguration lands between two requests,
never inside one. What a decision is made of (that state, each slot's choice, the answer
built from them) is in decision/served.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config import AppConfig
from ..experiments import Assignment, assign
from ..experiments.arms import arm_models, arm_policies
from ..explain import explained
from ..policies import FixedPolicy, Policy, load_policy, make_policy
from ..policies.baseline import UniformPolicy
from ..policy_config import FixedConfig, PolicyConfig
from ..privacy.consent import opted_out
from ..privacy.pseudonymize import Pseudonymizer, RequestPrivacy, suspect
from ..slates import decide as slate_ops
from ..slates.dsjson import position_of
from ..slates.schema import SlateDecision, SlateRequest
from . import pmf as pmf_ops
from .features import FeatureSet, Interaction
from .record import META_KEY, LoggedEvent, build_record, slot_key, to_interaction
from .sampling import draw, event_seed
from .schema import Decision, DecisionRequest, ExplorationOverride
from .served import Served, SlotChoice, UnknownSlotError, build_decision

_DEFAULT_ACTION = FixedPolicy(FixedConfig())
_ARM_POLICIES: dict[str, Policy] = {"default": _DEFAULT_ACTION, "uniform": UniformPolicy()}


class DecisionEngine:
    def __init__(
        self,
        config: AppConfig,
        policies: Mapping[str | None, Policy] | None = None,
        model_version: int = 0,
        *,
        arm_models: Mapping[str, bytes] | None = None,
    ) -> None:
        if policies is None:
            policies = {slot: make_policy(cfg) for slot, cfg in config.slot_policies().items()}
        arms = arm_policies(config, arm_models)
        self._served = Served(config, dict(policies), model_version, arms)
        self._pseudonymizer: Pseudonymizer | None = None
        self._privacy = RequestPrivacy.from_config(config.privacy, None)

    @classmethod
    def from_config(cls, config: AppConfig | Mapping[str, Any]) -> DecisionEngine:
        return cls(config if isinstance(config, AppConfig) else AppConfig.model_validate(config))

    # --- state --------------------------------------------------------------------

    @property
    def config(self) -> AppConfig:
        return self._served.config

    @property
    def model_version(self) -> int:
        return self._served.version

    @property
    def policy(self) -> Policy:
        """The policy of a single-slot app (or of its first slot)."""
        return next(iter(self._served.policies.values()))

    @property
    def policies(self) -> dict[str | None, Policy]:
        return dict(self._served.policies)

    @property
    def arm_policies(self) -> dict[str, Policy]:
        """The policies of the experiment's `policy` arms, by arm name."""
        return dict(self._served.arms)

    def model_bytes(self) -> dict[str, bytes]:
        """Every slot's model, under its `slot_key` (a single-slot app's: `SINGLE_SLOT`),
        and each `policy` arm's under `arm:<name>`."""
        served = self._served
        slots = {slot_key(slot): p.to_bytes() for slot, p in served.policies.items()}
        return {**slots, **arm_models(served.arms)}

    def load_models(self, models: Mapping[str, bytes], version: int) -> None:
        """Swap in published models (all slots and arms at once)."""
        served = self._served
        policies = {
            slot: load_policy(cfg, models[slot_key(slot)])
            for slot, cfg in served.config.slot_policies().items()
        }
        arms = arm_policies(served.config, models, served.arms)
        self._served = Served(served.config, policies, version, arms)

    def reconfigure(self, config: AppConfig) -> None:
        """New settings, live. A slot whose policy kind is unchanged keeps what it learned."""
        served = self._served
        old = served.config.slot_policies()
        policies: dict[str | None, Policy] = {}
        for slot, cfg in config.slot_policies().items():
            current = served.policies.get(slot)
            same_kind = current is not None and slot in old and _same_kind(old[slot], cfg)
            policies[slot] = current.reconfigured(cfg) if same_kind else make_policy(cfg)
        arms = arm_policies(config, None, served.arms, served.config, _same_kind)
        self._served = Served(config, policies, served.version, arms)
        self._privacy = RequestPrivacy.from_config(config.privacy, self._pseudonymizer)

    @property
    def pseudonymizer(self) -> Pseudonymizer | None:
        return self._pseudonymizer

    def set_pseudonymizer(self, pseudonymizer: Pseudonymizer | None) -> None:
        """The app's keyed hash for identifiers (the server sets it from its key store)."""
        self._pseudonymizer = pseudonymizer
        self._privacy = RequestPrivacy.from_config(self._served.config.privacy, pseudonymizer)

    # --- decision path ------------------------------------------------------------

    def features(self, request: DecisionRequest) -> dict[str | None, FeatureSet]:
        id_features = self._served.action_id_feature
        if request.actions is not None:
            groups: list[tuple[str | None, list]] = [(None, request.actions)]
        else:
            groups = [(s.id, s.actions) for s in request.slots or []]
        out = {}
        for slot, actions in groups:
            id_feature = id_features.get(slot, True)
            out[slot] = FeatureSet.build(
                request.context, [(a.id, a.features) for a in actions], action_id_feature=id_feature
            )
        return out

    def _private_features(
        self, request: DecisionRequest
    ) -> tuple[DecisionRequest, str | None, dict[str | None, FeatureSet]]:
        """The request after the app's privacy settings (identifiers hashed, contact details
        refused or hashed: see privacy/pseudonymize.py), its subject's pseudonym, its features."""
        privacy = self._privacy
        original, subject = request, None
        if privacy.id_namespaces or privacy.subject is not None:
            request, subject = privacy.apply(request)
        features = self.features(request)
        if privacy.contact_values != "allow" and any(
            suspect(x.vw_json()) for x in features.values()
        ):
            request, subject = privacy.apply(original, scan=True)
            features = self.features(request)
        return request, subject, features

    def pmf(
        self,
        x: FeatureSet,
        seed: int,
        *,
        slot: str | None = None,
        exploration: ExplorationOverride | None = None,
        served: Served | None = None,
        arm: Assignment | None = None,
    ) -> np.ndarray:
        """The final pmf this app serves for `x` (in `arm`, if given): mode, per-request
        exploration, floor."""
        served = served or self._served
        return np.array(self._probabilities(x, seed, slot, exploration, served, arm))

    @staticmethod
    def _probabilities(
        x: FeatureSet,
        seed: int,
        slot: str | None,
        exploration: ExplorationOverride | None,
        served: Served,
        arm: Assignment | None = None,
    ) -> list[float]:
        """`pmf` as a list of floats: pure Python is cheaper than numpy at this size."""
        cfg = served.config
        policy = served.policies[slot] if cfg.mode == "online" else _DEFAULT_ACTION
        if arm is not None:  # an experiment's arm (its `learned` arm: the policy above)
            policy = served.arms.get(arm.arm.name) or _ARM_POLICIES.get(arm.arm.kind, policy)
        return pmf_ops.shaped(policy.probabilities(x, seed), cfg.min_probability, exploration)

    def choose(self, request: DecisionRequest) -> tuple[Served, list[SlotChoice]]:
        return self.choose_features(
            request.event_id, self.features(request), request.exploration, request.unit_id
        )

    def choose_features(
        self,
        event_id: str,
        features: Mapping[str | None, FeatureSet],
        exploration: ExplorationOverride | None = None,
        unit_id: str | None = None,
    ) -> tuple[Served, list[SlotChoice]]:
        """The decision step on prepared features: final pmf and seeded draw, per slot.

        For callers that build `FeatureSet`s themselves (simulators, replay) and skip the
        request and response objects; `decide` is this plus those.
        """
        served = self._served  # one read: the whole request sees one model
        known = served.policies
        experiment = served.config.experiment
        arm = None  # experiments split the traffic of an app in online mode (experiments/)
        if experiment is not None and served.config.mode == "online":
            arm = assign(experiment, unit_id or event_id)
        choices = []
        for slot, x in features.items():
            if slot not in known:
                raise UnknownSlotError(slot, [s for s in known if s is not None])
            seed = event_seed(served.config.seed, event_id, slot)
            p = self._probabilities(x, seed, slot, exploration, served, arm)
            chosen = draw(p, seed)
            order = pmf_ops.ranking_order(p, chosen)
            choices.append(SlotChoice(slot, x, order, p, arm))
        return served, choices

    def decide(self, request: DecisionRequest) -> Decision:
        if request.opt_out:
            return opted_out(request)
        request, _, features = self._private_features(request)
        served, choices = self.choose_features(
            request.event_id, features, request.exploration, request.unit_id
        )
        decision = build_decision(request.event_id, served, choices)
        return explained(decision, served, choices) if request.explain else decision

    def decide_logged(
        self,
        request: DecisionRequest,
        *,
        now: float | None = None,
        serialized_features: bool = False,
    ) -> tuple[Decision, list[dict[str, Any]]]:
        """The decision and its DSJson log records (one per slot), pending their rewards.

        `serialized_features`: records bound for the log only, their "c" already JSON (see
        `build_record`). An opted-out request is answered with the default action and
        no record.
        """
        if request.opt_out:
            return opted_out(request), []
        request, subject, features = self._private_features(request)
        served, choices = self.choose_features(
            request.event_id, features, request.exploration, request.unit_id
        )
        cfg = served.config
        records = [
            build_record(
                app=cfg.name,
                event_id=request.event_id,
                features=c.features,
                pmf=c.probabilities,
                order=c.order,
                model_version=served.version,
                policy=served.policy_names[c.slot],
                mode=cfg.mode,
                slot=c.slot,
                deferred=request.deferred,
                now=now,
                serialized_features=serialized_features,
            )
            for c in choices
        ]
        if subject is not None:  # erasure finds the subject's records by this
            for record in records:
                record[META_KEY]["subject"] = subject
        for c, record in zip(choices, records, strict=True):
            if c.arm is not None:  # p stays the probability within the arm (experiments/assign)
                record[META_KEY].update(arm=c.arm.arm.name, arm_probability=c.arm.probability)
        decision = build_decision(request.event_id, served, choices)
        if request.explain:
            decision = explained(decision, served, choices)
        return decision, records

    # --- slates (slates/): k of N candidates ranked, one draw per position ------------

    def decide_slate(self, request: SlateRequest) -> SlateDecision:
        served, choices = self._draw_slate(request)
        return slate_ops.slate_decision(
            request.event_id, choices, served.version, served.config.mode
        )

    def decide_slate_logged(
        self,
        request: SlateRequest,
        *,
        now: float | None = None,
        serialized_features: bool = False,
    ) -> tuple[SlateDecision, list[dict[str, Any]]]:
        """The slate and its log records, one per position (slot "1" … "k")."""
        served, choices = self._draw_slate(request)
        cfg = served.config
        records = slate_ops.position_records(
            cfg,
            request,
            choices,
            version=served.version,
            policy_name=served.policy_names[None],
            now=now,
            serialized_features=serialized_features,
        )
        decision = slate_ops.slate_decision(request.event_id, choices, served.version, cfg.mode)
        return decision, records

    def _draw_slate(self, request: SlateRequest) -> tuple[Served, list[slate_ops.PositionChoice]]:
        served = self._served
        cfg = served.config
        if cfg.slots is not None:
            raise UnknownSlotError(None, [s.name for s in cfg.slots])
        policy = served.policies[None] if cfg.mode == "online" else _DEFAULT_ACTION
        return served, slate_ops.draw_slate(cfg, policy, request)

    # --- learning path ------------------------------------------------------------

    def learn(self, event: Interaction | LoggedEvent | Mapping[str, Any]) -> bool:
        """Learn from one joined event; False when it is not to be learned from."""
        served = self._served
        if served.config.mode == "logging":
            return False
        it = event if isinstance(event, Interaction) else to_interaction(event)
        if it is None:
            return False
        policy = served.policies.get(it.slot)
        if policy is None and position_of(event) is not None:  # a slate's position
            policy = served.policies.get(None)
        if policy is None:
            raise UnknownSlotError(it.slot, [s for s in served.policies if s is not None])
        policy.learn(it)
        if it.slot is None:  # `policy` arms learn from every arm's traffic (experiments/arms)
            for arm_policy in served.arms.values():
                arm_policy.learn(it)
        return True


def _same_kind(a: PolicyConfig, b: PolicyConfig) -> bool:
    if a.kind != b.kind:
        return False
    # A VW model's hashing and reductions depend on these; changing them needs a new model.
    if a.kind in ("vw", "vw_ccb"):
        return (a.bits, a.cb_type, a.interactions, a.explorer.type) == (
            b.bits,
            b.cb_type,
            b.interactions,
            b.explorer.type,
        )
    if hasattr(a, "dim"):
        return a.dim == b.dim
    return True
