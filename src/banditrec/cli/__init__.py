"""`banditrec serve | simulate | evaluate | export | …` — importing a module registers its commands."""

from . import evaluate, export, keys, personalizer, serve, simulate, train_rl  # noqa: F401
from .app import app

__all__ = ["app"]
