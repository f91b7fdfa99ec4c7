"""Storage: table schemas, atomic Parquet appends, the image store, DuckDB queries, the domain API."""

from storage.catalog import Catalog, CatalogImage, Snapshot, Undecided
from storage.lease import Lease, LeaseHeld, Leases
from storage.location import Location, StorageError
from storage.models import ModelStore, check_model_name
from storage.query import DamagedTable, QueryError, QueryTimeout
from storage.records import CurvePoint, Decision, ImageRecord, MatrixCell, PairRecord, RunRecord
from storage.runs import Claim, PlannedConfig, Runs, WorkItem
from storage.schemas import SCHEMAS, TABLES
from storage.store import Store

__all__ = [
    "SCHEMAS",
    "TABLES",
    "Catalog",
    "CatalogImage",
    "Claim",
    "CurvePoint",
    "DamagedTable",
    "Decision",
    "ImageRecord",
    "Lease",
    "LeaseHeld",
    "Leases",
    "Location",
    "MatrixCell",
    "ModelStore",
    "PairRecord",
    "PlannedConfig",
    "QueryError",
    "QueryTimeout",
    "RunRecord",
    "Runs",
    "Snapshot",
    "StorageError",
    "Store",
    "Undecided",
    "WorkItem",
    "check_model_name",
]
