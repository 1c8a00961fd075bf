"""cytoresp.predict."""
