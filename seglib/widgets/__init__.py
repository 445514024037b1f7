"""Interactive widgets (ipywidgets 7.7 and 8).

* :mod:`~seglib.widgets.conv`: the convolution-arithmetic figure and its explorer (notebook 01);
* :mod:`~seglib.widgets.prompts`: clicking prompts on an image for a promptable model (notebook 06).
"""

from seglib.widgets.conv import conv_explorer, draw_conv_arithmetic  # noqa: F401
from seglib.widgets.prompts import PromptSession, prompt_widget  # noqa: F401
