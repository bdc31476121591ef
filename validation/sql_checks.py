"""Row-level checks GX has no built-in expectation for, as UnexpectedRowsExpectation queries.

Each check is a WHERE clause built with SQLAlchemy Core and compiled for the
database it runs on (identifiers quoted, literals rendered by the dialect),
then wrapped as ``SELECT * FROM {batch} WHERE ...``: GX substitutes the table
(or the sampled query) it validates for ``{batch}``. The clause names the
batch's own columns unqualified, so it works for both.

Example::

    references(engine, "unit_code", units.c.unit_code, "dossiers' units exist")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import DefaultDialect

if TYPE_CHECKING:
    from great_expectations.expectations import UnexpectedRowsExpectation

TAX_CODE_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)


def _unexpected_rows(engine: Engine, where: sa.ColumnElement[bool], description: str) -> UnexpectedRowsExpectation:
    import great_expectations.expectations as gxe

    # GX runs the query through text(), which doubles '%' itself for drivers that need it: compile
    # with a paramstyle that leaves '%' alone (modulo, LIKE patterns), or it would be doubled twice.
    # (Engine.dialect is typed as the Dialect interface; every dialect class is a DefaultDialect.)
    dialect = cast(type[DefaultDialect], type(engine.dialect))(paramstyle="named")
    clause = str(where.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    # GX fills {batch} with str.format: braces of our own (regex quantifiers) must be doubled.
    clause = clause.replace("{", "{{").replace("}", "}}")
    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query="SELECT * FROM {batch} WHERE " + clause, description=description
    )


def references(
    engine: Engine,
    column: str,
    parent: sa.Column[Any],
    description: str,
    only: sa.ColumnElement[bool] | None = None,
) -> UnexpectedRowsExpectation:
    """Rows (those matching `only`, if given) whose `column` is set but names no row of `parent`'s
    table (an orphan)."""
    known = sa.select(parent).where(parent.is_not(None))
    value: sa.ColumnClause[Any] = sa.column(column)
    orphan = sa.and_(value.is_not(None), value.not_in(known))
    return _unexpected_rows(engine, orphan if only is None else sa.and_(only, orphan), description)


def rows_where(engine: Engine, condition: sa.ColumnElement[bool], description: str) -> UnexpectedRowsExpectation:
    """Rows for which `condition` holds are unexpected."""
    return _unexpected_rows(engine, condition, description)


def tax_code_check_digit_wrong(column: str) -> sa.ColumnElement[bool]:
    """A 10-digit (or 10-3 branch) tax code whose 10th digit is not its check digit.

    Check digit = 10 - (sum of the first nine digits times 31,29,23,19,17,13,7,5,3) mod 11;
    a remainder of 0 has no valid check digit. Codes of another shape are left to the
    format expectation (the CASE keeps the digit casts away from them).
    """
    code = sa.column(column, sa.String)

    def digit(position: int) -> sa.ColumnElement[int]:
        return sa.cast(sa.func.substr(code, position, 1), sa.Integer)

    remainder = sum((digit(i + 1) * weight for i, weight in enumerate(TAX_CODE_WEIGHTS)), sa.literal(0)) % 11
    wrong = sa.or_(remainder == 0, sa.literal(10) - remainder != digit(10))
    well_formed = code.regexp_match("^[0-9]{10}(-[0-9]{3})?$")
    return sa.case((well_formed, wrong), else_=sa.false())
