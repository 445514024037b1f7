"""Training recipes of the model zoo and the evaluators that re-measure them.

``RECIPES`` maps a zoo entry name to ``"module:function"``; the function takes
a device and returns a :class:`seglib.zoo.ZooResult`. ``make zoo`` runs them.
"""

from __future__ import annotations

RECIPES: dict[str, str] = {}
