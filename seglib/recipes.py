"""Training recipes of the model zoo and the evaluators that re-measure them.

``RECIPES`` maps a zoo entry name to ``"module:function"``; the function takes
a device and returns a :class:`seglib.zoo.ZooResult`. ``make zoo`` runs them.
"""

from __future__ import annotations

RECIPES: dict[str, str] = {}

# Notebook 03: U-Net, U-Net with residual blocks, a small DeepLabv3.
RECIPES.update({
    "unet": "seglib.recipes_unet:unet",
    "unet_residual": "seglib.recipes_unet:unet_residual",
    "deeplab": "seglib.recipes_unet:deeplab",
})

# Notebook 02: FCN-32s, FCN-16s and FCN-8s on one shared encoder.
RECIPES.update({
    "fcn32s": "seglib.recipes_fcn:fcn32s",
    "fcn16s": "seglib.recipes_fcn:fcn16s",
    "fcn8s": "seglib.recipes_fcn:fcn8s",
})

# Notebook 05: the small Mask R-CNN.
RECIPES["maskrcnn"] = "seglib.recipes_maskrcnn:maskrcnn"

# Notebook 04: one small U-Net trained with five losses on scenes with a tiny class.
RECIPES.update({f"loss_{name}": f"seglib.imbalance:loss_{name}"
                for name in ("ce", "weighted_ce", "dice", "focal", "ce_dice")})

# Notebook 06: the small Segment Anything model.
RECIPES["promptable"] = "seglib.models.promptable.training:zoo_recipe"
