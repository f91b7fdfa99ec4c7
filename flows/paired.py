"""Paired datasets with segmentation masks: find a folder's pairs, check them, record them.

Two layouts are read: the one the DPST paper's authors published (``input/inN``,
``style/tarN``, ``segmentation/inN``, ``segmentation/tarN``) and a flat one (``inN``,
``tarN``, ``seg_inN``, ``seg_tarN``), with any image suffix ``import`` accepts; other files
are ignored and counted. Every pair is checked before anything of it is stored: each file
decodes, each mask has its photo's shape (``styletransfer.masks.misfit``), the two masks
share a label colour. A pair that fails is refused with a line naming the file and the
problem; the others go on. Photos land through ``scraper.import_files`` (validation,
provenance: the folder as query and page, the file name as title) and are accepted, masks
are stored by sha256 under ``masks/``, and each pair is one ``pairs`` row with its masks,
whose id covers the masks: a rerun adds nothing, a changed mask makes a new pair.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from flows.pairing import pair_id_for
from scraper import CurationConfig, LocalFile, import_files, validate
from scraper.download import DownloadConfig, read_local
from scraper.errors import DownloadError, InvalidImage
from storage import PairRecord, Store
from storage.images import MASKS_DIR, image_relpath, sha256
from stylebench.vocabulary import IMAGE_SUFFIXES, ROLES
from styletransfer.images import colour_names, label_codes
from styletransfer.masks import misfit

STRATEGY = "imported"  # the pairs' strategy column: read from a paired dataset
AUTHORS_FOLDERS = ("input", "style", "segmentation")
# Photos a user paired are accepted unless they cannot be read: no size, shape or
# near-duplicate rule (a style may well look like its content).
CURATION = CurationConfig(min_side=1, max_aspect=float("inf"), near_dup_distance=-1)
# A label colour of the content's mask that the style's mask lacks is reported from this share.
UNMATCHED_SHARE = 0.01
COLOUR_CHECK_SIDE = 2048  # masks are read at most this large (nearest neighbour) for the check
_NAME = re.compile(r"^(seg_in|seg_tar|in|tar)(\d+)$", re.IGNORECASE)
_NUMBERED = re.compile(r"^([A-Za-z_]+)\d+$")
_WORDS = {  # the files of a pair, and what a message calls them
    "content": "content photo",
    "style": "style photo",
    "content_mask": "content mask",
    "style_mask": "style mask",
}
_FLAT = {"in": "content", "tar": "style", "seg_in": "content_mask", "seg_tar": "style_mask"}


@dataclass(frozen=True)
class PairFiles:
    """The files of pair N: the content and style photos and their masks (both or neither)."""

    number: int
    content: Path
    style: Path
    content_mask: Path | None = None
    style_mask: Path | None = None


@dataclass(frozen=True)
class Found:
    """What a folder holds: its layout, its complete pairs, the pairs it cannot make, the rest."""

    folder: Path
    layout: str  # authors | flat
    pairs: tuple[PairFiles, ...]
    problems: tuple[tuple[int, str], ...]  # (N, a line naming a file) per pair it cannot make
    ignored: dict[str, int]  # files that belong to no pair, by kind ("luanN", "other")

    def name(self, path: Path) -> str:
        """A file as the summary names it: relative to the folder."""
        return path.relative_to(self.folder).as_posix()


@dataclass(frozen=True)
class PairImport:
    """What importing a paired dataset did (or, in a dry run, would do)."""

    folder: str
    layout: str
    found: int  # pairs in the folder (numbers N), complete or not
    new: int  # pairs recorded now
    known: int  # pairs recorded before
    with_masks: int  # of the pairs recorded or known
    refused: tuple[str, ...] = ()  # one line each: the file and the problem
    warnings: tuple[str, ...] = ()
    ignored: dict[str, int] = field(default_factory=dict)
    images_new: int = 0  # photos not stored before
    masks_new: int = 0  # masks not stored before
    pair_ids: tuple[str, ...] = ()  # of the pairs imported (new or known)
    dry_run: bool = False

    def render(self) -> str:
        """A few lines for the terminal."""
        verb = "would record" if self.dry_run else "recorded"
        stored = "would store" if self.dry_run else "stored"
        lines = [
            f"{self.layout} layout in {self.folder}: {self.found} pair(s) found, "
            f"{self.with_masks} with masks; {verb} {self.new} new pair(s), "
            f"{self.known} already recorded; {stored} {self.images_new} new image(s) and "
            f"{self.masks_new} new mask(s)"
        ]
        if self.refused:
            lines.append(f"  refused {len(self.refused)} pair(s):")
            lines += [f"    {line}" for line in self.refused]
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s):")
            lines += [f"    {line}" for line in self.warnings]
        if self.ignored:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.ignored.items()))
            lines.append(f"  ignored {sum(self.ignored.values())} file(s): {kinds}")
        return "\n".join(lines)


class PairRefused(ValueError):
    """A pair cannot be imported; the message names the file and the problem."""


def _slot(path: Path, roles: dict[str, str]) -> tuple[str, int] | None:
    """(role, N) of a file named like ``inN.png`` under ``roles``, else None."""
    if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    match = _NAME.match(path.stem)
    if match is None or match.group(1).lower() not in roles:
        return None
    return roles[match.group(1).lower()], int(match.group(2))


def _kind(path: Path, folder: Path) -> str:
    """How an ignored file is counted: ``luanN``, ``other``, a sub-folder's name and a slash."""
    where = path.parent.relative_to(folder).as_posix()
    prefix = "" if where == "." else f"{where}/"
    if path.is_dir():
        return f"{prefix}{path.name}/ (a folder)"
    match = _NUMBERED.match(path.stem)
    return prefix + (f"{match.group(1)}N" if match else "other")


