"""The typed records of storage/records.py have exactly the columns and types of schemas.py."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime

import pyarrow as pa
import pytest

from storage import SCHEMAS, Store
from storage import records as rec

SCALARS = {str: pa.types.is_string, int: pa.types.is_integer, float: pa.types.is_floating}


def _accepts(annotation: object, arrow: pa.DataType) -> bool:
    """Whether a record field annotated ``annotation`` fits a column of type ``arrow``."""
    kind = annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(kind) is tuple:
        inner = typing.get_args(kind)[0]
        return pa.types.is_list(arrow) and SCALARS[inner](arrow.value_type)
    if kind is bool:
        return pa.types.is_boolean(arrow)
    if kind is datetime:
        return pa.types.is_timestamp(arrow)
    return SCALARS[kind](arrow)


@pytest.mark.parametrize("table", list(SCHEMAS))
def test_each_record_has_the_columns_and_types_of_its_table(table):
    record = rec.RECORDS[table]
    hints = typing.get_type_hints(record)
    fields = [f.name for f in dataclasses.fields(record)]
    assert fields == SCHEMAS[table].names, f"{record.__name__} != schema of {table}"
    for name in fields:
        arrow = SCHEMAS[table].field(name).type
        assert _accepts(hints[name], arrow), f"{table}.{name}: {hints[name]} vs {arrow}"


def test_records_round_trip_through_their_tables(data_dir):
    store = Store(data_dir)
    run = rec.RunRecord("r1", pair_id="p", style_ids=("a", "b"), steps=3, loss_total=1.5)
    store.runs.record([run], [rec.CurvePoint("r1", 0, 0.1, 2.0), rec.CurvePoint("r1", 1, 0.2, 1.5)])
    got = store.read("runs").to_pylist()[0]
    assert got["style_ids"] == ["a", "b"] and got["steps"] == 3 and got["status"] == "ok"
    assert store.read("loss_curves").num_rows == 2
