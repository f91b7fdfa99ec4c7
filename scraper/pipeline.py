"""``scrape`` and ``import_sources``: fetch, validate and curate images into the store.

Downloads, decoding and measuring run in a thread pool; decisions are then taken
in rank order on the calling thread, so the same inputs always give the same
accepted set. Every candidate ends as rows: an ``images`` row (with provenance)
and an automatic ``curation`` row with the status and reason. Candidates whose
URL is already in ``images`` are skipped, so running the same scrape twice adds
no rows. An exact duplicate (same sha256 as a stored image) adds an ``images``
row, another sighting with its own provenance, but no curation row: the stored
image keeps its decision.

Decisions are written before the image rows they decide (``Catalog.record``), so a failed
write never leaves an image without a decision; images an earlier version left undecided
are decided when a rerun meets them again, or by ``curate_undecided``. A fault of the data
directory itself (no space, read-only, unreachable) is a StorageError that stops the run at
once, before anything more is written; a fault of one image is a rejection with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from scraper import curate, validate
from scraper.curate import CurationConfig, Deduper, Features
from scraper.download import Client, DownloadConfig, read_local
from scraper.engines import Result, search
from scraper.engines.base import dropped_of, user_agent
from scraper.errors import DownloadError, InvalidImage
from scraper.sources import describe_missing, is_url, read_list
from stylebench.vocabulary import (
    IMAGE_SUFFIXES,
    IMPORT_MIN_SIDE,
    LOCAL_ENGINES,
    ROLES,
    SCRAPE_MIN_SIDE,
)

if TYPE_CHECKING:
    from storage import Decision, ImageRecord, Snapshot, Store, Undecided

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list", ".urls"})
# Images are compressed already: ask for them as they are (no gzip to inflate).
IMAGE_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity"}
ROWS_PER_APPEND = 500
FAILED_UNRECORDED = (
    "failed: the fetch failed and its reason was not recorded; --retry-failed fetches it again"
)


@dataclass(frozen=True)
class ScrapeSummary:
    """What one scrape or import did, in counts."""

    found: int
    downloaded: int
    accepted: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    image_ids: tuple[str, ...] = ()  # accepted, in rank order
    skipped: int = 0  # already in the catalog from an earlier run
    batch_id: str = ""
    dropped_by_reason: dict[str, int] = field(default_factory=dict)  # left out by the parser
    caught_up: int = 0  # images an earlier run left without a decision, decided now
    caught_up_accepted: int = 0

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def failed(self) -> int:
        return sum(self.failed_by_reason.values())

    def render(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"found {self.found}, already in catalog {self.skipped}, downloaded "
            f"{self.downloaded}, accepted {self.accepted}, rejected {self.rejected}, "
            f"failed {self.failed}"
        ]
        for title, counts in (
            ("rejected", self.rejected_by_reason),
            ("failed", self.failed_by_reason),
            ("dropped by the engine's parser", self.dropped_by_reason),
        ):
            if counts:
                parts = ", ".join(
                    f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
                )
                lines.append(f"  {title}: {parts}")
        if self.caught_up:
            lines.append(
                f"  decided {self.caught_up} image(s) an earlier run left without a decision "
                f"({self.caught_up_accepted} accepted)"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Candidate:
    """One thing to fetch: a URL or a local file, with what the engine said about it."""

    source: str  # URL or absolute local path
    result: Result
    local: bool = False


@dataclass(frozen=True)
class Outcome:
    """A worker's answer: a stored, measured image, or why there is none."""

    candidate: Candidate
    reason: str | None = None  # failure code
    detail: str = ""
    features: Features | None = None
    path: str | None = None
    format: str | None = None
    size: int = 0


def failed_id(source: str) -> str:
    """The image_id of a candidate that produced no image: stable per URL, never a sha256."""
    return "failed-" + hashlib.sha256(source.encode()).hexdigest()[:32]


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from: {', '.join(ROLES)}")
    return role


