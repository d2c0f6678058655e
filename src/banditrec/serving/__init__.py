"""The HTTP decision service: FastAPI on Ray Serve, API keys, metrics, learners.

`banditrec serve` runs it (see docs/serving.md); `deployment.build_app` is the application
builder for Serve config files. Importing this package does not import Ray.
"""

from .service import DecisionService
from .settings import HttpLimits, ServiceSettings, load_settings

__all__ = ["DecisionService", "HttpLimits", "ServiceSettings", "load_settings"]
