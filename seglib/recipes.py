"""Training recipes of the model zoo and the evaluators that re-measure them.

``RECIPES`` maps a zoo entry name to ``"module:function"``; the function takes
a device and returns a :class:`seglib.zoo.ZooResult`. ``make zoo`` runs them.
Every registered recipe has its checkpoint in ``data/zoo/`` (a test checks it).
"""

from __future__ import annotations

RECIPES: dict[str, str] = {}

# Notebook 03: a small DeepLabv3.
RECIPES["deeplab"] = "seglib.recipes_unet:deeplab"

# Notebook 04: one small U-Net trained with five losses on scenes with a tiny class.
RECIPES.update({f"loss_{name}": f"seglib.imbalance:loss_{name}"
                for name in ("ce", "weighted_ce", "dice", "focal", "ce_dice")})
