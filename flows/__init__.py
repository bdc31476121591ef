"""Prefect flows: thin wiring of the stage steps (ts24_migrate.steps) per site and per fleet."""
