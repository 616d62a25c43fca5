"""Check an MLflow tracking URI before MLflow touches it, and keep its passwords out of messages.

MLflow gives up on a store slowly and loudly: a refused database port costs ten retries over
about 100 s, each with a warning, and a SQLite file it cannot write another ten. The checks
here fail in seconds with one line each (:class:`frnn_cli.errors.BadInput`):
:func:`check_sqlite` for ``sqlite:///FILE``, :func:`unreachable_database` (one TCP
connection) and :func:`check_database` (one driver connection with a timeout) for
``postgresql://``, ``mysql://`` and ``mssql://``, and :func:`missing_module` for a database
driver that is not installed. :func:`hide_password` masks the passwords of a URI.

Nothing here imports MLflow; :mod:`frnn_cli.export.mlflow_store` calls these first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from frnn_cli.errors import BadInput

INSTALL_HINT = "pip install 'frnn[mlflow]'"
#: Python module a database URI needs but may lack -> the pip command that provides it. These
#: are SQLAlchemy's default drivers (``postgresql://`` is psycopg 3 from SQLAlchemy 2.1 on,
#: psycopg2 before) and the ones named with ``+driver`` (``mysql+pymysql://``).
DRIVER_HINTS = {
    "psycopg": "pip install 'psycopg[binary]'",
    "psycopg2": "pip install psycopg2-binary",
    "pg8000": "pip install pg8000",
    "asyncpg": "pip install asyncpg",
    "MySQLdb": "pip install mysqlclient",
    "pymysql": "pip install pymysql",
    "mysql": "pip install mysql-connector-python",
    "mariadb": "pip install mariadb",
    "pyodbc": "pip install pyodbc (and an ODBC driver for SQL Server)",
    "pymssql": "pip install pymssql",
    "oracledb": "pip install oracledb",
    "sqlalchemy": INSTALL_HINT,
    "alembic": INSTALL_HINT,
}

#: Database dialects of MLflow's SQL stores (the URI scheme up to any ``+driver``) -> default port.
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
#: Seconds allowed for the TCP probe of a database server, and for the driver's own connection.
CONNECT_TIMEOUT_SECONDS = 5
#: SQLAlchemy driver name -> its connect() keyword for a connection timeout in seconds.
#: (libpq, behind psycopg, waits for ever by default on a server that accepts and never answers.)
DRIVER_TIMEOUT_ARGS = {"psycopg": "connect_timeout", "psycopg2": "connect_timeout", "pymysql": "connect_timeout",
                       "mysqldb": "connect_timeout", "pg8000": "timeout"}
#: Query parameters of a database URI that carry a password (compared without case).
PASSWORD_PARAMS = ("password", "passwd", "pwd")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the current folder, or absolute
    with four slashes), or None for any other URI.

    Raises
    ------
    BadInput
        For an in-memory SQLite URI (``sqlite://`` or ``:memory:``), which keeps nothing.
    """
    if not uri.startswith("sqlite:"):
        return None
    path = uri.removeprefix("sqlite:").split("?", 1)[0]
    if not path.startswith("///") or path[3:] in ("", ":memory:"):
        raise BadInput(f"--mlflow {uri!r}: an in-memory SQLite store keeps nothing; "
                       "expected sqlite:///FILE (relative) or sqlite:////ABS/PATH")
    return Path(path[3:])


