"""The small SAM's parts: shapes flowing between encoder, prompt encoder and decoder."""

import math

import pytest
import torch

from seglib.models.promptable import ImageEncoder, MaskDecoder, PromptEncoder, build_small_sam, random_fourier_features
from seglib.metrics.masks import paired_iou
from seglib.predictor import select_best_mask
from seglib.models.promptable.prompt_encoder import PositionEmbeddingRandom


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_small_sam(image_size=32, embed_dim=32, widths=(8, 16, 32), encoder_depth=1, dense_points=True).eval()


def test_encoder_shapes():
    encoder = ImageEncoder(embed_dim=32, widths=(8, 16, 24), depth=1, image_size=32)
    features = encoder(torch.rand(2, 3, 32, 32))
    assert features.embedding.shape == (2, 32, 8, 8)
    assert [tuple(t.shape) for t in features.high_res] == [(2, 16, 16, 16), (2, 8, 32, 32)]
    expanded = features.expand(torch.tensor([2, 1]))
    assert expanded.embedding.shape[0] == 3 and torch.equal(expanded.embedding[1], features.embedding[0])
    with pytest.raises(ValueError, match="32x32"):
        encoder(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="multiple of 4"):
        ImageEncoder(image_size=30)


def test_fourier_features_formula():
    gaussian = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    out = random_fourier_features(torch.tensor([[0.75, 0.5]]), gaussian)
    angles = 2 * math.pi * torch.tensor([0.5, 0.0])
    assert torch.allclose(out, torch.cat([angles.sin(), angles.cos()])[None], atol=1e-6)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        random_fourier_features(torch.zeros(3), gaussian)
    with pytest.raises(ValueError, match=r"\(2, F\)"):
        random_fourier_features(torch.zeros(1, 2), torch.zeros(3, 2))


