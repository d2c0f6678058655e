"""`banditrec serve | simulate | evaluate | export | …` — importing a module registers its commands."""

from . import evaluate, export, keys, privacy, serve, simulate, train_rl  # noqa: F401  (registration)
from .app import app

__all__ = ["app"]
