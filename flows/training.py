"""Training a feed-forward network on the catalog: resolve images, train, store the model.

Shared by ``stylebench train-fast`` and the ``train-fast`` flow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage import Store, check_model_name
from stylebench.vocabulary import IMAGE_SUFFIXES

_IMAGE_ID = re.compile(r"[0-9a-f]{6,64}\Z")


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
        if not _IMAGE_ID.fullmatch(ref):
            raise ValueError(
                f"style {ref!r} is neither an existing file nor an image id "
                "(6 to 64 hex digits); see `stylebench images --role style`"
            )
        found = store.catalog.image(ref)
        paths.append(store.local_path(found.path or ""))
        ids.append(found.image_id)
        labels.append(found.image_id[:12])
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
    rows = store.catalog.accepted("content", order="id")
    if not rows:
        raise ValueError(
            "the catalog has no accepted content images: scrape or import some "
            "(`stylebench scrape ... --role content`, `stylebench accept ID`), "
            "or train on a folder with --content-dir DIR"
        )
    return Images(
        [store.local_path(r.path or "") for r in rows],
        [r.image_id for r in rows],
        [r.image_id[:12] for r in rows],
    )


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
    from styletransfer.device import configure_threads, select_device
    from styletransfer.fast.train import train
    from styletransfer.features import default_layers, load_encoder

    check_model_name(name)
    defaults = default_layers(config.feature_model)
    config = config.with_layers(defaults.content, defaults.style)
    torch_device = select_device(device)
    if torch_device.type == "cpu":
        configure_threads()
    with store.models.training(name) as keep_alive:  # one trainer per model name
        encoder = load_encoder(
            config.feature_model,
            config.content_layers + config.style_layers,
            weights=weights,
            device=torch_device,
        )

        def step(info: Any) -> None:
            keep_alive()
            if on_step is not None:
                on_step(info)

        out_dir = store.models.training_dir(name)
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
            on_step=step,
        )
        store.models.publish(name)
    return result


def train_summary(
    store: Store,
    styles: Sequence[str],
    name: str,
    training: Mapping[str, Any],
    *,
    device: str = "auto",
    log: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Train ``name`` on the catalog's accepted contents, logging 20 times; a summary row.

    ``training`` holds TrainConfig fields; those missing or None take its defaults.
    """
    from styletransfer.fast import TrainConfig

    config = TrainConfig(**{k: v for k, v in training.items() if v is not None})
    steps = config.steps
    every = max(1, steps // 20)

    def on_step(info: Any) -> None:
        if log is not None and (info.step % every == 0 or info.step == steps):
            log("step %d/%d loss %.4g", info.step, steps, info.losses["total"])

    result = train_on_catalog(
        store,
        resolve_styles(store, styles),
        content_images(store),
        name,
        config,
        device=device,
        on_step=on_step,
    )
    return {
        "model": name,
        "steps": result.meta.steps,
        "seconds": round(result.seconds, 1),
        **{f"loss_{k}": round(v, 6) for k, v in result.meta.final_losses.items()},
    }