T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, in input order, with a bounded window in flight.

    When a call raises, or the caller stops (closes the generator), the calls not yet
    started are cancelled; only those running are waited for.
    """
    window = max(1, workers * 4)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stylebench-dl") as pool:
        pending: deque = deque()
        try:
            iterator = iter(items)
            for item in iterator:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    break
            while pending:
                yield pending.popleft().result()
                for item in iterator:
                    pending.append(pool.submit(fn, item))
                    break
        finally:
            for future in pending:
                future.cancel()


def _worker(store: Store, client: Client) -> Callable[[Candidate], Outcome]:
    from storage import StorageError

    def work(c: Candidate) -> Outcome:
        try:
            if c.local:
                data = read_local(c.source, client.config)
            else:
                data = client.get(c.source, image=True, headers=IMAGE_HEADERS).body
            decoded = validate.decode(data)
            feats = curate.features(decoded.data, decoded.image)
            stored = store.put_image(decoded.data, decoded.ext)
            return Outcome(
                c, features=feats, path=stored.path, format=decoded.format, size=len(decoded.data)
            )
        except (DownloadError, InvalidImage) as exc:
            return Outcome(c, reason=exc.reason, detail=exc.detail)
        except StorageError:
            raise  # the data directory failed, not this image: the run stops
        except Exception as exc:  # a run never stops on one bad result
            log.debug("unexpected error on %s", c.source, exc_info=True)
            return Outcome(c, reason="error", detail=f"{type(exc).__name__}: {exc}")

    return work


@dataclass(frozen=True)
class _Landing:
    """How one run lands its candidates: what they are for and where they came from, how
    they are curated and fetched, and whether URLs the catalog holds are skipped."""

    role: str
    query: str | None
    engine: str | None  # None: "local" or "url" per candidate (imports)
    curation: CurationConfig
    client: Client
    retry_failed: bool = False  # fetch again the URLs that only ever failed
    skip_seen: bool = True  # False: the caller chose the candidates


def _land(
    store: Store, candidates: list[Candidate], landing: _Landing, progress: Progress | None
) -> ScrapeSummary:
    """Fetch, validate, curate and record ``candidates`` (already ranked).

    The steps: read the catalog once, choose what to fetch, decide what an earlier run left
    undecided, then fetch on the thread pool and decide each result in rank order, writing
    every ROWS_PER_APPEND results (decisions before the image rows they decide).
    """
    validate_role(landing.role)
    store.remove_stale_temporaries()  # left by a run that was killed mid-write
    known = store.catalog.snapshot()  # one reading of the catalog for the whole run
    chosen = _choose(candidates, known, landing)
    deduper = Deduper(landing.curation, list(known.accepted))
    rows = _Rows(store)
    late, known_ids = _catch_up(known, chosen, deduper, landing.curation)
    rows.decisions.extend(late)
    sightings = _Sightings(landing.role, landing.query, landing.engine, uuid.uuid4().hex)
    if progress:
        progress(0, len(chosen.todo))
    client = landing.client
    with closing(ordered_map(_worker(store, client), chosen.todo, client.config.workers)) as got:
        landed = _collect(got, sightings, deduper, known_ids, rows, progress, len(chosen.todo))
    rows.flush()
    return ScrapeSummary(
        found=len(chosen.unique),
        downloaded=landed.downloaded,
        accepted=len(landed.accepted_ids),
        rejected_by_reason=dict(landed.rejected),
        failed_by_reason=dict(landed.failed),
        image_ids=tuple(landed.accepted_ids),
        skipped=len(chosen.skipped_urls),
        batch_id=sightings.batch_id,
        caught_up=len(late),
        caught_up_accepted=sum(d.status == "accepted" for d in late),
    )


@dataclass(frozen=True)
class _Chosen:
    """The candidates of one run, one per image URL, and which of them to fetch."""

    unique: dict[str, Candidate]  # image URL -> its first candidate, in rank order
    todo: list[Candidate]
    skipped_urls: frozenset[str]  # in the catalog already: not fetched again


def _choose(candidates: Iterable[Candidate], known: Snapshot, landing: _Landing) -> _Chosen:
    """One candidate per URL; those whose URL the catalog holds are skipped (unless
    ``skip_seen`` is False; with ``retry_failed`` the URLs that only ever failed are not)."""
    skip: frozenset[str] = frozenset()
    if landing.skip_seen:
        skip = known.seen_urls - known.failed_urls if landing.retry_failed else known.seen_urls
    unique: dict[str, Candidate] = {}
    for c in candidates:
        unique.setdefault(c.result.image_url, c)
    todo = [c for url, c in unique.items() if url not in skip]
    return _Chosen(unique, todo, frozenset(unique.keys() & skip))


def _catch_up(
    known: Snapshot, chosen: _Chosen, deduper: Deduper, curation: CurationConfig
) -> tuple[list[Decision], set[str]]:
    """Decisions for the images this run skips that an earlier run left without one, and
    the ids whose new sightings are duplicates (an undecided image met again at another URL
    is decided like a new one)."""
    now = datetime.now(timezone.utc)
    late = [u for u in known.undecided if chosen.skipped_urls.intersection(u.urls)]
    known_ids = set(known.stored_ids) - {u.image_id for u in known.undecided if u not in late}
    return [late_decision(u, deduper, curation, now) for u in late], known_ids


class _Rows:
    """A run's rows not yet written; ``flush`` writes the decisions before the image rows."""

    def __init__(self, store: Store):
        self.catalog = store.catalog
        self.images: list[ImageRecord] = []
        self.decisions: list[Decision] = []

    def add(self, image: ImageRecord, decision: Decision | None) -> None:
        self.images.append(image)
        if decision is not None:
            self.decisions.append(decision)
        if len(self.images) >= ROWS_PER_APPEND:
            self.flush()

    def flush(self) -> None:
        self.catalog.record(self.images, self.decisions)
        self.images.clear()
        self.decisions.clear()


