import pytest

from seglib.validation import check_positive_int


def test_check_positive_int():
    assert check_positive_int("n", 3) == 3
    with pytest.raises(TypeError, match="n must be an int, got float"):
        check_positive_int("n", 2.0)
    with pytest.raises(TypeError, match="got bool"):
        check_positive_int("n", True)
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        check_positive_int("n", 0)


def test_image_messages_say_how_to_fix_the_usual_mistakes():
    import torch

    from seglib.validation import check_image

    image = torch.rand(3, 8, 8)
    with pytest.raises(ValueError, match=r"channels-last: use \.permute\(2, 0, 1\)"):
        check_image("image", image.permute(1, 2, 0))
    with pytest.raises(ValueError, match="0-255 values: divide by 255"):
        check_image("image", image * 255)
    with pytest.raises(ValueError, match=r"add the batch dimension with images\[None\]"):
        check_image("images", image, batched=True)
    with pytest.raises(TypeError, match=r"\.float\(\) / 255"):
        check_image("image", (image * 255).long())
    assert check_image("image", (image * 255).to(torch.uint8), allow_uint8=True).dtype == torch.uint8


def test_label_map_and_logits_messages():
    import torch

    from seglib.validation import check_label_map, check_logits

    with pytest.raises(TypeError, match=r"argmax\(dim=1\)"):
        check_label_map("target", torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\) or 255, got 7"):
        check_label_map("target", torch.full((1, 4, 4), 7), num_classes=3)
    check_label_map("target", torch.full((1, 4, 4), 255), num_classes=3)
    with pytest.raises(ValueError, match="logits must be finite"):
        check_logits("logits", torch.full((1, 2, 4, 4), float("nan")))
