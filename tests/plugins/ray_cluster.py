"""Ray fixtures: one Ray instance per test session."""
