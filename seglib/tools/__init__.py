"""Build tooling behind the ``make`` targets, not part of the notebook API.

* :mod:`~seglib.tools.exercises`: ``make exercises``, the student versions;
* :mod:`~seglib.tools.slides`: ``make slides``, offline reveal.js slides;
* :mod:`~seglib.tools.bench`: ``make bench``, every notebook timed;
* :mod:`~seglib.tools.zoo`: ``make zoo``, model-zoo entries retrained from their recipes.
"""
