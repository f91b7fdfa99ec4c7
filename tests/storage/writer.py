"""A writer process for the concurrency and crash tests: appends batches of runs rows."""

from __future__ import annotations

import sys

from storage import Store


def main(location: str, writer: str, batches: int, rows_per_batch: int) -> None:
    store = Store(location)
    for b in range(batches):
        store.append(
            "runs",
            [
                {"run_id": f"{writer}-{b}-{i}", "method": writer, "seconds_total": float(i)}
                for i in range(rows_per_batch)
            ],
        )
        print(f"batch {b}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
