"""Datasets: generated scenes (offline default) and real-dataset loaders."""

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
