"""The torch module behind the digits MLP, importable as a ``--factory``.

Kept apart from ``models`` so that importing the training helpers does not
import torch; ``clipper model serve --framework pytorch --factory
clipper.testing.torch_models:digits_mlp --uri STATE_DICT`` builds the module
from here and loads the trained weights into it.
"""

from __future__ import annotations

import torch
from torch import nn

DIGITS_FEATURES = 64
DIGITS_CLASSES = 10


class DigitsMLP(nn.Module):
    """64 pixel values (0..16) in, 10 class logits out; scaling is part of the model."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(DIGITS_FEATURES, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, DIGITS_CLASSES),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.layers(pixels / 16.0)


def digits_mlp() -> DigitsMLP:
    """The factory: an untrained ``DigitsMLP`` with the trained model's shape."""
    return DigitsMLP()
