"""`banditrec export`."""
