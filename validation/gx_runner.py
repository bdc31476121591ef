"""Run Great Expectations suites on an Engine we pass in, through one Checkpoint.

GX normally builds its own SQLAlchemy engine from a connection string. Here
the datasource is bound to the caller's engine instead: the legacy engine
stays read-only, the target's SQLite functions stay registered, every
aggregate runs in the database, and no connection secret ever enters GX's
configuration or its Data Docs (GX's connection string is a placeholder that
no driver would accept).

The context is ephemeral: nothing is written but the Data Docs site, built
into `docs_dir` once the checkpoint has run and then made static and offline
(validation/data_docs_offline.py). Each expectation gets its plain-words
description (validation/expectation_words.py). Analytics and
progress bars are off; results use the SUMMARY format (counts plus a few
example values), which GX computes with aggregate queries. Example values of
a personal field (ts24_migrate/core/personal_data.py) are masked in the results
and in the stored validation results before the Data Docs are built from
them; the Data Docs' files are made readable by their owner only.

Example::

    suites = {"units": [gxe.ExpectColumnValuesToNotBeNull(column="unit_code")]}
    results = run_suites(engine, suites, docs_dir=Path("work/report/gx"), kind="target", run_name="hn-01")
    results.success, results.data_docs_index
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.file_names import object_file_stems
from ts24_migrate.core.personal_data import MASKED, Masking
from ts24_migrate.core.private_files import make_tree_private, private_dir
from ts24_migrate.core.secrets import redact_url

from .data_docs_offline import make_offline
from .expectation_words import describe

if TYPE_CHECKING:
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.datasource.fluent.sql_datasource import QueryAsset, TableAsset
    from great_expectations.expectations import Expectation

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

DOCS_SITE = "ts24"
BOUND_ENGINE_PLACEHOLDER = "ts24-engine-passed-in://"
# Example values kept per failed expectation: enough to show what is wrong, no more.
EXAMPLE_VALUES = 5


@dataclass(frozen=True)
class TableBatch:
    """What one suite validates: a whole table, or a bounded sample of it (a query)."""

    table: str
    sample_rows: int | None = None


@dataclass
class ExpectationSummary:
    expectation: str  # GX type, e.g. expect_column_values_to_match_regex
    column: str | None
    description: str | None
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    examples: list[Any] = field(default_factory=list)
    error: str | None = None  # GX could not evaluate it (e.g. a missing column)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class SuiteSummary:
    name: str
    table: str
    success: bool
    expectations: list[ExpectationSummary]

    @property
    def failed(self) -> list[ExpectationSummary]:
        return [e for e in self.expectations if not e.success]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "success": self.success,
            "evaluated": len(self.expectations),
            "failed": len(self.failed),
            "expectations": [e.to_dict() for e in self.expectations],
        }


@dataclass
class SuiteResults:
    """The outcome of one checkpoint run: per suite, per expectation, and where the Data Docs are."""

    kind: str  # "target" (must pass) or "legacy" (descriptive)
    success: bool  # every expectation held
    suites: list[SuiteSummary]
    data_docs_index: Path
    notes: list[str] = field(default_factory=list)

    @property
    def descriptive(self) -> bool:
        """True when the results describe the data and never fail the run (the legacy profile)."""
        return self.kind == "legacy"

    def suite(self, table: str) -> SuiteSummary:
        for suite in self.suites:
            if suite.table == table:
                return suite
        raise KeyError(table)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "success": self.success,
            "descriptive": self.descriptive,
            "evaluated": sum(len(s.expectations) for s in self.suites),
            "failed": sum(len(s.failed) for s in self.suites),
            "data_docs_index": str(self.data_docs_index),
            "notes": list(self.notes),
            "suites": [s.to_dict() for s in self.suites],
        }


def _context(docs_dir: Path) -> EphemeralDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _bind_engine(datasource: Any, engine: Engine) -> None:
    """Make a GX SQL datasource use `engine` rather than one it builds from its connection string.

    Relies on GX 1.x's caching of its engine and execution engine (pinned < 2 in pyproject):
    GX reuses them as long as its configuration does not change.
    """
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.execution_engine.sqlite_execution_engine import SqliteExecutionEngine

    engine_type = SqliteExecutionEngine if engine.dialect.name == "sqlite" else SqlAlchemyExecutionEngine
    # No temporary tables: the legacy database is read-only, and none are needed for whole tables.
    execution_engine = engine_type(engine=engine, create_temp_table=False)
    datasource._engine = engine
    datasource._cached_connection_string = datasource.connection_string
    datasource._execution_engine = execution_engine
    datasource._cached_execution_engine_kwargs = datasource.dict(
        exclude=datasource._get_exec_engine_excludes(), config_provider=datasource._config_provider, exclude_unset=False
    )


def _sample_query(engine: Engine, table: str, rows: int) -> str | None:
    """SELECT * FROM table LIMIT rows, in the engine's dialect (TOP on SQL Server), table quoted;
    None when GX cannot run it: GX passes the query through text() more than once, which takes
    a `:name` in a table's name for a bound parameter."""
    reflected = sa.table(table)
    query = sa.select(sa.text("*")).select_from(reflected).limit(rows)
    compiled = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    return None if ":" in compiled else compiled


def _evaluation_error(info: Any) -> str | None:
    """The first line of the error GX met evaluating an expectation, if any.

    GX reports it either at the top level or per metric it could not compute.
    """
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception") or (info.get("exception_message") and "raised_exception" not in info):
        message = str(info.get("exception_message") or "could not be evaluated")
        return redact_url(message.strip().splitlines()[0] if message.strip() else message)[:300]
    for nested in info.values():
        found = _evaluation_error(nested)
        if found:
            return found
    return None


