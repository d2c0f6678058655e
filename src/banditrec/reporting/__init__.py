"""Online reporting: time buckets of every app's joined decisions in Redis, the report the
API serves, and the service-wide Prometheus metrics.

Layout and fields: docs/reporting.md.
"""

from .buckets import arm_of, estimate, summarize
from .reporter import Reporter, ReportingPool
from .store import ReportStore

__all__ = ["ReportStore", "Reporter", "ReportingPool", "arm_of", "estimate", "summarize"]
