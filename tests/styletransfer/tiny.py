"""The smallest real training a test runs: the bundled vgg19 loss network on 32 px crops."""

from __future__ import annotations

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
