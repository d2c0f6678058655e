"""`banditrec train-rl`."""
