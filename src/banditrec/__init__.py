"""banditrec: a self-hosted decision service for personalization."""

from .config import AppConfig, Limits, RewardConfig, SlotConfig, VWPolicyConfig
from .engine import DecisionEngine, UnknownSlotError
from .features import FeatureSet, Interaction
from .policies import Policy, load_policy, make_policy
from .schema import Action, Decision, DecisionRequest, LoggedEvent, Reward

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
