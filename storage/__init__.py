"""Storage: table schemas, atomic Parquet appends, the image store and DuckDB queries."""

from storage.location import Location
from storage.query import QueryError
from storage.schemas import SCHEMAS, TABLES
from storage.store import Store

__all__ = ["SCHEMAS", "TABLES", "Location", "QueryError", "Store"]
