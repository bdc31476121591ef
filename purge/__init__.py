"""purge stage."""
