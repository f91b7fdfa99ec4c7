"""The runs: pending (pair, config) work, claims on it, recording batches, summaries.

A work item is one pair under one config, identified by ``(pair_id, config_hash)``.
It is *done* once a run of it is recorded ``ok``. Before running items a worker
*claims* them (a lease each, ``leases/work/<config_hash>/<pair_id>``) and then checks
again which are done, so two workers given the same items run each one once; a claim
of a worker that died on this machine is free at once, one of another machine when
its lease expires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.lease import Lease, Leases
from storage.records import CurvePoint, MatrixCell, RunRecord
from stylebench.vocabulary import RUN_STATUSES

if TYPE_CHECKING:
    from storage.store import Store

log = logging.getLogger(__name__)

CLAIM_SECONDS = 4 * 3600.0  # how long another machine waits for a silent worker's items


@dataclass(frozen=True)
class WorkItem:
    """One pair under one config: everything a worker needs, as plain values."""

    pair_id: str
    content_id: str
    content_path: str
    style_ids: tuple[str, ...]
    style_paths: tuple[str, ...]
    style_weights: tuple[float, ...]
    config: str  # canonical JSON of the planned TransferConfig
    config_hash: str
    # the pair's segmentation masks (paths in the data directory): content, one per style
    content_mask: str | None = None
    style_masks: tuple[str, ...] = ()
    experiment: str | None = None  # the name of the experiment that planned it

    @property
    def key(self) -> tuple[str, str]:
        return (self.pair_id, self.config_hash)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkItem:
        return cls(
            pair_id=d["pair_id"],
            content_id=d["content_id"],
            content_path=d["content_path"],
            style_ids=tuple(d["style_ids"]),
            style_paths=tuple(d["style_paths"]),
            style_weights=tuple(float(w) for w in d["style_weights"]),
            config=d["config"],
            config_hash=d["config_hash"],
            content_mask=d.get("content_mask"),
            style_masks=tuple(d.get("style_masks") or ()),
            experiment=d.get("experiment"),
        )


@dataclass(frozen=True)
class PlannedConfig:
    """A config to plan for: its canonical JSON and its hash."""

    json: str
    hash: str


@dataclass
class Claim:
    """Items this worker holds (and that were not done when claimed); release when recorded."""

    runs: Runs
    items: list[WorkItem]
    leases: list[Lease] = field(default_factory=list)
    skipped: int = 0  # held by another worker, or done meanwhile

    def release(self) -> None:
        for lease in self.leases:
            self.runs.leases.release(lease)
        self.leases.clear()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Runs:
    """The pairs, runs and loss_curves tables of one store, as work to do and work done."""

    def __init__(self, store: Store):
        self.store = store
        self.leases = Leases(store.loc)

    # planning ---------------------------------------------------------------
    def pairs(self, strategy: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Recorded pairs (of ``strategy``), oldest first."""
        pairs = self.store.query(
            """SELECT pair_id, any_value(content_id) AS content_id,
                      any_value(style_ids) AS style_ids,
                      any_value(style_weights) AS style_weights, min(created_at) AS created_at,
                      any_value(content_mask) AS content_mask,
                      any_value(style_masks) AS style_masks
               FROM pairs WHERE ? IS NULL OR strategy = ?
               GROUP BY pair_id ORDER BY created_at, pair_id""",
            [strategy, strategy],
        ).to_pylist()
        return pairs if limit is None else pairs[:limit]

    def pending(
        self,
        configs: Sequence[PlannedConfig],
        *,
        strategy: str | None = None,
        limit: int | None = None,
        experiment: str | None = None,
    ) -> list[WorkItem]:
        """Every (pair, config) not yet recorded ``ok``, pairs oldest first, as work of
        ``experiment``."""
        pairs = self.pairs(strategy, limit)
        paths = self.store.catalog.paths()
        done = self.done()
        items = []
        for config in configs:
            for p in pairs:
                if (p["pair_id"], config.hash) in done:
                    continue
                ids = [p["content_id"], *p["style_ids"]]
                missing = [i for i in ids if i not in paths]
                if missing:
                    log.warning(
                        "pair %s names image(s) not in the catalog: %s", p["pair_id"], missing
                    )
                    continue
                items.append(
                    WorkItem(
                        pair_id=p["pair_id"],
                        content_id=p["content_id"],
                        content_path=paths[p["content_id"]] or "",
                        style_ids=tuple(p["style_ids"]),
                        style_paths=tuple(paths[s] or "" for s in p["style_ids"]),
                        style_weights=tuple(p["style_weights"]),
                        config=config.json,
                        config_hash=config.hash,
                        content_mask=p["content_mask"],
                        style_masks=tuple(p["style_masks"] or ()),
                        experiment=experiment,
                    )
                )
        return items

    def done(self) -> set[tuple[str, str]]:
        """Every (pair_id, config_hash) recorded ``ok``."""
        rows = self.store.query(
            "SELECT DISTINCT pair_id, config_hash FROM runs WHERE status = 'ok'"
        ).to_pylist()
        return {(r["pair_id"], r["config_hash"]) for r in rows}

    def not_done(self, items: Sequence[WorkItem]) -> list[WorkItem]:
        """``items`` less those recorded ``ok`` (since they were planned)."""
        if not items:
            return []
        done = self.done()
        return [i for i in items if i.key not in done]

    # claiming ---------------------------------------------------------------
    def claim(self, items: Sequence[WorkItem], ttl_s: float = CLAIM_SECONDS) -> Claim:
        """Claim ``items``: those another worker holds, or that are done, are left out."""
        claim = Claim(self, [])
        held: list[tuple[WorkItem, Lease]] = []
        for item in items:
            lease = self.leases.acquire(
                f"work/{item.config_hash}/{item.pair_id}", ttl_s, owner="stylize"
            )
            if lease is None:
                claim.skipped += 1
            else:
                held.append((item, lease))
        done = self.done() if held else set()
        for item, lease in held:
            if item.key in done:
                self.leases.release(lease)
                claim.skipped += 1
            else:
                claim.items.append(item)
                claim.leases.append(lease)
        return claim

    # recording --------------------------------------------------------------
    def record(self, runs: Sequence[RunRecord], curves: Sequence[CurvePoint] = ()) -> None:
        """Record a batch: its curves first, its runs last (a run refers only to what exists)."""
        self.store.append("loss_curves", [c.row() for c in curves])
        self.store.append("runs", [r.row() for r in runs])

    # summaries --------------------------------------------------------------
    def by_method(self, config_hashes: Sequence[str]) -> list[dict[str, Any]]:
        """Runs of these configs by method and status, with their mean time."""
        return self.store.query(
            "SELECT method, status, count(*) AS runs, round(avg(seconds_total), 2) AS mean_seconds "
            "FROM runs WHERE list_contains(?, config_hash) GROUP BY 1, 2 ORDER BY 1, 2",
            [list(config_hashes)],
        ).to_pylist()

    def outcome(self, items: Iterable[WorkItem], since: datetime) -> dict[str, int]:
        """How many runs of ``items`` were recorded since ``since``, by status."""
        keys = [f"{i.pair_id}/{i.config_hash}" for i in items]
        rows = self.store.query(
            "SELECT status, count(*) AS n FROM runs WHERE finished_at >= ? "
            "AND list_contains(?, pair_id || '/' || config_hash) GROUP BY 1",
            [since, keys],
        ).to_pylist()
        counts = {s: 0 for s in RUN_STATUSES}
        counts.update({r["status"]: int(r["n"]) for r in rows})
        return counts

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` runs, newest first."""
        return self.store.query(
            "SELECT * FROM runs ORDER BY finished_at DESC NULLS LAST LIMIT ?", [int(limit)]
        ).to_pylist()

    def curves(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The loss curves of these runs: total and photorealism term by step."""
        if not run_ids:
            return []
        return self.store.query(
            "SELECT run_id, step, loss_total, loss_photoreal FROM loss_curves "
            "WHERE list_contains(?, run_id)",
            [list(run_ids)],
        ).to_pylist()

    def select(
        self,
        *,
        experiments: Sequence[str] | None = None,
        config_hashes: Sequence[str] | None = None,
        where: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first: of these experiments (by name), of these configs, matching
        ``where`` (an SQL condition on the runs' columns, run as a locked query: it reads
        the tables only), at most ``limit``."""
        conditions, params = ["TRUE"], []
        if experiments is not None:
            conditions.append("list_contains(?, experiment)")
            params.append(list(experiments))
        if config_hashes is not None:
            conditions.append("list_contains(?, config_hash)")
            params.append(list(config_hashes))
        if where is not None:
            if ";" in where:
                raise ValueError(f"a run condition is one SQL expression, without ';': {where!r}")
            conditions.append(f"(\n{where}\n)")  # own lines: a -- comment ends there
        sql = f"SELECT * FROM runs WHERE {' AND '.join(conditions)} "
        sql += "ORDER BY finished_at DESC NULLS LAST, run_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.store.query(sql, params or None, locked=where is not None).to_pylist()

    def experiments(self) -> list[dict[str, Any]]:
        """Each experiment named in the runs: runs, settings, pairs and runs by status,
        the latest first."""
        return self.store.query(
            "SELECT experiment, count(*) AS runs, count(DISTINCT config_hash) AS settings, "
            "count(DISTINCT pair_id) AS pairs, "
            "count(*) FILTER (WHERE status = 'ok') AS ok, "
            "count(*) FILTER (WHERE status = 'failed') AS failed, "
            "count(*) FILTER (WHERE status = 'diverged') AS diverged, "
            "max(finished_at) AS finished_at "
            "FROM runs WHERE experiment IS NOT NULL GROUP BY 1 ORDER BY finished_at DESC, 1"
        ).to_pylist()

    def summary(self) -> list[dict[str, Any]]:
        """Per method: runs, ok runs, mean seconds and median style loss."""
        return self.store.query(
            "SELECT method, count(*) AS runs, count(*) FILTER (WHERE status = 'ok') AS ok, "
            "round(avg(seconds_total), 2) AS mean_seconds, "
            "round(median(loss_style), 4) AS median_style_loss "
            "FROM runs GROUP BY 1 ORDER BY 1"
        ).to_pylist()


class Matrices:
    """The loss_matrix table: record a matrix, read them back, summarise."""

    def __init__(self, store: Store):
        self.store = store

    def record(self, cells: Sequence[MatrixCell]) -> dict[str, Any]:
        """Record ``cells`` (one matrix); returns its size and mean off-diagonal losses."""
        self.store.append("loss_matrix", [c.row() for c in cells])
        off = [c for c in cells if c.image_a != c.image_b]

        def mean(values: list[float | None]) -> float:
            kept = [v for v in values if v is not None]
            return sum(kept) / len(kept) if kept else 0.0

        return {
            "images": len({c.image_a for c in cells}),
            "mean_style_loss": round(mean([c.style_loss for c in off]), 6),
            "mean_content_loss": round(mean([c.content_loss for c in off]), 6),
        }

    def all(self) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM loss_matrix").to_pylist()
