"""Load transformed rows into the new e-transaction system.

- schema_version: create and upgrade the target (business tables, bookkeeping)
- site_load:      load_site(): a site's mapped tables, in durable, resumable chunks
- staging, copy_postgres: typed chunks into a temporary table (COPY on PostgreSQL: CSV by Arrow, binary for bytes)
- merge:          one chunk into its business table, with crosswalk, lineage, rejects, conflicts
- ledger:         which chunks are done, and the figures the accounting checks
- target_map:     each business table's key, natural key and parent
"""
