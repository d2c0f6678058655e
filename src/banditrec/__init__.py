"""banditrec: a self-hosted decision service for personalization."""

from .config import AppConfig, Limits, RewardConfig, SlotConfig
from .decision.engine import DecisionEngine
from .decision.features import FeatureSet, Interaction
from .decision.record import LoggedEvent
from .decision.schema import Action, Decision, DecisionRequest, Reward
from .decision.served import UnknownSlotError
from .policies import Policy, load_policy, make_policy
from .policy_config import VWPolicyConfig

__version__ = "0.1.0"

__all__ = [
    "Action",
    "AppConfig",
    "Decision",
    "DecisionEngine",
    "DecisionRequest",
    "FeatureSet",
    "Interaction",
    "Limits",
    "LoggedEvent",
    "Policy",
    "Reward",
    "RewardConfig",
    "SlotConfig",
    "UnknownSlotError",
    "VWPolicyConfig",
    "__version__",
    "load_policy",
    "make_policy",
]
