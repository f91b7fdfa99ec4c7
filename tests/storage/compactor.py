"""A process for the concurrency tests: compacts a table, or reads it, in a loop once told to go."""

from __future__ import annotations

import json
import os
import sys
import time

from storage import Store


def main(location: str, mode: str, rounds: int, go: str) -> None:
    store = Store(location)
    while not os.path.exists(go):
        time.sleep(0.005)
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
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
