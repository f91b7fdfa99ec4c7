"""The ``train-fast`` command: train a multi-style feed-forward network on the content images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import typer

from stylebench.cli.common import console, err_console, fail, progress, settings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_IMAGE_ID = re.compile(r"^[0-9a-f]{6,64}$")


@dataclass(frozen=True)
class Images:
    """Local image files, the ids that identify them in the dataset fingerprint, and labels."""

    paths: list[Path]
    ids: list[str]
    labels: list[str]


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out.extend(v for v in re.split(r"[,\s]+", value) if v)
    return tuple(out)


def resolve_styles(store, refs: list[str]) -> Images:
    """Each ``--style`` as a local file: a path, or a catalog image id (or a unique prefix)."""
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
            f"select image_id, path from catalog where image_id like '{ref}%'"
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


def content_images(store, folder: Path | None) -> Images:
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


def _model_dir(store, name: str) -> tuple[Path, bool]:
    """Where training writes: the data directory's models/NAME, or a local cache for remote data."""
    if store.loc.is_local:
        return Path(store.loc.join("models", name)), False
    from storage.images import cache_dir

    return cache_dir() / "models" / store.loc.url.replace("/", "_").replace(":", "") / name, True


def train_fast(
    ctx: typer.Context,
    style: list[str] = typer.Option(
        ...,
        "--style",
        "-s",
        help="A style image: a file or a "
        "catalog image id (prefix). Repeat for a multi-style network.",
    ),
    name: str = typer.Option(
        None,
        "--name",
        "-n",
        help="Model name under models/ (default: the style labels joined by '+').",
    ),
    content_dir: Path = typer.Option(
        None,
        "--content-dir",
        help="Train on the images in this folder (default: the catalog's accepted content images).",
    ),
    steps: int = typer.Option(40_000, help="Training steps."),
    batch_size: int = typer.Option(4, "--batch-size", "-b", help="Images per step."),
    size: int = typer.Option(256, help="Training crop size in pixels."),
    style_size: int = typer.Option(
        None, help="Short side of the style images in pixels (default: --size)."
    ),
    feature_model: str = typer.Option(
        "vgg19", "--feature-model", "-f", help="Loss network: vgg19, vgg16 or resnet101."
    ),
    weights: str = typer.Option(
        None,
        help="Feature-network weights: a local file or "
        "'torchvision' (default: vgg19's bundled weights).",
    ),
    content_layers: list[str] = typer.Option(
        None, help="Content layers (default: the network's default set)."
    ),
    style_layers: list[str] = typer.Option(
        None, help="Style layers (default: the network's default set)."
    ),
    style_layer_weights: list[float] = typer.Option(
        None, help="One weight per style layer (default: 1/n each)."
    ),
    content_weight: float = typer.Option(1.0, help="Content loss weight."),
    style_weight: float = typer.Option(10.0, help="Style loss weight."),
    tv_weight: float = typer.Option(0.0, help="Total-variation weight."),
    mixed_precision: bool = typer.Option(
        True, help="bf16 autocast where the hardware has it (CUDA, CPUs with bf16 units)."
    ),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    checkpoint_every: int = typer.Option(500, help="Steps between checkpoints."),
    seed: int = typer.Option(0, help="Seed for initialisation and data order."),
    restart: bool = typer.Option(
        False,
        "--restart",
        help="Delete this model's checkpoints and start over instead of resuming.",
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
) -> None:
    """Train a feed-forward network (Johnson et al. 2016) for one or more styles (conditional
    instance norm, Dumoulin et al. 2017). Checkpoints regularly; rerun the same command to
    resume after an interruption. The model lands in models/NAME of the data directory."""
    from styletransfer.engine import configure_threads, select_device
    from styletransfer.fast import TrainConfig
    from styletransfer.fast.model import FastModelError
    from styletransfer.fast.train import ImageLoadError, train
    from styletransfer.features import WeightsUnavailable, default_layers, load_encoder

    opts = settings(ctx)
    store = opts.store()
    try:
        styles = resolve_styles(store, style)
        contents = content_images(store, content_dir)
        model_name = name or "+".join(styles.labels)
        if not _NAME.match(model_name):
            raise ValueError(
                f"model name {model_name!r} must be letters, digits, '.', '_', '+' "
                "or '-' (up to 100): pass --name"
            )
        config = TrainConfig(
            steps=steps,
            batch_size=batch_size,
            size=size,
            style_size=style_size,
            lr=lr,
            content_weight=content_weight,
            feature_model=feature_model,
            content_layers=_split(content_layers),
            style_layers=_split(style_layers),
            style_layer_weights=tuple(style_layer_weights or ()),
            checkpoint_every=checkpoint_every,
            seed=seed,
            style_weight=style_weight,
            tv_weight=tv_weight,
            mixed_precision=mixed_precision,
        )
        defaults = default_layers(feature_model)
        config = config.with_layers(defaults.content, defaults.style)
        torch_device = select_device(device)
        if torch_device.type == "cpu":
            configure_threads()
        encoder = load_encoder(
            feature_model,
            config.content_layers + config.style_layers,
            weights=weights,
            device=torch_device,
        )
    except (ValueError, WeightsUnavailable) as exc:
        raise fail(str(exc)) from None

    out_dir, remote = _model_dir(store, model_name)
    console.print(
        f"training [bold]{model_name}[/]: {len(styles.paths)} style(s), "
        f"{len(contents.paths)} content image(s), {config.steps} steps of "
        f"{config.batch_size} at {config.size} px on {torch_device}, "
        f"{feature_model} ({', '.join(config.content_layers)} | "
        f"{', '.join(config.style_layers)})"
    )
    last_step = [0]
    with progress(quiet=opts.verbosity < 0) as bar:
        task = bar.add_task(f"train {model_name}", total=config.steps)

        def on_step(info) -> None:
            last_step[0] = info.step
            loss = info.losses
            bar.update(
                task,
                completed=info.step,
                description=(
                    f"{model_name} loss {loss['total']:.3g} "
                    f"(c {loss['content']:.2g} s {loss['style']:.2g})"
                ),
            )

        try:
            result = train(
                contents.paths,
                styles.paths,
                encoder,
                config,
                out_dir,
                name=model_name,
                style_labels=styles.labels,
                dataset_ids=contents.ids,
                device=torch_device,
                resume=not restart,
                on_step=on_step,
            )
        except KeyboardInterrupt:
            err_console.print(
                f"[yellow]interrupted at step {last_step[0]}[/]: checkpoints in "
                f"{out_dir / 'checkpoints'} are kept; rerun the same command to resume"
            )
            raise typer.Exit(130) from None
        except (FastModelError, ImageLoadError, FloatingPointError) as exc:
            raise fail(str(exc)) from None
    if remote:
        for file in ("model.safetensors", "model.json"):
            store.write_bytes(f"models/{model_name}/{file}", (out_dir / file).read_bytes())
    meta = result.meta
    if result.resumed_from:
        console.print(f"resumed from step {result.resumed_from}")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in meta.final_losses.items())
    console.print(
        f"[green]saved[/] {store.display(f'models/{model_name}')} after {meta.steps} "
        f"steps in {result.seconds:.0f} s; final losses: {losses}"
    )
    console.print(
        f"use it: stylebench transfer CONTENT -o OUT.png --method fast "
        f"--model {model_name}"
        + (
            f" --style-weights {' '.join(['1'] + ['0'] * (len(styles.paths) - 1))}"
            if len(styles.paths) > 1
            else ""
        )
    )


def register(app: typer.Typer) -> None:
    app.command("train-fast")(train_fast)