def check_sqlite(uri: str, path: Path) -> None:
    """Make sure the SQLite file can be opened for writing before MLflow touches it.

    MLflow retries a failing SQLite connection ten times with growing pauses (about 100 s)
    before it gives up; this check fails in milliseconds instead. It creates the missing
    parent folders, as MLflow would, and an empty database file if there is none.

    Raises
    ------
    BadInput
        If the path is a folder, a parent is a file or cannot be created, or the file is not
        an SQLite database or is not writable.
    """
    if path.is_dir():
        raise BadInput(f"--mlflow {uri!r}: {str(path)!r} is a folder; expected an SQLite database file")
    # mkdir would say only "File exists" (or "Not a directory") for a parent that is a file.
    nearest = next((parent for parent in path.parents if parent.exists()), None)
    if nearest is not None and not nearest.is_dir():
        raise BadInput(f"--mlflow {uri!r}: {str(nearest)!r}, a parent of the database path, is a file, not a folder; "
                       "expected a database path whose parents are folders (or do not exist yet)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=10)
        try:
            con.execute("PRAGMA schema_version").fetchone()  # fails on a file that is no database
            con.execute("BEGIN IMMEDIATE")  # takes the write lock: fails on a read-only file
            con.rollback()
        finally:
            con.close()
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BadInput(f"--mlflow {uri!r}: cannot write the SQLite database {str(path)!r}: {reason}") from None


def missing_module(uri: str, exc: ImportError) -> BadInput | None:
    """The one-line error for a store whose Python module (a database driver) is not installed.

    Parameters
    ----------
    uri : str
        The tracking URI, for the message.
    exc : ImportError
        Raised while MLflow (through SQLAlchemy) opened the store.

    Returns
    -------
    BadInput or None
        The error naming the missing module and what to install (the pip command of
        :data:`DRIVER_HINTS`, or a generic pointer for a module not listed there); None when
        the exception names no module, or one of MLflow's or frnn's own (a broken install or a
        bug, not a missing driver), which the caller then raises as it is.
    """
    name = exc.name or ""
    top = name.split(".")[0]
    if not name or top in ("mlflow", "frnn_cli"):
        return None
    hint = DRIVER_HINTS.get(name) or DRIVER_HINTS.get(top)
    what = ("install it: " + hint) if hint else "install the package that provides it (the database's SQLAlchemy driver)"
    return BadInput(f"--mlflow {uri!r}: this store needs the Python module {name!r} (its database driver), "
                    f"which is not installed; {what}")


def database_dialect(uri: str) -> str | None:
    """The dialect of a database URI (``postgresql`` for ``postgresql+psycopg2://...``), or None
    for any URI whose scheme is not one of :data:`DATABASE_PORTS` (``sqlite:``, ``http:``, ...)."""
    scheme, colon, _ = uri.partition(":")
    dialect = scheme.split("+", 1)[0].strip().lower()
    return dialect if colon and dialect in DATABASE_PORTS else None


def database_address(uri: str) -> tuple[str, str, int] | None:
    """The dialect, host and port a database URI connects to over TCP, or None when the export
    should not probe it.

    None for a URI that is not a database of :data:`DATABASE_PORTS`, one without a host (a
    local socket: ``postgresql:///db``), one that names the host in its query (``?host=``,
    ``unix_socket=``, ``odbc_connect=``), ``mysql://localhost`` (MySQL's C client connects to
    "localhost" through a socket) and ``mssql://`` without a port (the host may be an ODBC
    data source name). The port defaults to the dialect's usual one.

    Raises
    ------
    BadInput
        If the URI's port is not a number from 0 to 65535.
    """
    from urllib.parse import parse_qsl, urlsplit

    dialect = database_dialect(uri)
    if dialect is None:
        return None
    try:
        parts = urlsplit(uri)
        if not parts.hostname:
            return None
        port = parts.port
    except ValueError:
        raise BadInput(f"--mlflow {uri!r}: the port is not a number from 0 to 65535; "
                       "expected e.g. postgresql://USER@HOST:5432/DATABASE") from None
    keys = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if keys & {"host", "hostaddr", "unix_socket", "odbc_connect"}:
        return None
    if (dialect == "mysql" and parts.hostname == "localhost") or (dialect == "mssql" and port is None):
        return None
    return dialect, parts.hostname, port or DATABASE_PORTS[dialect]


def unreachable_database(uri: str) -> BadInput | None:
    """The one-line error for a database server that does not accept a TCP connection, or None.

    One plain TCP connection (:func:`socket.create_connection`, at most
    :data:`CONNECT_TIMEOUT_SECONDS`), closed at once, to the address of
    :func:`database_address`. It needs no driver, so it runs before the driver is imported, and
    it turns an unknown host or a refused port, which MLflow retries for about 100 s, into an
    error in milliseconds (a host that drops the packets: in :data:`CONNECT_TIMEOUT_SECONDS`).
    None when the connection is accepted or the URI is not probed.

    Raises
    ------
    BadInput
        If the URI's port is not a number.
    """
    import socket

    address = database_address(uri)
    if address is None:
        return None
    dialect, host, port = address
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
            return None
    except TimeoutError:
        reason = f"no answer within {CONNECT_TIMEOUT_SECONDS} s"
    except OSError as exc:  # socket.gaierror (unknown host), ConnectionRefusedError, ...
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    return BadInput(f"--mlflow {uri!r}: cannot connect to {host}:{port} ({reason}); "
                    f"expected the address of a running {dialect} server")


def check_database(uri: str) -> None:
    """Open and close one connection to a database store through SQLAlchemy, before MLflow does.

    MLflow would retry a connection that fails (a wrong password, a database that does not
    exist) ten times over about 100 s; this fails once. The driver's connect timeout
    (:data:`DRIVER_TIMEOUT_ARGS`, unless the URI sets it) is :data:`CONNECT_TIMEOUT_SECONDS`, so
    a server that accepts the connection but never answers is reported too.

    Raises
    ------
    ImportError
        If the database's driver is not installed (see :func:`missing_module`).
    sqlalchemy.exc.SQLAlchemyError
        If the URI is malformed or the connection fails.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(uri)
    connect_args = {}
    timeout_arg = DRIVER_TIMEOUT_ARGS.get(url.get_dialect().driver)
    if timeout_arg and timeout_arg not in url.query:
        connect_args[timeout_arg] = CONNECT_TIMEOUT_SECONDS
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _is_password_param(piece: str) -> bool:
    """Whether ``key=value`` (one piece of a query string) gives a non-empty password."""
    from urllib.parse import unquote_plus

    key, sep, value = piece.partition("=")
    return bool(sep and value) and unquote_plus(key).strip().lower() in PASSWORD_PARAMS


def hide_password(uri: str) -> str:
    """``uri`` with every password replaced by ``***``, for messages and logs.

    Masks the password of the user info (``postgresql://u:***@host/db``) and the value of the
    query parameters :data:`PASSWORD_PARAMS` (``?user=u&password=***``, any case);
    returns ``uri`` unchanged when it has none.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    netloc = parts.netloc
    if password:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    pieces = parts.query.split("&")
    query = "&".join(p.partition("=")[0] + "=***" if _is_password_param(p) else p for p in pieces)
    if netloc == parts.netloc and query == parts.query:
        return uri
    return parts._replace(netloc=netloc, query=query).geturl()


def _secrets(uri: str) -> set[str]:
    """The passwords in ``uri``, as written and decoded (see :func:`hide_password`)."""
    from urllib.parse import unquote, unquote_plus, urlsplit

    try:
        parts = urlsplit(uri)
        found = {parts.password or ""}
    except ValueError:
        return set()
    found |= {p.partition("=")[2] for p in parts.query.split("&") if _is_password_param(p)}
    return {form for secret in found for form in (secret, unquote(secret), unquote_plus(secret)) if form}


__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DATABASE_PORTS",
    "DRIVER_HINTS",
    "INSTALL_HINT",
    "PASSWORD_PARAMS",
    "check_database",
    "check_sqlite",
    "database_address",
    "database_dialect",
    "hide_password",
    "missing_module",
    "sqlite_path",
    "unreachable_database",
]