def _mask_unexpected_values(result: Any, masking: Masking) -> None:
    """The example values GX keeps of an expectation (and renders in Data Docs), masked by column."""
    column = result.expectation_config.kwargs.get("column")
    details = result.result or {}
    if "partial_unexpected_list" in details:
        details["partial_unexpected_list"] = [masking.value(column, v) for v in details["partial_unexpected_list"]]
    if "partial_unexpected_counts" in details:
        details["partial_unexpected_counts"] = [
            {**entry, "value": masking.value(column, entry.get("value"))}
            for entry in details["partial_unexpected_counts"]
        ]
    for key in ("unexpected_list", "unexpected_index_list", "partial_unexpected_index_list"):
        if details.get(key) and masking.masks(column):
            details[key] = []  # not asked for (SUMMARY); never rendered with a person's values


def _masked_results(context: Any, outcome: Any, masking: Masking) -> None:
    """Mask example values in the run's results, and in the stored copies the Data Docs render."""
    store = context.validation_results_store
    for key, validation in outcome.run_results.items():
        for result in validation.results:
            _mask_unexpected_values(result, masking)
        stored = store.get(key)
        for result in stored.results:
            _mask_unexpected_values(result, masking)
        store.set(key, stored)


def _expectation_summary(result: Any) -> ExpectationSummary:
    config = result.expectation_config
    details = result.result or {}
    error = _evaluation_error(result.exception_info)
    examples = details.get("partial_unexpected_list") or []
    unexpected = details.get("unexpected_count")
    if config.type == "unexpected_rows_expectation":
        unexpected = details.get("observed_value")  # GX reports the count of unexpected rows there
    return ExpectationSummary(
        expectation=config.type,
        column=config.kwargs.get("column"),
        description=config.description,
        success=bool(result.success),
        element_count=details.get("element_count"),
        unexpected_count=unexpected,
        unexpected_percent=details.get("unexpected_percent"),
        observed_value=details.get("observed_value"),
        examples=list(examples)[:EXAMPLE_VALUES],
        error=error,
    )


def run_suites(
    engine: Engine,
    suites: Mapping[str, Sequence[Expectation]],
    *,
    docs_dir: Path,
    kind: str,
    run_name: str,
    batches: Mapping[str, TableBatch] | None = None,
    notes: Sequence[str] = (),
    masking: Masking = MASKED,
) -> SuiteResults:
    """Validate each table's expectations with one Checkpoint; build Data Docs into `docs_dir`.

    suites: table name -> GX expectation objects. A table missing from `batches` is
    validated whole. Example values of personal fields are masked (`masking`).
    """
    import great_expectations as gx

    if not suites:
        raise UsageError(f"no {kind} tables to validate")
    docs_dir = private_dir(Path(docs_dir))
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = _context(docs_dir)
    from great_expectations.datasource.fluent import SQLDatasource

    # Bound before GX sees it: GX tests the connection as it adds a datasource. The connection
    # string is a placeholder no driver accepts, so GX can never open a connection of its own.
    datasource = SQLDatasource(name=f"{kind}_db", connection_string=f"{BOUND_ENGINE_PLACEHOLDER}{kind}")
    _bind_engine(datasource, engine)
    datasource = context.data_sources.add_sql(datasource)
    definitions = []
    # GX names its Data Docs files after assets and suites (a dot in a suite name makes a folder):
    # they get a file-safe stem of the table's name, and the table is found again by that stem.
    tables_by_stem = {stem: table for table, stem in object_file_stems(suites).items()}
    for stem, table in tables_by_stem.items():
        expectations = suites[table]
        batch = (batches or {}).get(table, TableBatch(table))
        sample = _sample_query(engine, table, batch.sample_rows) if batch.sample_rows is not None else None
        if batch.sample_rows is not None and sample is None:
            notes = [*notes, f"{table}: profiled whole, not sampled (GX cannot sample a table whose name holds ':')"]
        asset: QueryAsset | TableAsset
        if sample is not None:
            asset = datasource.add_query_asset(name=stem, query=sample)
        else:
            # Quoted through the dialect: GX would otherwise put the name into its SQL as it is.
            asset = datasource.add_table_asset(name=stem, table_name=sa.sql.quoted_name(table, quote=True))
        suite = context.suites.add(gx.ExpectationSuite(name=f"{kind}.{stem}", meta={"table": table}))
        for expectation in expectations:
            describe(expectation)  # plain words, in the report and the Data Docs alike
            suite.add_expectation(expectation)
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{kind}.{stem}", data=asset.add_batch_definition_whole_table("all rows"), suite=suite
                )
            )
        )
    # Data Docs are built once after the run: GX's UpdateDataDocsAction rebuilds the site
    # after every validation (its templates each time), which costs more than validating.
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{kind}-{run_name}",
            validation_definitions=definitions,
            actions=[],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_VALUES},
        )
    )
    outcome = checkpoint.run(run_id=gx.RunIdentifier(run_name=run_name))
    _masked_results(context, outcome, masking)
    context.build_data_docs(site_names=[DOCS_SITE])
    make_offline(docs_dir)  # GX's pages fetch their scripts and styles from CDNs; auditors read offline
    make_tree_private(docs_dir)  # GX wrote them with the process umask
    summaries = []
    for validation in outcome.run_results.values():
        name = validation.suite_name
        table = tables_by_stem[name.split(".", 1)[1]]
        evaluated = [_expectation_summary(r) for r in validation.results]
        summaries.append(SuiteSummary(name=name, table=table, success=bool(validation.success), expectations=evaluated))
    summaries.sort(key=lambda s: s.table)
    return SuiteResults(
        kind=kind,
        success=all(s.success for s in summaries),
        suites=summaries,
        data_docs_index=docs_dir / "index.html",
        notes=list(notes),
    )
