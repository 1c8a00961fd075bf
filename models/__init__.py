"""cytoresp.models."""
