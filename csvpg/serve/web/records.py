"""The history as the pages read it: one connection, the schema there and any run end
kept while the database was away written first (as ``csvpg runs`` reads it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from csvpg.engine import pending
from csvpg.pg.connect import connect
from csvpg.pg.schema import ensure_schema
from csvpg.serve import Server


@contextmanager
def reading(server: Server) -> Iterator[psycopg.Connection[Any]]:
    with connect(server.dsn) as conn:
        ensure_schema(conn)
        pending.settle(conn)
        yield conn