def test_point_code_matches_the_grid_cell_under_it():
    pe = PositionEmbeddingRandom(16)
    grid = pe.grid(8, 8)  # cells of 4 pixels in a 32-pixel image
    point = pe.points(torch.tensor([[[4 * 5 + 2.0, 4 * 3 + 2.0]]]), 32)  # centre of cell (x=5, y=3)
    assert torch.allclose(point[0, 0], grid[:, 3, 5], atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        PositionEmbeddingRandom(15)


@pytest.mark.parametrize("dense_points", [False, True])
def test_prompt_encoder_tokens_and_dense(dense_points):
    encoder = PromptEncoder(embed_dim=32, image_size=32, embedding_size=8, dense_points=dense_points)
    points, labels = torch.rand(2, 3, 2) * 32, torch.tensor([[1, 0, -1], [1, 1, 0]])
    sparse, dense = encoder(points, labels)
    assert sparse.shape == (2, 4, 32) and dense.shape == (2, 32, 8, 8)  # one padding token without a box
    assert torch.equal(sparse[0, 2], encoder.not_a_point_embed)
    sparse, dense = encoder(points, labels, boxes=torch.tensor([[1.0, 2.0, 20.0, 30.0]] * 2))
    assert sparse.shape == (2, 5, 32)
    sparse, _ = encoder(boxes=torch.tensor([[1.0, 2.0, 20.0, 30.0]]))
    assert sparse.shape == (1, 2, 32)
    _, with_mask = encoder(points, labels, masks=torch.randn(2, 1, 32, 32), mask_valid=torch.tensor([True, False]))
    _, without = encoder(points, labels)
    assert torch.allclose(with_mask[1], without[1], atol=1e-6), "an invalid mask row is a row without mask"
    with pytest.raises(ValueError, match="give at least one prompt"):
        encoder()
    with pytest.raises(ValueError, match="labels must have shape"):
        encoder(points, labels[:, :2])
    with pytest.raises(ValueError, match="masks must have shape"):
        encoder(points, labels, masks=torch.zeros(2, 1, 8, 8))


def test_prompt_maps_draw_points_and_box():
    encoder = PromptEncoder(embed_dim=32, image_size=32, embedding_size=8, dense_points=True)
    maps = encoder.prompt_maps(torch.tensor([[[10.5, 20.5], [3.5, 3.5]]]), torch.tensor([[1, 0]]),
                               torch.tensor([[4.0, 8.0, 20.0, 30.0]]), 1)
    assert maps.shape == (1, 3, 32, 32)
    assert maps[0, 0, 20, 10] == 1 and maps[0, 1, 3, 3] == 1 and maps[0, 0, 3, 3] < 1e-3
    assert maps[0, 2].sum() == 16 * 22


def test_decoder_outputs_four_masks_and_ious():
    decoder = MaskDecoder(embed_dim=32, high_res_channels=(16, 8), mlp_dim=64)
    masks, iou = decoder(torch.randn(2, 32, 8, 8), torch.randn(1, 32, 8, 8), torch.randn(2, 3, 32),
                         torch.randn(2, 32, 8, 8), (torch.randn(2, 16, 16, 16), torch.randn(2, 8, 32, 32)))
    assert masks.shape == (2, 4, 32, 32) and iou.shape == (2, 4)
    with pytest.raises(ValueError, match="expand"):
        decoder(torch.randn(1, 32, 8, 8), torch.randn(1, 32, 8, 8), torch.randn(2, 3, 32),
                torch.randn(2, 32, 8, 8), (torch.randn(1, 16, 16, 16), torch.randn(1, 8, 32, 32)))


def test_scored_iou_head_reads_each_mask_without_moving_it():
    torch.manual_seed(0)
    decoder = MaskDecoder(embed_dim=32, high_res_channels=(16, 8), mlp_dim=64, scored_iou=True)
    inputs = (torch.randn(2, 32, 8, 8), torch.randn(1, 32, 8, 8), torch.randn(2, 3, 32),
              torch.randn(2, 32, 8, 8), (torch.randn(2, 16, 16, 16), torch.randn(2, 8, 32, 32)))
    masks, iou = decoder(*inputs)
    assert masks.shape == (2, 4, 32, 32) and iou.shape == (2, 4)
    iou.sum().backward()
    hyper = decoder.hypernetworks[0].layers[-1].weight.grad
    assert hyper is None or not hyper.any(), "the IoU loss must not reach the masks through the scored head"
    assert decoder.iou_head.layers[0].weight.grad.abs().sum() > 0
    # The same IoU token, two different masks: the scores differ because the masks do.
    scores = MaskDecoder._mask_scores(torch.zeros(1, 32), torch.zeros(1, 2, 32),
                                      torch.stack([torch.full((8, 8), 5.0), torch.full((8, 8), -5.0)])[None],
                                      torch.ones(1, 4, 8, 8))
    assert scores.shape == (1, 2, 2 * 32 + 4 + 2)
    assert scores[0, 0, -2] > 0.99 and scores[0, 1, -2] < 0.01, "area fraction of a full and an empty mask"


def test_model_encode_once_decode_many(tiny):
    images = torch.rand(2, 3, 32, 32)
    features = tiny.encode(images)
    many = features.expand(3)
    points, labels = torch.rand(6, 1, 2) * 32, torch.ones(6, 1, dtype=torch.int64)
    masks, iou = tiny.decode(many, points, labels)
    assert masks.shape == (6, 3, 32, 32) and iou.shape == (6, 3)
    single, _ = tiny.decode(many, boxes=torch.tensor([[2.0, 2.0, 20.0, 20.0]] * 6), multimask_output=False)
    assert single.shape == (6, 1, 32, 32)
    direct, _ = tiny(images[:1], points[:1], labels[:1])
    assert torch.allclose(direct, masks[:1], atol=1e-5)
    with pytest.raises(TypeError, match="float tensor"):
        tiny.encode(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiple of 4"):
        build_small_sam(image_size=30)


def test_select_best_mask_and_paired_iou():
    masks = torch.zeros(2, 3, 4, 4, dtype=torch.bool)
    masks[0, 1, :2] = True
    masks[1, 2] = True
    best, index = select_best_mask(masks, torch.tensor([[0.1, 0.9, 0.3], [0.2, 0.1, 0.5]]))
    assert index.tolist() == [1, 2] and torch.equal(best, masks[[0, 1], [1, 2]])
    target = torch.zeros(4, 4, dtype=torch.bool)
    target[:1] = True
    assert paired_iou(best[0], target).item() == pytest.approx(0.5)
    assert paired_iou(torch.zeros(4, 4, dtype=torch.bool), torch.zeros(4, 4, dtype=torch.bool)).item() == 1
    with pytest.raises(ValueError, match=r"\(B,C\)"):
        select_best_mask(masks, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="bool"):
        paired_iou(best.float(), best)


def test_features_taken_and_encoded_in_batches(tiny):
    from seglib.models.promptable.image_encoder import ImageFeatures
    from seglib.models.promptable.model import encode_images

    images = torch.rand(7, 3, 32, 32)
    tiny.eval()
    with torch.no_grad():
        whole = tiny.encode(images)
        batched = encode_images(tiny, images, batch_size=3)
    assert torch.allclose(batched.embedding, whole.embedding, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(batched.high_res, whole.high_res))
    picked = whole.take(torch.tensor([4, 4, 0]))
    assert picked.embedding.shape[0] == 3 and torch.equal(picked.embedding[1], whole.embedding[4])
    assert torch.equal(picked.high_res[1][2], whole.high_res[1][0])
    joined = ImageFeatures.cat([whole.take(slice(0, 2)), whole.take(slice(2, None))])
    assert torch.equal(joined.embedding, whole.embedding)


def test_encoder_attention_is_multihead_attention():
    torch.manual_seed(0)
    block = ImageEncoder(embed_dim=16, widths=(8, 8, 16), depth=1, image_size=32).blocks[0].eval()
    tokens = torch.randn(2, 64, 16)
    with torch.no_grad():
        ours = block._self_attention(tokens)
        reference = block.attn(tokens, tokens, tokens, need_weights=False)[0]
    assert torch.allclose(ours, reference, atol=1e-5)
