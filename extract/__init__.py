"""Read the TS24 legacy database: assessment, extraction, fingerprints."""
