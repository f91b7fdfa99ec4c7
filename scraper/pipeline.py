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
from typing import TYPE_CHECKING, Any, TypeVar

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
    from storage import Decision, ImageRecord, Store, Undecided

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


def _land(
    store: Store,
    candidates: list[Candidate],
    *,
    role: str,
    query: str | None,
    engine: str | None,
    curation: CurationConfig,
    client: Client,
    retry_failed: bool,
    progress: Progress | None,
    skip_seen: bool = True,
) -> ScrapeSummary:
    """Fetch, validate, curate and record ``candidates`` (already ranked).

    ``engine`` None records "local" or "url" per candidate (imports). Candidates whose URL
    is in the catalog are skipped unless ``skip_seen`` is False (the caller chose them).
    """
    validate_role(role)
    store.remove_stale_temporaries()  # left by a run that was killed mid-write
    known = store.catalog.snapshot()  # one reading of the catalog for the whole run
    skip = known.seen_urls - known.failed_urls if retry_failed else known.seen_urls
    if not skip_seen:
        skip = frozenset()
    unique: dict[str, Candidate] = {}
    for c in candidates:
        unique.setdefault(c.result.image_url, c)
    todo = [c for c in unique.values() if c.result.image_url not in skip]
    skipped = len(unique) - len(todo)
    skipped_urls = set(unique) - {c.result.image_url for c in todo}
    deduper = Deduper(curation, list(known.accepted))
    batch_id = uuid.uuid4().hex
    download = client.config
    images_rows: list[ImageRecord] = []
    curation_rows: list[Decision] = []

    def flush() -> None:
        store.catalog.record(images_rows, curation_rows)
        images_rows.clear()
        curation_rows.clear()

    # Images this run skips that an earlier run left without a decision: decide them first.
    late = [u for u in known.undecided if skipped_urls.intersection(u.urls)]
    # An undecided image met again at another URL is decided like a new one.
    known_ids = set(known.stored_ids) - {u.image_id for u in known.undecided if u not in late}
    started = datetime.now(timezone.utc)
    curation_rows.extend(late_decision(u, deduper, curation, started) for u in late)
    late_accepted = sum(d.status == "accepted" for d in curation_rows)
    if progress:
        progress(0, len(todo))
    with closing(ordered_map(_worker(store, client), todo, download.workers)) as results:
        landed = _collect(
            results,
            deduper=deduper,
            known_ids=known_ids,
            role=role,
            query=query,
            engine=engine,
            batch_id=batch_id,
            images_rows=images_rows,
            curation_rows=curation_rows,
            flush=flush,
            progress=progress,
            total=len(todo),
        )
    flush()
    return ScrapeSummary(
        found=len(unique),
        downloaded=landed.downloaded,
        accepted=len(landed.accepted_ids),
        rejected_by_reason=dict(landed.rejected),
        failed_by_reason=dict(landed.failed),
        image_ids=tuple(landed.accepted_ids),
        skipped=skipped,
        batch_id=batch_id,
        caught_up=len(late),
        caught_up_accepted=late_accepted,
    )


@dataclass
class _Landed:
    """What the loop over fetched candidates counted."""

    downloaded: int = 0
    accepted_ids: list[str] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


def _collect(
    results: Iterable[Outcome],
    *,
    deduper: Deduper,
    known_ids: set[str],
    role: str,
    query: str | None,
    engine: str | None,
    batch_id: str,
    images_rows: list[ImageRecord],
    curation_rows: list[Decision],
    flush: Callable[[], None],
    progress: Progress | None,
    total: int,
) -> _Landed:
    """Decide each fetched candidate in order into rows, flushing every ROWS_PER_APPEND."""
    from storage import Decision, ImageRecord

    out = _Landed()
    rejected, failed, accepted_ids = out.rejected, out.failed, out.accepted_ids
    for done, got in enumerate(results, 1):
        now = datetime.now(timezone.utc)
        r = got.candidate.result
        row: dict[str, Any] = {
            "role": role,
            "query": query,
            "rank": r.rank,
            "engine": engine or ("local" if got.candidate.local else "url"),
            "image_url": r.image_url,
            "page_url": r.page_url,
            "license": r.license,
            "license_url": r.license_url,
            "creator": r.creator,
            "title": r.title,
            "date": r.date,
            "size_taken": r.size_taken,
            "fetched_at": now,
            "batch_id": batch_id,
        }
        f = got.features
        if f is None:
            reason = f"{got.reason}: {got.detail}"[:500] if got.detail else str(got.reason)
            image_id = failed_id(r.image_url)
            images_rows.append(ImageRecord(image_id=image_id, **row))
            curation_rows.append(Decision(image_id, "rejected", reason, "auto", now))
            failed[str(got.reason)] += 1
        else:
            out.downloaded += 1
            images_rows.append(
                ImageRecord(
                    image_id=f.sha256,
                    path=got.path,
                    width=f.width,
                    height=f.height,
                    format=got.format,
                    bytes=got.size,
                    phash=f.phash,
                    blur=f.blur,
                    is_grayscale=f.is_grayscale,
                    **row,
                )
            )
            if f.sha256 in known_ids or f.sha256 in deduper.sha:
                rejected["duplicate"] += 1  # stored before (or accepted meanwhile elsewhere)
            else:
                known_ids.add(f.sha256)
                reason = deduper.decide(f)
                status = "rejected" if reason else "accepted"
                curation_rows.append(Decision(f.sha256, status, reason, "auto", now))
                if reason:
                    rejected[curate.reason_code(reason)] += 1
                else:
                    accepted_ids.append(f.sha256)
        if len(images_rows) >= ROWS_PER_APPEND:
            flush()
        if progress:
            progress(done, total)
    return out


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
    summary = _land(
        store,
        candidates,
        role=role,
        query=query,
        engine=engine,
        curation=curation,
        client=client,
        retry_failed=retry_failed,
        progress=progress,
    )
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
    candidates = expand_sources(sources)
    return _land(
        store,
        candidates,
        role=role,
        query=None,
        engine=None,
        curation=curation or CurationConfig(min_side=IMPORT_MIN_SIDE),
        client=Client(download or DownloadConfig()),
        retry_failed=retry_failed,
        progress=progress,
    )


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
    summary = _land(
        store,
        candidates,
        role=role,
        query=query,
        engine=None,
        curation=curation or CurationConfig(min_side=IMPORT_MIN_SIDE),
        client=Client(DownloadConfig()),
        retry_failed=False,
        progress=progress,
        skip_seen=False,
    )
    return replace(summary, found=summary.found + skipped, skipped=skipped)
