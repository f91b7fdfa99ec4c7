"""Training a feed-forward network on the catalog: resolve images, train, store the model.

Shared by ``stylebench train-fast`` and the ``train-fast`` flow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage import Store

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_IMAGE_ID = re.compile(r"^[0-9a-f]{6,64}$")


@dataclass(frozen=True)
class Images:
    """Local image files, the ids that identify them in the dataset fingerprint, and labels."""

    paths: list[Path]
    ids: list[str]
    labels: list[str]


def resolve_styles(store: Store, refs: Sequence[str]) -> Images:
    """Each style reference as a local file: a path, or an image id (or unique prefix)."""
    paths, ids, labels = [], [], []
    for ref in refs:
        path = Path(ref).expanduser()
        if path.is_file():
            paths.append(path)
            ids.append(str(path))
            labels.append(path.stem)
            continue
        if not _IMAGE_ID.match(ref):
            raise ValueError(
                f"style {ref!r} is neither an existing file nor an image id "
                "(6 to 64 hex digits); see `stylebench images --role style`"
            )
        rows = store.query(
            "select image_id, path from catalog where starts_with(image_id, ?)", [ref]
        ).to_pylist()
        if not rows:
            raise ValueError(f"no image with id {ref!r} in the catalog; see `stylebench images`")
        if len({r["image_id"] for r in rows}) > 1:
            raise ValueError(
                f"image id prefix {ref!r} is ambiguous ({len(rows)} images): give more digits"
            )
        paths.append(store.local_path(rows[0]["path"]))
        ids.append(rows[0]["image_id"])
        labels.append(rows[0]["image_id"][:12])
    return Images(paths, ids, labels)


def content_images(store: Store, folder: Path | None = None) -> Images:
    """Training images: every image file under ``folder``, or the catalog's accepted contents."""
    if folder is not None:
        if not folder.is_dir():
            raise ValueError(f"--content-dir {folder} is not a directory")
        paths = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not paths:
            raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
        ids = [p.relative_to(folder).as_posix() for p in paths]
        return Images(paths, ids, [p.stem for p in paths])
    rows = store.query(
        "select image_id, path from catalog where role = 'content' and status = 'accepted' "
        "order by image_id"
    ).to_pylist()
    if not rows:
        raise ValueError(
            "the catalog has no accepted content images: scrape or import some "
            "(`stylebench scrape ... --role content`, `stylebench accept ID`), "
            "or train on a folder with --content-dir DIR"
        )
    return Images(
        [store.local_path(r["path"]) for r in rows],
        [r["image_id"] for r in rows],
        [r["image_id"][:12] for r in rows],
    )


def model_dir(store: Store, name: str) -> tuple[Path, bool]:
    """Where training writes: the data directory's models/NAME, or a local cache for remote data."""
    if store.loc.is_local:
        return Path(store.loc.join("models", name)), False
    from storage.images import cache_dir

    return cache_dir() / "models" / store.loc.url.replace("/", "_").replace(":", "") / name, True


def check_model_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise ValueError(
            f"model name {name!r} must be letters, digits, '.', '_', '+' "
            "or '-' (up to 100): pass --name"
        )
    return name


def train_on_catalog(
    store: Store,
    styles: Images,
    contents: Images,
    name: str,
    config: Any,
    *,
    weights: str | None = None,
    device: str = "auto",
    resume: bool = True,
    on_step: Callable[[Any], None] | None = None,
) -> Any:
    """Train ``name`` and store it under the data directory's ``models/``; returns TrainResult."""
    from styletransfer.engine import configure_threads, select_device
    from styletransfer.fast.train import train
    from styletransfer.features import default_layers, load_encoder

    check_model_name(name)
    defaults = default_layers(config.feature_model)
    config = config.with_layers(defaults.content, defaults.style)
    torch_device = select_device(device)
    if torch_device.type == "cpu":
        configure_threads()
    encoder = load_encoder(
        config.feature_model,
        config.content_layers + config.style_layers,
        weights=weights,
        device=torch_device,
    )
    out_dir, remote = model_dir(store, name)
    result = train(
        contents.paths,
        styles.paths,
        encoder,
        config,
        out_dir,
        name=name,
        style_labels=styles.labels,
        dataset_ids=contents.ids,
        device=torch_device,
        resume=resume,
        on_step=on_step,
    )
    if remote:
        for file in ("model.safetensors", "model.json"):
            store.write_bytes(f"models/{name}/{file}", (out_dir / file).read_bytes())
    return result


def local_models_dir(store: Store, name: str) -> Path:
    """A local directory holding ``models/<name>/`` of the data directory (fetched if remote)."""
    local, remote = model_dir(store, name)
    if remote:
        local.mkdir(parents=True, exist_ok=True)
        for file in ("model.safetensors", "model.json"):
            relpath = f"models/{name}/{file}"
            if not store.exists(relpath):
                raise ValueError(
                    f"no model {name!r} in {store.display('models')}: train it with "
                    "`stylebench train-fast --name NAME`"
                )
            (local / file).write_bytes(store.read_bytes(relpath))
    return local.parent
