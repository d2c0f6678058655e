"""`banditrec evaluate`."""
