"""`banditrec serve | simulate | evaluate | export | …` — importing a module registers its commands."""

from . import (  # noqa: F401  (registration)
    evaluate,
    export,
    importance,
    keys,
    personalizer,
    privacy,
    serve,
    simulate,
    train_rl,
)
from .app import app

__all__ = ["app"]
