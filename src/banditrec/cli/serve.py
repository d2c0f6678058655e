"""`banditrec serve`."""
