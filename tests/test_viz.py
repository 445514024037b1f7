import matplotlib.pyplot as plt
import pytest
import torch

from seglib import viz
from seglib.data.shapes import SceneConfig, generate_scenes
from seglib.train import History


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(3, SceneConfig(size=32), seed=0)


def test_palette_is_distinct():
    colours = [rgb for _, rgb in viz.PALETTE]
    assert len(set(colours)) == len(colours)


def test_colourize(scenes):
    rgb = viz.colourize(scenes.semantic[0])
    assert rgb.shape == (3, 32, 32) and rgb.dtype == torch.uint8
    label = int(scenes.semantic[0, 0, 0])
    assert tuple(rgb[:, 0, 0].tolist()) == viz.colour(label)
    ignore = torch.full((2, 2), 255)
    assert tuple(viz.colourize(ignore)[:, 0, 0].tolist()) == viz.IGNORE_COLOUR


def test_colourize_rejects_bad_input():
    with pytest.raises(ValueError, match=r"labels must have shape \(H, W\), got \(2, 3, 3\)"):
        viz.colourize(torch.zeros(2, 3, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="labels must be an integer tensor.*argmax"):
        viz.colourize(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        viz.colourize(torch.full((2, 2), 300))


def test_overlays(scenes):
    inst = scenes.instances(0)
    out = viz.overlay_masks(scenes.images[0], inst["masks"], inst["labels"])
    assert out.shape == (3, 32, 32) and out.dtype == torch.uint8
    out = viz.overlay_boxes(scenes.images[0], inst["boxes"], [str(int(x)) for x in inst["labels"]], inst["labels"])
    assert out.shape == (3, 32, 32)
    empty = viz.overlay_masks(scenes.images[0], torch.zeros(0, 32, 32, dtype=torch.bool))
    assert torch.equal(empty, viz.to_uint8(scenes.images[0]))
    with pytest.raises(TypeError, match="masks must be a bool tensor"):
        viz.overlay_masks(scenes.images[0], inst["masks"].float())
    with pytest.raises(ValueError, match="boxes must have shape"):
        viz.overlay_boxes(scenes.images[0], torch.zeros(3))
    with pytest.raises(ValueError, match=r"image must be one image \(3, H, W\)"):
        viz.to_uint8(torch.zeros(1, 3, 4, 4))


def test_figures(scenes):
    ax = viz.show_label_map(scenes.semantic[0], scenes.config.class_names)
    assert ax.get_legend() is not None
    fig = viz.show_predictions(scenes.images, scenes.semantic, {"copy": scenes.semantic},
                               scenes.config.class_names, n=2)
    assert len(fig.axes) == 6
    plt.close("all")
    viz.show_points(torch.tensor([[3.0, 4.0], [5.0, 6.0]]), torch.tensor([1, 0]))
    history = History(steps=[1, 2], seconds=[0.1, 0.2], loss=[1.0, 0.5],
                      evals=[{"step": 2, "seconds": 0.2, "miou": 0.3}])
    ax = viz.plot_history({"run": history})
    assert ax.get_ylabel() == "training loss"
    ax = viz.plot_history({"run": history}, metric="miou", x="seconds", ax=plt.figure().gca())
    assert ax.get_xlabel() == "seconds"
    plt.close("all")


def test_draw_boxes_places_captions_apart():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 3))
    viz.show_image(torch.rand(3, 64, 64), ax=ax)
    boxes = torch.tensor([[5.0, 5.0, 40.0, 40.0], [6.0, 6.0, 41.0, 41.0]])
    viz.draw_boxes(ax, boxes, ["circle", "triangle"], torch.tensor([2, 4]))
    first, second = (text.get_position() for text in ax.texts)
    assert first != second and len(ax.patches) == 4   # two outlines per box
    with pytest.raises(ValueError, match="boxes"):
        viz.draw_boxes(ax, torch.zeros(3))
    plt.close(fig)


def test_draw_boxes_moves_captions_outside_when_the_corners_are_taken():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    viz.show_image(torch.rand(3, 128, 128), ax=ax)
    boxes = torch.tensor([[30.0, 30.0, 100.0, 100.0]]).repeat(5, 1) + torch.arange(5.0)[:, None]
    viz.draw_boxes(ax, boxes, ["circle", "square", "triangle", "circle", "square"], torch.tensor([2, 3, 4, 2, 3]))
    spots = [text.get_position() for text in ax.texts]
    assert len(set(spots)) == 5   # four corners could hold only four
    assert any(y < 30 or y > 100 for _, y in spots)
    plt.close(fig)


