"""seglib: the helper package of the image-segmentation course unit.

Notebooks start with::

    import seglib
    device = seglib.setup()
"""
from seglib.env import by_profile, device, on_colab, profile, seed_everything, setup  # noqa: E402

__version__ = "0.1.0"


__all__ = ["__version__", "by_profile", "device", "on_colab", "profile", "seed_everything", "setup"]
