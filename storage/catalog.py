"""The image catalog: accepted images by role, id prefixes, known URLs, candidates and decisions.

Every question the scraper, the flows and the CLI ask about images is a method here;
the rule "only stored images can be accepted" lives in ``decide``, and the rule "no image
row without a decision" in ``record`` (decisions are written first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage.records import Decision, ImageRecord, PairRecord
from stylebench.vocabulary import STATUSES

if TYPE_CHECKING:
    from storage.store import Store


@dataclass(frozen=True)
class CatalogImage:
    """An image of the catalog: its id and stored path (relative to the data directory)."""

    image_id: str
    path: str | None
    role: str | None = None


@dataclass(frozen=True)
class Undecided:
    """An image of the catalog that has no curation decision, with what deciding it needs."""

    image_id: str
    urls: tuple[str, ...]  # the image URLs of every sighting
    role: str | None
    engine: str | None
    path: str | None  # None: the fetch failed
    width: int | None
    height: int | None
    phash: str | None
    blur: float | None
    is_grayscale: bool | None


@dataclass(frozen=True)
class Snapshot:
    """What a scrape or import needs to know of the catalog, read at one moment."""

    seen_urls: frozenset[str]  # every image URL with a row
    failed_urls: frozenset[str]  # URLs that only ever failed
    stored_ids: frozenset[str]  # image ids with a stored file
    accepted: tuple[tuple[str, str], ...]  # (image_id, phash) of accepted images
    undecided: tuple[Undecided, ...] = ()  # images with no decision, oldest first


class Catalog:
    """The images and curation tables of one store, as questions and answers."""

    def __init__(self, store: Store):
        self.store = store

    # reading ----------------------------------------------------------------
    def accepted(
        self, role: str | None = None, *, limit: int | None = None, order: str = "fetched"
    ) -> list[CatalogImage]:
        """Accepted images (of ``role``, if given), oldest first (``order="id"``: by id)."""
        by = "role, image_id" if order == "role" else "image_id"
        if order == "fetched":
            by = "fetched_at, image_id"
        cap = "" if limit is None else f" LIMIT {int(limit)}"
        rows = self.store.query(
            "SELECT image_id, path, role FROM catalog WHERE status = 'accepted' "
            f"AND (? IS NULL OR role = ?) ORDER BY {by}{cap}",
            [role, role],
        ).to_pylist()
        return [CatalogImage(r["image_id"], r["path"], r["role"]) for r in rows]

    def accepted_counts(self) -> dict[str, int]:
        """Accepted images per role."""
        rows = self.store.query(
            "SELECT role, count(*) AS n FROM catalog WHERE status = 'accepted' "
            "GROUP BY 1 ORDER BY 1"
        ).to_pylist()
        return {r["role"]: int(r["n"]) for r in rows}

    def paths(self) -> dict[str, str | None]:
        """Every image id and its stored path."""
        rows = self.store.query("SELECT image_id, path FROM catalog").to_pylist()
        return {r["image_id"]: r["path"] for r in rows}

    def entries(self, columns: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each image's catalog row (all columns, or ``columns``), by image id."""
        cols = "*" if not columns else ", ".join(dict.fromkeys(["image_id", *columns]))
        rows = self.store.query(f"SELECT {cols} FROM catalog").to_pylist()
        return {r["image_id"]: r for r in rows}

    def statuses(self, image_ids: Sequence[str]) -> dict[str, str | None]:
        """The current curation status of each of these images (None: no decision yet)."""
        if not image_ids:
            return {}
        rows = self.store.query(
            "SELECT image_id, any_value(status) AS status FROM catalog "
            "WHERE list_contains(?, image_id) GROUP BY image_id",
            [list(image_ids)],
        ).to_pylist()
        return {r["image_id"]: r["status"] for r in rows}

    def select(
        self,
        *,
        role: str | None = None,
        status: str | None = None,
        query: str | None = None,
        engine: str | None = None,
    ) -> list[dict[str, Any]]:
        """Catalog rows matching every filter given, by query, time, rank and id."""
        return self.store.query(
            "SELECT * FROM catalog WHERE (? IS NULL OR role = ?) AND (? IS NULL OR status = ?) "
            "AND (? IS NULL OR query = ?) AND (? IS NULL OR engine = ?) "
            "ORDER BY query NULLS LAST, fetched_at, rank, image_id",
            [role, role, status, status, query, query, engine, engine],
        ).to_pylist()

    def resolve(self, prefixes: Iterable[str]) -> list[str]:
        """Full image ids for ids or unique prefixes; a ValueError names unknown or ambiguous ones."""
        return [self.image(prefix).image_id for prefix in prefixes]

    def image(self, id_or_prefix: str) -> CatalogImage:
        """The image whose id is ``id_or_prefix`` or starts with it (case-insensitive); a
        ValueError when none does, or several do and none is exactly it."""
        p = id_or_prefix.strip().lower()
        if not p:
            raise ValueError("an empty image id was given")
        rows = self.store.query(
            "SELECT image_id, path, role FROM catalog WHERE starts_with(image_id, ?) "
            "ORDER BY image_id LIMIT 6",
            [p],
        ).to_pylist()
        if not rows:
            raise ValueError(f"no image id starts with {id_or_prefix!r}; see `stylebench images`")
        exact = [r for r in rows if r["image_id"] == p]
        if len(rows) > 1 and not exact:
            shown = ", ".join(r["image_id"][:16] for r in rows[:5])
            raise ValueError(
                f"{id_or_prefix!r} is ambiguous: it starts {shown}"
                f"{' and more' if len(rows) > 5 else ''}; give more characters"
            )
        r = (exact or rows)[0]
        return CatalogImage(r["image_id"], r["path"], r["role"])

    def snapshot(self) -> Snapshot:
        """Known URLs, stored ids, accepted hashes and undecided images, from one connection
        (one listing)."""
        seen, stored, accepted, undecided = self.store.query_all(
            [
                "SELECT image_url, bool_and(path IS NULL) AS failed FROM images "
                "WHERE image_url IS NOT NULL GROUP BY image_url",
                "SELECT DISTINCT image_id FROM images WHERE path IS NOT NULL",
                "SELECT image_id, phash FROM catalog WHERE status = 'accepted' "
                "AND phash IS NOT NULL ORDER BY image_id",
                _UNDECIDED_SQL,
            ]
        )
        urls = seen.to_pylist()
        return Snapshot(
            seen_urls=frozenset(r["image_url"] for r in urls),
            failed_urls=frozenset(r["image_url"] for r in urls if r["failed"]),
            stored_ids=frozenset(stored.column(0).to_pylist()),
            accepted=tuple((r["image_id"], r["phash"]) for r in accepted.to_pylist()),
            undecided=_undecided(undecided.to_pylist()),
        )

    def undecided(self) -> list[Undecided]:
        """Images with no curation decision (left so by versions that wrote decisions
        after the images), oldest first."""
        return list(_undecided(self.store.query(_UNDECIDED_SQL).to_pylist()))

    # writing ----------------------------------------------------------------
    def record(self, images: Sequence[ImageRecord], decisions: Sequence[Decision]) -> None:
        """Land candidates and their automatic decisions: decisions first, then images.

        So no image row is ever without its decision: when the second write fails, what
        is left is decisions that no image row refers to, which no view shows and which the
        rerun replaces. An acceptance must name an image stored in this batch or before.
        """
        stored = {i.image_id for i in images if i.path}
        self._check_stored([d.image_id for d in decisions if d.status == "accepted"], stored)
        if decisions:
            self.store.append("curation", [d.row() for d in decisions])
        if images:
            self.store.append("images", [i.row() for i in images])

    def decide(
        self,
        image_ids: Iterable[str],
        status: str,
        reason: str | None = None,
        decided_by: str = "user",
    ) -> int:
        """Append one decision per image (the latest wins); only stored images can be accepted."""
        if status not in STATUSES:
            raise ValueError(f"status must be 'accepted' or 'rejected', got {status!r}")
        ids = list(image_ids)
        if status == "accepted":
            self._check_stored(ids, set())
        decided = [Decision(i, status, reason, decided_by) for i in ids]
        self.store.append("curation", [d.row() for d in decided])
        return len(decided)

    def _check_stored(self, ids: Sequence[str], stored_here: set[str]) -> None:
        todo = [i for i in ids if i not in stored_here]
        if not todo:
            return
        # Every sighting counts: the catalog view shows one of them, which may lack the path.
        rows = self.store.query(
            "SELECT i.image_id, any_value(i.path) FILTER (WHERE i.path IS NOT NULL) AS path, "
            "any_value(c.reason) AS reason FROM images AS i "
            "LEFT JOIN curation_latest AS c USING (image_id) "
            "WHERE list_contains(?, i.image_id) GROUP BY i.image_id",
            [todo],
        ).to_pylist()
        found = {r["image_id"]: r for r in rows}
        for image_id in todo:
            row = found.get(image_id)
            if row is None:
                raise ValueError(
                    f"{image_id[:16]} is not in the catalog; only stored images can be accepted"
                )
            if not row["path"]:
                raise ValueError(
                    f"{image_id[:16]} has no stored image (it failed: {row['reason']}); "
                    "only downloaded images can be accepted"
                )

    # pairs ------------------------------------------------------------------
    def pair_ids(self) -> set[str]:
        return set(self.store.query("SELECT DISTINCT pair_id FROM pairs").column(0).to_pylist())

    def record_pairs(self, pairs: Sequence[PairRecord]) -> int:
        """Record the pairs not yet recorded; returns how many were new."""
        known = self.pair_ids()
        new = [p.row() for p in pairs if p.pair_id not in known]
        self.store.append("pairs", new)
        return len(new)


# Every image with no decision: the catalog row (first sighting) and the URLs of all sightings.
_UNDECIDED_SQL = """
    SELECT c.image_id, c.role, c.engine, c.path, c.width, c.height, c.phash, c.blur,
           c.is_grayscale, c.fetched_at,
           (SELECT list(DISTINCT i.image_url) FROM images AS i
            WHERE i.image_id = c.image_id AND i.image_url IS NOT NULL) AS urls
    FROM catalog AS c WHERE c.status IS NULL
    ORDER BY c.fetched_at, c.image_id
"""


def _undecided(rows: list[dict[str, Any]]) -> tuple[Undecided, ...]:
    return tuple(
        Undecided(
            image_id=r["image_id"],
            urls=tuple(sorted(r["urls"] or ())),
            role=r["role"],
            engine=r["engine"],
            path=r["path"],
            width=r["width"],
            height=r["height"],
            phash=r["phash"],
            blur=r["blur"],
            is_grayscale=r["is_grayscale"],
        )
        for r in rows
    )