def find_pairs(folder: str | Path) -> Found:
    """The pairs of a folder in either layout; a ValueError when it is no folder."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{folder} is not a folder: give the folder of a paired dataset")
    authors = all((root / name).is_dir() for name in AUTHORS_FOLDERS[:2])
    if authors:
        sources = [
            (root / "input", {"in": "content"}),
            (root / "style", {"tar": "style"}),
            (root / "segmentation", {"in": "content_mask", "tar": "style_mask"}),
        ]
        extra = [p for p in root.iterdir() if p.name not in AUTHORS_FOLDERS]
    else:
        sources, extra = [(root, _FLAT)], []
    slots: dict[int, dict[str, list[Path]]] = {}
    ignored: Counter[str] = Counter(_kind(p, root) for p in extra)
    for where, roles in sources:
        if not where.is_dir():
            continue
        for path in sorted(where.iterdir()):
            slot = _slot(path, roles)
            if slot is None:
                ignored[_kind(path, root)] += 1
            else:
                slots.setdefault(slot[1], {}).setdefault(slot[0], []).append(path)
    found = Found(root, "authors" if authors else "flat", (), (), dict(ignored))
    pairs, problems = [], []
    for n in sorted(slots):
        got = slots[n]
        twice = [role for role in _WORDS if len(got.get(role, [])) > 1]
        if twice:
            names = ", ".join(found.name(p) for role in twice for p in got[role])
            problems.append(
                (n, f"{names}: pair {n} has more than one {_WORDS[twice[0]]}; keep one")
            )
            continue
        one = {role: paths[0] for role, paths in got.items()}
        lacking = [_WORDS[role] for role in ROLES if role not in one]
        if lacking:
            names = ", ".join(found.name(p) for p in one.values())
            problems.append((n, f"{names}: pair {n} has no {' and no '.join(lacking)}"))
            continue
        if ("content_mask" in one) != ("style_mask" in one):
            have = "content_mask" if "content_mask" in one else "style_mask"
            other = "style_mask" if have == "content_mask" else "content_mask"
            problems.append(
                (
                    n,
                    f"{found.name(one[have])}: pair {n} has a {_WORDS[have]} but no "
                    f"{_WORDS[other]}: give both masks or neither",
                )
            )
            continue
        pairs.append(
            PairFiles(
                n, one["content"], one["style"], one.get("content_mask"), one.get("style_mask")
            )
        )
    return Found(root, found.layout, tuple(pairs), tuple(problems), dict(ignored))


@dataclass(frozen=True)
class CheckedPair:
    """A pair that passed the checks: its photos' ids and its masks' checked bytes."""

    files: PairFiles
    content_id: str
    style_id: str
    masks: tuple[validate.Decoded, ...]  # the content's and the style's, or none
    warnings: tuple[str, ...] = ()


def _decode(path: Path, found: Found) -> validate.Decoded:
    try:
        return validate.decode(read_local(str(path), DownloadConfig()))
    except (DownloadError, InvalidImage) as exc:
        raise PairRefused(
            f"{found.name(path)}: cannot be read ({exc.reason}: {exc.detail})"
        ) from None


def _codes(mask: Image.Image) -> np.ndarray:
    scale = COLOUR_CHECK_SIDE / max(mask.size)
    size = None
    if scale < 1:
        size = (max(1, round(mask.width * scale)), max(1, round(mask.height * scale)))
    return label_codes(mask, size)


def check_pair(files: PairFiles, found: Found) -> CheckedPair:
    """Decode the pair's files and check its masks; a PairRefused names the file and problem."""
    content, style = _decode(files.content, found), _decode(files.style, found)
    content_id, style_id = sha256(content.data), sha256(style.data)
    if files.content_mask is None or files.style_mask is None:
        return CheckedPair(files, content_id, style_id, ())
    cmask, smask = _decode(files.content_mask, found), _decode(files.style_mask, found)
    for mask, image, mask_path, image_path in (
        (cmask, content, files.content_mask, files.content),
        (smask, style, files.style_mask, files.style),
    ):
        why = misfit((mask.width, mask.height), (image.width, image.height))
        if why:
            raise PairRefused(
                f"{found.name(mask_path)}: the mask does not fit {found.name(image_path)}: it {why}"
            )
    c_codes, s_codes = _codes(cmask.image), _codes(smask.image)
    c_colours, counts = np.unique(c_codes, return_counts=True)
    shared = (set(c_colours.tolist()) & set(np.unique(s_codes).tolist())) - {-1}
    cname, sname = found.name(files.content_mask), found.name(files.style_mask)
    if not shared:
        raise PairRefused(
            f"{sname}: shares no label colour with {cname} ({cname}: {colour_names(c_codes)}; "
            f"{sname}: {colour_names(s_codes)}): the same colour must mark matching regions"
        )
    warnings = []
    for colour, count in zip(c_colours.tolist(), counts.tolist(), strict=True):
        share = count / c_codes.size
        if colour != -1 and colour not in shared and share >= UNMATCHED_SHARE:
            warnings.append(
                f"{cname}: {colour_names(np.array([colour]))} marks {share:.0%} of the content "
                f"and is not in {sname}: those pixels match no region of the style"
            )
    return CheckedPair(files, content_id, style_id, (cmask, smask), tuple(warnings))


