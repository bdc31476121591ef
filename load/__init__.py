"""Load transformed rows into the new e-transaction system."""