def test_plot_seed_scores_draws_a_row_per_run():
    import matplotlib.pyplot as plt

    from seglib.viz import plot_seed_scores

    fig, ax = plt.subplots()
    plot_seed_scores({"a": [0.5, 0.6, 0.7], "b": [0.2, 0.25]}, ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    bar = ax.lines[0].get_xdata()
    assert bar[0] < 0.6 < bar[1]  # the interval of "a" holds its mean
    with pytest.raises(ValueError, match="at least 2"):
        plot_seed_scores({"a": [0.5]}, ax=ax)
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_seed_scores({}, ax=ax)
    plt.close(fig)


def test_as_jpeg_renders_and_closes_the_figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(torch.rand(32, 32).numpy())
    image = viz.as_jpeg(fig, quality=80)
    assert image.data[:2] == b"\xff\xd8" and not plt.fignum_exists(fig.number)  # a JPEG; the figure is gone
    with pytest.raises(TypeError, match="fig must be"):
        viz.as_jpeg("not a figure")
    with pytest.raises(ValueError, match="quality"):
        viz.as_jpeg(plt.figure(), quality=100)


def test_highlight_fills_magenta_and_outlines_in_white():
    from seglib.viz import HIGHLIGHT_COLOUR, highlight

    image = torch.zeros(3, 10, 10)
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[2:8, 2:8] = True
    picture = highlight(image, mask)
    assert picture[:, 2, 2].tolist() == [255, 255, 255]            # outline
    inside = picture[:, 4, 4].float()
    assert inside[0] > 100 and inside[1] == 0 and inside[2] > 100    # magenta over black
    assert picture[:, 0, 0].tolist() == [0, 0, 0]                    # untouched outside
    assert HIGHLIGHT_COLOUR == (255, 0, 255)


def test_dimmed_is_a_light_grey_copy():
    image = torch.rand(3, 8, 8)
    grey = viz.dimmed(image)
    assert grey.shape == (3, 8, 8) and torch.equal(grey[0], grey[2])
    assert 0.5 <= float(grey.min()) and float(grey.max()) <= 0.85
    assert torch.allclose(viz.dimmed(viz.to_uint8(image)), grey, atol=0.002)   # a uint8 image is not 255x brighter
    with pytest.raises(ValueError, match="image"):
        viz.dimmed(torch.rand(8, 8))


def test_overlapping_masks_keep_a_colour_the_smallest_on_top():
    image = torch.full((3, 16, 16), 0.5)
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, :12] = True        # large
    masks[1, 4:8, 4:8] = True   # small, inside the large one
    out = viz.overlay_masks(image, masks, alpha=1.0)
    assert out[:, 6, 6].tolist() == list(viz.INSTANCE_PALETTE[1])   # the small one, not black
    assert out[:, 0, 0].tolist() == list(viz.INSTANCE_PALETTE[0])
    assert out[:, 14, 0].tolist() == viz.to_uint8(image)[:, 14, 0].tolist()  # outside every mask: the image


def test_fit_title_breaks_long_titles_outside_parentheses():
    assert viz.fit_title("FCN-8s", 1.5) == "FCN-8s"
    assert viz.fit_title("bottleneck (8 x 8)", 1.5) == "bottleneck\n(8 x 8)"
    assert all(len(line) <= 13 for line in viz.fit_title("the output of a U-Net after 400 steps", 1.5).split("\n"))


def test_show_detections_colours_a_shape_as_in_the_label_maps():
    import matplotlib.pyplot as plt

    from seglib.data import SceneConfig, detection, generate_scenes

    scenes = generate_scenes(1, SceneConfig(size=64, min_objects=1, max_objects=1), seed=1)
    target = detection.scene_targets(scenes)[0]
    class_id = int(scenes.detection_targets()[0]["labels"][0])
    shift = detection.label_shift(scenes.config)
    assert int(target["labels"][0]) + shift == class_id
    ax = viz.show_detections(scenes.images[0], target, detection.detection_class_names(scenes.config),
                             palette_shift=shift)
    outline = [p.get_edgecolor()[:3] for p in ax.patches][1]   # the coloured one over the black outline
    assert [round(c * 255) for c in outline] == list(viz.colour(class_id))
    with pytest.raises(TypeError, match="config must be a SceneConfig"):
        detection.label_shift("default")
    with pytest.raises(ValueError, match="palette_shift"):
        viz.show_detections(scenes.images[0], target, detection.detection_class_names(scenes.config),
                            palette_shift=-1)
    plt.close("all")


def test_show_everything_draws_each_scene_and_its_title(scenes):
    from seglib.mask_generator import GeneratedMasks
    from seglib.viz_sam import show_everything

    masks = scenes.masks[0][scenes.valid[0]]
    found = [GeneratedMasks(masks, torch.ones(len(masks)), torch.ones(len(masks)), torch.full((len(masks), 2), 8.0))
             for _ in range(3)]
    fig = show_everything(scenes, found, [0, 2], title="zoo model, middle filters")
    titles = [ax.get_title() for ax in fig.axes]
    count = len(masks)
    assert titles == [f"scene {i}: {count} mask{'' if count == 1 else 's'}" for i in (0, 2)]
    assert fig._suptitle.get_text() == "zoo model, middle filters"
    assert show_everything(scenes, found, [1])._suptitle is None
    plt.close("all")
