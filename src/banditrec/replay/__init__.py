"""Off-policy evaluation and replay: prove a policy offline before it serves.

- `LoggedBandit` (dataset.py): a log as arrays; `read_dsjson` / `from_records` (readers.py)
  read ours and Vowpal Wabbit's DSJson; `simulate_log` (simulated.py) logs a simulator run.
- estimators.py: IPS, clipped IPS, SNIPS, DM, DR, SNDR, Switch-DR, DR-OS, each an
  `Estimate(value, stderr, ci_low, ci_high, …)`; intervals.py: normal, bootstrap, Bernstein.
- importers.py: obp's `bandit_feedback` dicts and plain tables (Parquet / CSV / DataFrame).
- reward_model.py: the cross-fitted q̂ for DM / DR, and its calibration.
- quality.py: the data-quality report that comes with every estimate (ESS, largest weight,
  support gaps, warnings).
- multislot.py: pseudo-inverse and slate IPS for multi-slot apps.
- registry.py: every estimator by name (`ESTIMATORS`, one explicit list) and `evaluate`,
  several estimators at once.
- target.py: a policy's served pmf on every logged row, via `DecisionEngine.pmf`.
- rejection.py: replay (Li et al. 2011) for a policy that learns as it goes.
- counterfactual.py: re-run candidate configurations over a log and recommend one;
  discovery.py: a grid of learning settings to run it on.
"""

from .calibration import Calibration
from .counterfactual import Candidate, CounterfactualReport, counterfactual, make_candidate
from .dataset import LoggedBandit
from .estimators import (
    DM,
    DR,
    DROS,
    IPS,
    SNDR,
    SNIPS,
    ClippedIPS,
    Estimator,
    OnPolicy,
    OPEData,
    SwitchDR,
    clipped_ips,
    dm,
    dr,
    dr_os,
    ips,
    slope,
    sndr,
    snips,
    switch_dr,
    weight_diagnostics,
)
from .importers import from_obp, from_table, obp_target
from .multislot import PseudoInverse, SlateIPS
from .obp import obp_action_dist
from .quality import QualityReport, quality_report, weight_quality
from .readers import LogFormatError, from_records, read_dsjson
from .registry import DEFAULT_METHODS, ESTIMATORS, evaluate
from .rejection import ReplayResult, replay
from .reward_model import RewardModelFit, cross_fit
from .simulated import simulate_log
from .summary import Estimate, Terms, summarize
from .target import target_pmfs

__all__ = [
    "DEFAULT_METHODS",
    "DM",
    "DR",
    "DROS",
    "ESTIMATORS",
    "IPS",
    "SNDR",
    "SNIPS",
    "Calibration",
    "Candidate",
    "ClippedIPS",
    "CounterfactualReport",
    "Estimate",
    "Estimator",
    "LogFormatError",
    "LoggedBandit",
    "OPEData",
    "OnPolicy",
    "PseudoInverse",
    "QualityReport",
    "ReplayResult",
    "RewardModelFit",
    "SlateIPS",
    "SwitchDR",
    "Terms",
    "clipped_ips",
    "counterfactual",
    "cross_fit",
    "dm",
    "dr",
    "dr_os",
    "evaluate",
    "from_obp",
    "from_records",
    "from_table",
    "ips",
    "make_candidate",
    "obp_action_dist",
    "obp_target",
    "quality_report",
    "read_dsjson",
    "replay",
    "simulate_log",
    "slope",
    "sndr",
    "snips",
    "summarize",
    "switch_dr",
    "target_pmfs",
    "weight_diagnostics",
    "weight_quality",
]
