"""Online reporting: time buckets of every app's joined decisions in Redis, the report the
API serves, and the service-wide Prometheus metrics.

Layout and fields: docs/reporting.md.
"""

from .buckets import Estimate, arm_of, summarize
from .reporter import Reporter, ReportingPool
from .store import ReportStore

__all__ = ["Estimate", "ReportStore", "Reporter", "ReportingPool", "arm_of", "summarize"]