@dataclass(frozen=True)
class _Sightings:
    """What the ``images`` rows of one run share, and the row of each fetched candidate."""

    role: str
    query: str | None
    engine: str | None  # None: "local" or "url" per candidate
    batch_id: str

    def row(self, got: Outcome, now: datetime) -> ImageRecord:
        """Where the candidate was found and, when it was fetched, the stored file's measures
        (a failed fetch is recorded under its ``failed_id``)."""
        from storage import ImageRecord

        r = got.candidate.result
        row = ImageRecord(
            image_id=failed_id(r.image_url),
            role=self.role,
            query=self.query,
            rank=r.rank,
            engine=self.engine or ("local" if got.candidate.local else "url"),
            image_url=r.image_url,
            page_url=r.page_url,
            license=r.license,
            license_url=r.license_url,
            creator=r.creator,
            title=r.title,
            date=r.date,
            size_taken=r.size_taken,
            fetched_at=now,
            batch_id=self.batch_id,
        )
        f = got.features
        if f is None:
            return row
        return replace(
            row,
            image_id=f.sha256,
            path=got.path,
            width=f.width,
            height=f.height,
            format=got.format,
            bytes=got.size,
            phash=f.phash,
            blur=f.blur,
            is_grayscale=f.is_grayscale,
        )


def _decision(
    got: Outcome, deduper: Deduper, known_ids: set[str], now: datetime
) -> Decision | None:
    """The automatic decision on one fetched candidate: a failed fetch is rejected with its
    reason; None for another sighting of an image stored before or earlier in this run (it
    keeps its decision)."""
    from storage import Decision

    f = got.features
    if f is None:
        reason = f"{got.reason}: {got.detail}"[:500] if got.detail else str(got.reason)
        return Decision(failed_id(got.candidate.result.image_url), "rejected", reason, "auto", now)
    if f.sha256 in known_ids or f.sha256 in deduper.sha:
        return None  # stored before (or accepted meanwhile elsewhere)
    known_ids.add(f.sha256)
    reason = deduper.decide(f)
    return Decision(f.sha256, "rejected" if reason else "accepted", reason, "auto", now)


@dataclass
class _Landed:
    """What the loop over fetched candidates counted."""

    downloaded: int = 0
    accepted_ids: list[str] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)

    def count(self, got: Outcome, decision: Decision | None) -> None:
        if got.features is None:
            self.failed[str(got.reason)] += 1
            return
        self.downloaded += 1
        if decision is None:
            self.rejected["duplicate"] += 1
        elif decision.reason:
            self.rejected[curate.reason_code(decision.reason)] += 1
        else:
            self.accepted_ids.append(decision.image_id)


