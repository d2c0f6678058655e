"""Redis fixtures: a real server started once per test session."""
