"""Each stage of a site's migration, wired once for both the CLI and the Prefect flows.

A step takes the `App` (inventory, engines, control store, ledger) and a site
id, runs the stage package's logic inside `stage_run` (control-store run +
ledger events), writes its report and returns a JSON-able summary. CLI
commands print the summary; flow tasks turn it into Prefect artifacts. Neither
holds stage logic, and neither do the steps: that lives in the stage packages.
"""
