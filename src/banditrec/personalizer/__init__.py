"""Azure Personalizer compatibility: its feature lists, learning settings, service settings and
exported logs, mapped onto banditrec's requests, app configs and log records.

The HTTP routes live in `serving/personalizer_routes.py` (their work in
`serving/personalizer.py`); the log import in `personalizer/logs.py`
(`banditrec import-personalizer`). See docs/personalizer.md.
"""

from .features import DEFAULT_NAMESPACE, namespaced, slot_name
from .settings import (
    DEFAULT_LEARNING_SETTINGS,
    LearningSettingsError,
    learning_settings,
    parse_learning_settings,
)

__all__ = [
    "DEFAULT_LEARNING_SETTINGS",
    "DEFAULT_NAMESPACE",
    "LearningSettingsError",
    "learning_settings",
    "namespaced",
    "parse_learning_settings",
    "slot_name",
]
