"""cytoresp.train."""
