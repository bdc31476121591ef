"""Prefect flows: thin wiring of the stage steps (ts24_migrate.site_steps) per site and per fleet."""