def _store_masks(
    store: Store, masks: tuple[validate.Decoded, ...], dry_run: bool
) -> tuple[list[str], set[str]]:
    """Where the masks are (in a dry run: would be) stored, and which of them are new."""
    paths, new = [], set()
    for mask in masks:
        if dry_run:
            path = image_relpath(sha256(mask.data), mask.ext, MASKS_DIR)
            existed = store.exists(path)
        else:
            stored = store.put_mask(mask.data, mask.ext)
            path, existed = stored.path, stored.existed
        paths.append(path)
        if not existed:
            new.add(path)
    return paths, new


def import_pairs(store: Store, folder: str | Path, *, dry_run: bool = False) -> PairImport:
    """Import a paired dataset (see the module's doc); ``dry_run`` checks and stores nothing.

    A ValueError when the folder holds no pair at all.
    """
    found = find_pairs(folder)
    if not found.pairs and not found.problems:
        raise ValueError(
            f"no pairs in {found.folder}: expected input/inN, style/tarN (and segmentation/inN, "
            "segmentation/tarN) or, in the folder itself, inN, tarN (and seg_inN, seg_tarN)"
        )
    refused, warnings = list(found.problems), []  # refused: (N, line)
    stored_before = store.catalog.snapshot().stored_ids
    records: list[PairRecord] = []
    photos: list[tuple[LocalFile, LocalFile]] = []
    numbers: list[int] = []
    masks_new: set[str] = set()
    for files in found.pairs:
        try:
            checked = check_pair(files, found)
        except PairRefused as exc:
            refused.append((files.number, str(exc)))
            continue
        warnings += checked.warnings
        mask_paths, new = _store_masks(store, checked.masks, dry_run)
        masks_new |= new
        mask_ids = [sha256(m.data) for m in checked.masks]
        records.append(
            PairRecord(
                pair_id_for(checked.content_id, [checked.style_id], [1.0], mask_ids),
                checked.content_id,
                (checked.style_id,),
                (1.0,),
                STRATEGY,
                content_mask=mask_paths[0] if mask_paths else None,
                style_masks=tuple(mask_paths[1:]) if mask_paths else None,
                mask_source="given" if mask_paths else "none",
            )
        )
        numbers.append(files.number)
        photos.append(
            (
                LocalFile(str(files.content), files.content.name, checked.content_id),
                LocalFile(str(files.style), files.style.name, checked.style_id),
            )
        )
    ids = {r.content_id for r in records} | {s for r in records for s in r.style_ids}
    images_new = len(ids - stored_before)
    if dry_run:
        records = _unique(records)
        new = len({r.pair_id for r in records} - store.catalog.pair_ids())
    else:
        records = _land_photos(store, found, records, photos, numbers, refused)
        records = _unique(records)
        new = store.catalog.record_pairs(records)
        _accept(store, records, found.folder)
    return PairImport(
        folder=str(found.folder),
        layout=found.layout,
        found=len(found.pairs) + len(found.problems),
        new=new,
        known=len(records) - new,
        with_masks=sum(r.mask_source == "given" for r in records),
        refused=tuple(line for _, line in sorted(refused)),
        warnings=tuple(warnings),
        ignored=found.ignored,
        images_new=images_new,
        masks_new=len(masks_new),
        pair_ids=tuple(r.pair_id for r in records),
        dry_run=dry_run,
    )


