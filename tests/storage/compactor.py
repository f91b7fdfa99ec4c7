"""A process for the concurrency tests: compacts a table, or reads it, in a loop once let go."""

from __future__ import annotations

import json
import sys

from storage import Store
from tests.barrier import wait_at_the_line


def main(location: str, mode: str, rounds: int, ready: str, go: str) -> None:
    store = Store(location)
    wait_at_the_line(ready, go)
    seen, errors, skipped = [], [], 0
    for _ in range(rounds):
        try:
            if mode == "compact":
                skipped += store.compact("runs").skipped is not None
            else:
                rows = store.query("select count(*) as n, count(distinct run_id) as d from runs")
                seen.append(rows.to_pylist()[0])
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"seen": seen, "errors": errors, "skipped": skipped}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
