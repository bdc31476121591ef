"""backups stage."""