def _land_photos(
    store: Store,
    found: Found,
    records: list[PairRecord],
    photos: list[tuple[LocalFile, LocalFile]],
    numbers: list[int],
    refused: list[tuple[int, str]],
) -> list[PairRecord]:
    """Land the photos; the pairs whose photos are all stored (a file may change meanwhile)."""
    provenance = {"query": str(found.folder), "page_url": found.folder.as_uri()}
    import_files(store, [c for c, _ in photos], "content", curation=CURATION, **provenance)
    import_files(store, [s for _, s in photos], "style", curation=CURATION, **provenance)
    stored = store.catalog.snapshot().stored_ids
    kept = []
    for record, pair_photos, number in zip(records, photos, numbers, strict=True):
        lost = [f for f in pair_photos if f.image_id not in stored]
        if lost:
            name = found.name(Path(lost[0].path))
            refused.append((number, f"{name}: changed while it was imported; import again"))
        else:
            kept.append(record)
    return kept


def _unique(records: list[PairRecord]) -> list[PairRecord]:
    """The records with one per pair id (two files of the same pair are one pair)."""
    first: dict[str, PairRecord] = {}
    for record in records:
        first.setdefault(record.pair_id, record)
    return list(first.values())


def _accept(store: Store, records: list[PairRecord], folder: Path) -> None:
    """Accept the pairs' photos that are not accepted now: the user curated them by pairing."""
    ids = sorted({r.content_id for r in records} | {s for r in records for s in r.style_ids})
    status = store.catalog.statuses(ids)
    todo = [i for i in ids if status.get(i) != "accepted"]
    if todo:
        store.catalog.decide(todo, "accepted", f"in a paired dataset: {folder}", decided_by="user")
