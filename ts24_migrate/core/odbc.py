"""ODBC connection strings that say exactly what the database URL says.

SQLAlchemy's pyodbc connector writes every URL in the SQL Server form
``Server=host,port``. MariaDB Connector/ODBC reads that whole text as a host
name and connects to its default port 3306: on a real server, a URL with port
3399, or even port 1, reached the server on 3306. A stage that reaches another
server than it was told could read, and one day purge, the wrong database, so
`db` replaces SQLAlchemy's string with the one built here, per driver:

    MariaDB / MySQL Connector/ODBC   DRIVER={...};SERVER=host;PORT=3399;DATABASE=ts24;UID=...;PWD={...};TCPIP=1
    Microsoft ODBC Driver (SQL Server) DRIVER={...};SERVER=host,1433;DATABASE=ts24;UID=...;PWD={...}
    FreeTDS                          DRIVER={...};SERVER=host;PORT=1433;DATABASE=ts24;UID=...;PWD={...}

Every other query option of the URL (``charset=utf8mb4``, ``Encrypt=yes``,
``ApplicationIntent=ReadOnly``...) is passed through as ``KEY=value``. Values
that the ODBC grammar would misread (a ``;``, a brace, spaces at the ends) are
written ``{...}`` with ``}`` doubled; passwords always are. A URL whose query
repeats what the URL already says (``?port=``, ``?server=``, ``?pwd=``...)
is refused: the driver would let the last one win, silently. Error messages
name keys, never values.

Example::

    >>> odbc_connection_string(make_url(
    ...     "mysql+pyodbc://ts24:p%3Bw@db1:3399/ts24?driver=MariaDB+Unicode&charset=utf8mb4"))
    'DRIVER={MariaDB Unicode};SERVER=db1;PORT=3399;DATABASE=ts24;UID=ts24;PWD={p;w};TCPIP=1;charset=utf8mb4'
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url  # noqa: F401  (make_url: the docstring example)

from .errors import ConfigError

# Keywords of pyodbc.connect() itself, which SQLAlchemy takes out of the query; not part of the string.
PYODBC_ARGUMENTS = frozenset({"ansi", "unicode_results", "autocommit"})
# What the URL itself says (host, port, database, user, password) under any of the drivers' names.
_URL_KEYWORDS = frozenset(
    {
        "server",
        "servername",
        "address",
        "addr",
        "network address",
        "port",
        "database",
        "db",
        "uid",
        "user",
        "user id",
        "pwd",
        "password",
    }
)
_MARIADB_BACKENDS = ("mysql", "mariadb")


def quote_value(value: str, *, always: bool = False) -> str:
    """A value as the ODBC grammar reads it back unchanged: braced (``}`` doubled) when needed.

    >>> quote_value("utf8mb4"), quote_value("a;b}"), quote_value("s3cret", always=True)
    ('utf8mb4', '{a;b}}}', '{s3cret}')
    """
    if "\x00" in value:
        raise ValueError("a NUL character cannot be written in an ODBC connection string")
    if always or value != value.strip() or any(c in value for c in ";{}") or value.startswith("="):
        return "{" + value.replace("}", "}}") + "}"
    return value


def _query_options(url: URL) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in url.query.items():
        if not isinstance(value, str) or key.lower() in {k.lower() for k in options}:
            raise ConfigError(f"database URL: option {key!r} is given more than once")
        options[key] = value
    return options


def _family(backend: str, driver: str | None) -> str:
    if backend == "mssql":
        return "freetds" if driver and "freetds" in driver.lower() else "sqlserver"
    if backend in _MARIADB_BACKENDS:
        return "mariadb"
    raise ConfigError(
        f"database URL: ODBC connections to {backend} are not supported (use mssql+pyodbc or mysql+pyodbc)"
    )


def odbc_connection_string(url: URL) -> str:
    """The ODBC connection string for a ``mssql+pyodbc`` or ``mysql+pyodbc`` URL (see the module doc).

    ``?odbc_connect=...`` is the operator's own string and is used as written;
    ``?dsn=NAME`` (or a host without a database and without a driver, as in
    SQLAlchemy) names a data source, which then holds server and port itself.
    """
    options = _query_options(url)
    if "odbc_connect" in options:
        return options["odbc_connect"]
    for key in PYODBC_ARGUMENTS:
        options.pop(key, None)
    lowered = {k.lower(): k for k in options}
    driver = options.pop(lowered["driver"]) if "driver" in lowered else None
    dsn = options.pop(lowered["dsn"]) if "dsn" in lowered else None
    host, database = url.host, url.database
    if dsn is None and driver is None and host and not database:
        dsn, host = host, None  # SQLAlchemy's convention: mssql+pyodbc://user:pw@MY_DSN
    if dsn is not None and driver is not None:
        raise ConfigError(
            "database URL: give either ?driver= or ?dsn=, not both (the driver would ignore the data source)"
        )
    if dsn is None and driver is None:
        raise ConfigError(
            "database URL: name the ODBC driver, e.g. ?driver=MariaDB+Unicode or "
            "?driver=ODBC+Driver+18+for+SQL+Server (or a data source: ?dsn=NAME)"
        )
    family = _family(url.get_backend_name(), driver)
    repeated = sorted(k for k in options if k.lower() in _URL_KEYWORDS)
    if repeated:
        raise ConfigError(
            f"database URL: option {repeated[0]!r} repeats what the URL itself says (host, port, "
            "database, user or password); write it once, in the URL"
        )
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigError(f"database URL: port {url.port} is not a TCP port (1-65535)")
    socket = family == "mariadb" and "socket" in (k.lower() for k in options)
    if socket and (host or url.port is not None):
        raise ConfigError("database URL: a local socket (?socket=) and a host or port are both given; keep one of them")
    if dsn is not None and (host or url.port is not None):
        raise ConfigError(
            "database URL: a data source (DSN) names its own server and port; "
            "remove host and port from the URL, or use ?driver= instead of the DSN"
        )

    def checked(name: str, value: str) -> str:
        # MariaDB Connector/ODBC trims spaces around every value, braced or not: such a value would
        # silently become another one (a password another password), so refuse it plainly.
        if family == "mariadb" and value != value.strip():
            raise ConfigError(
                f"database URL: the {name} begins or ends with a space, which MariaDB "
                "Connector/ODBC cannot pass on; change it"
            )
        try:
            return quote_value(value, always=name == "password")
        except ValueError:
            raise ConfigError(f"database URL: the {name} holds a NUL character") from None

    if dsn is not None:
        parts = [f"DSN={checked('data source name', dsn)}"]
    else:
        assert driver is not None  # neither a driver nor a data source was refused above
        parts = [f"DRIVER={{{driver.replace('}', '}}')}}}"]
    if host:
        if family == "sqlserver":
            parts.append(f"SERVER={checked('host', host + (f',{url.port}' if url.port else ''))}")
        else:
            parts.append(f"SERVER={checked('host', host)}")
            if url.port is not None:
                parts.append(f"PORT={url.port}")
    if database:
        parts.append(f"DATABASE={checked('database name', database)}")
    if url.username:
        parts.append(f"UID={checked('user name', url.username)}")
        if url.password:
            parts.append(f"PWD={checked('password', str(url.password))}")
    elif family != "mariadb" and not any(k.lower() == "authentication" for k in options):
        parts.append("Trusted_Connection=Yes")  # as SQLAlchemy does: Windows/Kerberos login
    if family == "mariadb" and host and not any(k.lower() == "tcpip" for k in options):
        # Over TCP to the host and port given, even for "localhost" (which Connector/C may otherwise
        # take to mean the local Unix socket, whatever the port).
        parts.append("TCPIP=1")
    if "odbc_autotranslate" in options:
        options["AutoTranslate"] = options.pop("odbc_autotranslate")
    for key, value in options.items():
        if not key or any(c in key for c in "=;{}") or key != key.strip():
            raise ConfigError(f"database URL: {key!r} is not a valid ODBC option name")
        parts.append(f"{key}={checked(f'value of option {key}', value)}")
    return ";".join(parts)