def _collect(
    results: Iterable[Outcome],
    sightings: _Sightings,
    deduper: Deduper,
    known_ids: set[str],
    rows: _Rows,
    progress: Progress | None,
    total: int,
) -> _Landed:
    """Decide each fetched candidate in order into rows (written every ROWS_PER_APPEND)."""
    landed = _Landed()
    for done, got in enumerate(results, 1):
        now = datetime.now(timezone.utc)
        decision = _decision(got, deduper, known_ids, now)
        rows.add(sightings.row(got, now), decision)
        landed.count(got, decision)
        if progress:
            progress(done, total)
    return landed


def late_decision(
    image: Undecided, deduper: Deduper, curation: CurationConfig, now: datetime
) -> Decision:
    """The automatic decision for an image an earlier run left without one, from its row."""
    from storage import Decision

    if image.path is None or image.width is None or image.height is None or not image.phash:
        return Decision(image.image_id, "rejected", FAILED_UNRECORDED, "auto", now)
    features = Features(
        sha256=image.image_id,
        width=image.width,
        height=image.height,
        phash=image.phash,
        blur=float(image.blur or 0.0),
        is_grayscale=bool(image.is_grayscale),
    )
    reason = deduper.decide(features, curation)
    return Decision(image.image_id, "rejected" if reason else "accepted", reason, "auto", now)


@dataclass(frozen=True)
class CurateSummary:
    """What ``curate_undecided`` decided."""

    accepted: int
    rejected_by_reason: dict[str, int]

    @property
    def decided(self) -> int:
        return self.accepted + sum(self.rejected_by_reason.values())

    def render(self) -> str:
        if not self.decided:
            return "every image in the catalog has a decision"
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected_by_reason.items()))
        return (
            f"decided {self.decided} image(s) that had no decision: accepted {self.accepted}, "
            f"rejected {self.decided - self.accepted}" + (f" ({parts})" if parts else "")
        )


def curate_undecided(
    store: Store, *, role: str | None = None, min_side: int | None = None
) -> CurateSummary:
    """Decide every image of the catalog (of ``role``) that has no decision, oldest first,
    by the automatic rules: size and shape (``min_side``, else 64 px for imported images and
    256 for scraped ones) and duplicates of the accepted images."""
    if role is not None:
        validate_role(role)
    store.remove_stale_temporaries()
    known = store.catalog.snapshot()
    deduper = Deduper(CurationConfig(), list(known.accepted))
    now = datetime.now(timezone.utc)
    decisions = []
    for image in known.undecided:
        if role is not None and image.role != role:
            continue
        side = min_side or (IMPORT_MIN_SIDE if image.engine in LOCAL_ENGINES else SCRAPE_MIN_SIDE)
        decisions.append(late_decision(image, deduper, CurationConfig(min_side=side), now))
    store.catalog.record([], decisions)
    rejected = Counter(
        curate.reason_code(d.reason or "") for d in decisions if d.status != "accepted"
    )
    return CurateSummary(
        accepted=sum(d.status == "accepted" for d in decisions), rejected_by_reason=dict(rejected)
    )


def scrape(
    store: Store,
    query: str,
    role: str,
    engine: str,
    max_n: int,
    *,
    min_side: int = SCRAPE_MIN_SIDE,
    licenses: Iterable[str] | None = None,
    progress: Progress | None = None,
    curation: CurationConfig | None = None,
    download: DownloadConfig | None = None,
    retry_failed: bool = False,
) -> ScrapeSummary:
    """Search ``engine`` for ``query`` and land up to ``max_n`` results in ``store``.

    Raises a typed EngineError (Blocked, Captcha, JsWall, ...) when the engine gives
    no results because it refused; an engine that finds nothing gives an empty summary.
    """
    validate_role(role)
    download = download or DownloadConfig()
    # the operator's contact (STYLEBENCH_CONTACT) goes into the images' requests too
    download = replace(download, user_agent=user_agent(download.user_agent))
    curation = curation or CurationConfig(min_side=min_side)
    client = Client(download)  # one rate limiter for the search pages and the images
    results = search(engine, client, query, max_n, tuple(licenses or ()))
    dropped = dropped_of(results)
    log.info(
        "%s: %d result(s) for %r, %d dropped", engine, len(results), query, sum(dropped.values())
    )
    candidates = [Candidate(r.image_url, r) for r in results]
    landing = _Landing(role, query, engine, curation, client, retry_failed)
    summary = _land(store, candidates, landing, progress)
    return replace(summary, dropped_by_reason=dropped)


