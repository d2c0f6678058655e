"""`banditrec simulate`."""
