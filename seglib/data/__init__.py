"""Data: generated scenes and clips (the offline default), prompts, batch generators, real datasets.

* :mod:`~seglib.data.shapes`: :class:`SceneConfig`, :class:`SceneBatch`, the fixed splits;
* :mod:`~seglib.data.drawing`: the generator's drawing primitives;
* :mod:`~seglib.data.video`: clips of moving, occluding things (notebook 06);
* :mod:`~seglib.data.prompts`: simulated clicks and boxes for promptable models;
* :mod:`~seglib.data.batches`: endless training batches (semantic, reconstruction, super-resolution, in memory);
* :mod:`~seglib.data.detection`: torchvision detection targets and batches;
* :mod:`~seglib.data.real`: Oxford-IIIT Pet and Penn-Fudan loaders with their offline fallback.

The names of :mod:`~seglib.data.shapes` are re-exported here.
"""

from seglib.data.shapes import (  # noqa: F401
    IGNORE_INDEX,
    PANOPTIC_DIVISOR,
    SceneBatch,
    SceneConfig,
    ShapesDataset,
    generate_scenes,
    scene_stream,
    split_scenes,
    with_options,
)
