"""The smallest real training a test runs: the bundled vgg19 loss network on 32 px crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# `train-fast` options: each step takes a fraction of a second on a CPU.
TINY_TRAINING = [
    "--size",
    "32",
    "--batch-size",
    "1",
    "--device",
    "cpu",
    "--style-layers",
    "relu1_1,relu2_1",
    "--content-layers",
    "relu2_1",
]


def noise_png(path: Path, seed: int) -> Path:
    """A 48x40 picture of random pixels at ``path``."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def photo_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Three content pictures in ``tmp_path/photos`` and a style picture: (folder, style)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        noise_png(folder / f"p{i}.png", i)
    return folder, noise_png(tmp_path / "wave.png", 9)
