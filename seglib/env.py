"""Run environment: device, seeding, run profile, Colab detection and the setup banner.

Every notebook starts with ``seglib.setup()``. The *profile* decides how much a
notebook trains live:

* ``"cpu"``: a short live run (about a minute on a 2-core laptop), then the
  model zoo's checkpoint for the full-quality tables;
* ``"gpu"``: full-quality training live.

The profile follows CUDA availability unless ``SEGLIB_PROFILE`` says otherwise.
"""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch

PROFILES = ("cpu", "gpu")
PROFILE_VARIABLE = "SEGLIB_PROFILE"


def device() -> torch.device:
    """The device notebooks compute on: ``cuda`` when available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) and return a CPU generator.

    Args:
        seed: a non-negative integer.

    Returns:
        A ``torch.Generator`` on the CPU seeded with ``seed``, for code that
        prefers an explicit generator over the global state.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def profile() -> str:
    """The active run profile, ``"cpu"`` or ``"gpu"``.

    ``SEGLIB_PROFILE`` overrides the automatic choice (``"gpu"`` when CUDA is
    available). Any other value of the variable is an error, so a typo never
    silently changes what a notebook asserts.
    """
    value = os.environ.get(PROFILE_VARIABLE, "").strip().lower()
    if not value:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(
            f"{PROFILE_VARIABLE} must be one of {PROFILES}, got {value!r}"
        )
    return value


def by_profile(cpu, gpu):
    """The value for the active profile: ``by_profile(cpu=600, gpu=6000)`` steps."""
    return gpu if profile() == "gpu" else cpu


def on_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def _versions() -> dict[str, str]:
    import matplotlib
    import torchvision

    from seglib import __version__

    versions = {
        "seglib": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
    }
    try:
        import ipywidgets

        versions["ipywidgets"] = ipywidgets.__version__
    except ImportError:  # widgets are optional outside notebooks
        versions["ipywidgets"] = "not installed"
    return versions


def banner() -> str:
    """The text that :func:`setup` prints: versions, device, profile, advice.

    The advice matches the device and the profile: without a GPU it says how
    long the cpu profile trains and how to get a GPU, or, when
    ``SEGLIB_PROFILE=gpu`` forces the gpu profile anyway, that the gpu budgets
    will run on the CPU and how to switch back.
    """
    dev = device()
    prof = profile()
    lines = ["seglib setup"]
    lines += [f"  {name:<12}{version}" for name, version in _versions().items()]
    if dev.type == "cuda":
        lines.append(f"  {'device':<12}cuda ({torch.cuda.get_device_name(dev)})")
    else:
        lines.append(f"  {'device':<12}cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)")
    lines.append(f"  {'profile':<12}{prof}")
    if dev.type == "cpu" and prof == "gpu":
        lines.append(
            f"No GPU found, but {PROFILE_VARIABLE}=gpu forces the gpu profile: each notebook runs its "
            "full-quality gpu training budget on the CPU, which takes far longer than the cpu profile's "
            f"minute or two per notebook. To switch back, unset {PROFILE_VARIABLE} or set "
            f"{PROFILE_VARIABLE}=cpu."
        )
    elif dev.type == "cpu":
        lines.append(
            "No GPU found: the notebooks that train do so live for about a minute, then load "
            "the model zoo's checkpoints for the full-quality tables (1 to 3 minutes "
            "per notebook on a 2-core laptop)."
        )
        if on_colab():
            lines.append(
                "On Colab: Runtime > Change runtime type > T4 GPU, then run all "
                "cells again for the gpu profile."
            )
        else:
            lines.append(
                "For full-quality live training, run on a machine with a CUDA GPU "
                "(or open the notebook on Colab with a GPU runtime)."
            )
    elif prof == "cpu":
        lines.append(f"A GPU is present but {PROFILE_VARIABLE}=cpu keeps the short budgets.")
    return "\n".join(lines)


def setup(seed: int = 0, verbose: bool = True) -> torch.device:
    """Prepare a notebook: seed everything, apply the course's figure style, pick the device, print the banner.

    Args:
        seed: seed for Python, NumPy and PyTorch.
        verbose: print the banner (versions, device, profile).

    Returns:
        The device to compute on.
    """
    from seglib.style import use_course_style

    seed_everything(seed)
    use_course_style()
    if verbose:
        print(banner())
    return device()
