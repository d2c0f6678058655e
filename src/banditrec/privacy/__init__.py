"""Privacy by design: pseudonymized identifiers, opt-out, erasure by subject, retention."""