def expand_sources(sources: Iterable[str]) -> list[Candidate]:
    """Local files, folders (recursively), URLs and text files listing any of them."""
    out: list[Candidate] = []

    def add(src: str, base: Path, depth: int) -> None:
        src = src.strip()
        if not src or src.startswith("#"):
            return
        if is_url(src):  # http(s); other schemes fail as unsupported, with a reason
            out.append(Candidate(src, Result(image_url=src)))
            return
        if src.startswith("file://"):
            src = src[len("file://") :]
        given = base / os.path.expanduser(src)
        try:
            path = given.resolve()
        except (RuntimeError, OSError):  # a symbolic link loop
            if depth == 0:
                raise ValueError(describe_missing(src, given)) from None
            path = given.absolute()  # its read fails, as a rejection with the reason
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                    out.append(Candidate(str(p), Result(image_url=p.as_uri()), local=True))
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES and depth < 3:
            for line in read_list(path).splitlines():
                add(line, path.parent, depth + 1)
        elif path.is_file() or depth > 0:
            out.append(Candidate(str(path), Result(image_url=path.as_uri()), local=True))
        else:
            raise ValueError(describe_missing(src, path))

    for s in sources:
        add(str(s), Path.cwd(), 0)
    return [replace(c, result=replace(c.result, rank=i)) for i, c in enumerate(out, 1)]


def import_sources(
    store: Store,
    sources: list[str],
    role: str,
    *,
    progress: Progress | None = None,
    curation: CurationConfig | None = None,
    download: DownloadConfig | None = None,
    retry_failed: bool = False,
) -> ScrapeSummary:
    """Land local images, folders of them, URLs, or text files listing them in ``store``."""
    validate_role(role)
    curation = curation or CurationConfig(min_side=IMPORT_MIN_SIDE)
    landing = _Landing(
        role, None, None, curation, Client(download or DownloadConfig()), retry_failed
    )
    return _land(store, expand_sources(sources), landing, progress)


@dataclass(frozen=True)
class LocalFile:
    """A local file to import: its path, its title, and (if known) the sha256 of its checked bytes.

    ``image_id`` is what ``validate.decode(bytes).data`` hashes to, i.e. the id it is stored
    under: a file recorded before whose bytes are stored under that id is skipped.
    """

    path: str
    title: str | None = None
    image_id: str | None = None


def import_files(
    store: Store,
    files: Iterable[LocalFile],
    role: str,
    *,
    query: str | None = None,
    page_url: str | None = None,
    curation: CurationConfig | None = None,
    progress: Progress | None = None,
) -> ScrapeSummary:
    """Land local files as ``role``, with ``query`` and ``page_url`` as their provenance.

    Idempotent like ``import_sources``: a file already recorded is skipped; but one whose
    ``image_id`` is given and not stored (the file changed since) is landed again.
    """
    validate_role(role)
    known = store.catalog.snapshot()
    candidates: list[Candidate] = []
    skipped = 0
    for rank, f in enumerate(files, 1):
        path = Path(f.path).resolve()
        url = path.as_uri()
        if url in known.seen_urls and (f.image_id is None or f.image_id in known.stored_ids):
            skipped += 1
            continue
        result = Result(image_url=url, page_url=page_url, title=f.title, rank=rank)
        candidates.append(Candidate(str(path), result, local=True))
    curation = curation or CurationConfig(min_side=IMPORT_MIN_SIDE)
    landing = _Landing(role, query, None, curation, Client(DownloadConfig()), skip_seen=False)
    summary = _land(store, candidates, landing, progress)
    return replace(summary, found=summary.found + skipped, skipped=skipped)
