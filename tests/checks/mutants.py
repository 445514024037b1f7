"""Typical wrong answers to every exercise: the instructor's solution with one mistake each.

``MUTANTS[notebook][grade_id]`` lists ``(mistake, old, new)``: replacing every
``old`` by ``new`` in the solution cell ``grade_id`` of ``notebooks/<notebook>.ipynb``
gives a plausible wrong answer that the exercise's check must reject. The
first mutant of each exercise is also the "wrong answer" submission of the
nbgrader test (``tests/tools/test_grade.py``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

MUTANTS: dict[str, dict[str, list[tuple[str, str, str]]]] = {
    "00_overview": {
        "things_per_class": [
            ("stuff counted", "if instance > 0:", "if True:"),
            ("class read from the remainder", "class_id, instance = divmod(pid, 1000)",
             "instance, class_id = divmod(pid, 1000)"),
            ("presence instead of a count", "counts[class_id] += 1", "counts[class_id] = 1"),
            ("pixels counted", "panoptic.unique().tolist()", "panoptic.flatten().tolist()"),
        ],
        "largest_shift": [
            ("overlap share taken for the IoU", "math.floor(width * (1 - threshold) / (1 + threshold))",
             "math.floor(width * (1 - threshold))"),
            ("rounded", "math.floor(", "round("),
            ("one pixel too far", "/ (1 + threshold))", "/ (1 + threshold)) + 1"),
            ("a float", "math.floor(width * (1 - threshold) / (1 + threshold))",
             "width * (1 - threshold) / (1 + threshold)"),
        ],
    },
    "01_upsampling": {
        "output_size_answers": [
            ("output_padding forgotten", "[3, 32, 6, 6, 5, 7, 32, 12, 6]", "[3, 32, 6, 6, 5, 7, 32, 11, 6]"),
            ("dilation ignored", "[3, 32, 6, 6, 5, 7, 32, 12, 6]", "[3, 32, 6, 6, 7, 7, 32, 12, 4]"),
            ("rounded up", "[3, 32, 6, 6, 5, 7, 32, 12, 6]", "[3, 32, 6, 7, 5, 7, 32, 12, 6]"),
            ("convolution formula for a transposed one", "[3, 32, 6, 6, 5, 7, 32, 12, 6]",
             "[3, 32, 6, 6, 5, 1, 8, 3, 0]"),
        ],
        "my_conv_matrix": [
            ("transposed matrix", "    return C", "    return C.T"),
            ("flipped kernel", "] = w", "] = w.flip(0)"),
            ("stride ignored in the rows", "C[o, o * stride: o * stride + len(w)]", "C[o, o: o + len(w)]"),
            ("one row too many", "n_out = (n - len(w)) // stride + 1", "n_out = (n - len(w)) // stride + 2"),
        ],
        "taps_per_phase": [
            ("rounded down", "return [len(range(phase, k, stride)) for phase in range(stride)]",
             "return [(k - phase) // stride for phase in range(stride)]"),
            ("k // stride everywhere", "return [len(range(phase, k, stride)) for phase in range(stride)]",
             "return [k // stride] * stride"),
            ("phases reversed", "for phase in range(stride)]", "for phase in reversed(range(stride))]"),
            ("one count per tap", "for phase in range(stride)]", "for phase in range(k)]"),
        ],
    },
    "02_fcn": {
        "linear_to_conv": [
            ("flattened channels last", "linear.weight.view(linear.out_features, in_channels, kernel_size, kernel_size)",
             "linear.weight.view(linear.out_features, kernel_size, kernel_size, in_channels).permute(0, 3, 1, 2)"),
            ("bias not copied", "conv.bias.copy_(linear.bias)", "pass"),
            ("rows and columns swapped", "kernel_size, kernel_size))", "kernel_size, kernel_size).transpose(2, 3))"),
        ],
        "upsampler_padding": [
            ("no padding", "return (kernel - factor) // 2", "return 0"),
            ("the same padding of a stride-1 convolution", "return (kernel - factor) // 2", "return (kernel - 1) // 2"),
            ("half the factor rounded up", "return (kernel - factor) // 2", "return (factor + 1) // 2"),
            ("k - factor at each end", "return (kernel - factor) // 2", "return kernel - factor"),
        ],
        "my_confusion_matrix": [
            ("rows and columns swapped", "pairs = target[kept] * num_classes + pred[kept]",
             "pairs = pred[kept] * num_classes + target[kept]"),
            ("ignored pixels kept", "kept = target != 255", "kept = target >= 0"),
            ("no minlength", "torch.bincount(pairs, minlength=num_classes ** 2)", "torch.bincount(pairs)"),
        ],
    },
    "03_unet": {
        "MyDecoderBlock": [
            ("skip after the upsampled map", "torch.cat([skip, x], dim=1)", "torch.cat([x, skip], dim=1)"),
            ("no batch norm", "torch.relu(self.bn1(self.conv1(x)))", "torch.relu(self.conv1(x))"),
            ("convolutions with a bias", "padding=1, bias=False)", "padding=1)"),
            ("upsampled by a convolution of stride 1", "kernel_size=2, stride=2)", "kernel_size=1, stride=1)"),
        ],
        "reached_offsets": [
            ("every offset of the field", "    return sorted(offsets)",
             "    return list(range(-sum(dilations), sum(dilations) + 1))"),
            ("centre tap forgotten", "for step in (-d, 0, d)}", "for step in (-d, d)}"),
            ("one side only", "for step in (-d, 0, d)}", "for step in (0, d)}"),
            ("dilation ignored", "for step in (-d, 0, d)}", "for step in (-1, 0, 1)}"),
        ],
    },
    "04_losses": {
        "my_soft_dice_loss": [
            ("no softmax", "probs = logits.softmax(dim=1)", "probs = logits"),
            ("sigmoid instead of softmax", "probs = logits.softmax(dim=1)", "probs = logits.sigmoid()"),
            ("one Dice per image", "sum(dim=(0, 2, 3))", "sum(dim=(2, 3))"),
            ("a float, not a tensor", "return 1 - ((2 * intersection + smooth) / (sizes + smooth)).mean()",
             "return (1 - ((2 * intersection + smooth) / (sizes + smooth)).mean()).item()"),
        ],
        "my_class_weights": [
            ("not normalised", "return (weights / weights[present].mean()).float()", "return weights.float()"),
            ("frequency, not inverse frequency", "counts.sum() / counts.clamp_min(1)", "counts / counts.sum()"),
            ("ignored pixels counted", "labels[labels != 255]", "labels.flatten().clamp(max=num_classes - 1)"),
            ("mean over absent classes too", "weights / weights[present].mean()", "weights / weights.mean()"),
        ],
        "trained_with_weighted_ce": [
            ("comparison reversed", "bool(predicted > true)", "bool(predicted < true)"),
            ("a constant answer", "return bool(predicted > true)", "return False"),
            ("recall above one half", "predicted, true = cm[:, small_class].sum(), cm[small_class].sum()",
             "predicted, true = cm[small_class, small_class], cm[small_class].sum() / 2"),
            ("the large class", "cm[:, small_class].sum(), cm[small_class].sum()", "cm[:, 0].sum(), cm[0].sum()"),
            ("recall above 0.9", "return bool(predicted > true)",
             "return bool(cm[small_class, small_class] > 0.9 * true)"),
            ("precision below one half", "return bool(predicted > true)",
             "return bool(cm[small_class, small_class] < 0.5 * predicted)"),
        ],
    },
    "05_mask_rcnn": {
        "bilinear": [
            ("nearest sample", "ly, lx = y - y0, x - x0", "ly, lx = 0.0, 0.0"),
            ("weights of x and y swapped", "ly, lx = y - y0, x - x0", "lx, ly = y - y0, x - x0"),
            ("rounded corner", "y0, x0 = int(y), int(x)", "y0, x0 = round(y), round(x)"),
            ("no clamp at the last row and column", "min(y0 + 1, height - 1), min(x0 + 1, width - 1)",
             "y0 + 1, x0 + 1"),
        ],
        "roi_align_box": [
            ("half-pixel offset ignored", "offset = 0.5 if aligned else 0.0", "offset = 0.0"),
            ("half-pixel offset always", "offset = 0.5 if aligned else 0.0", "offset = 0.5"),
            ("no one-cell minimum", "width, height = max(width, 1.0), max(height, 1.0)", "pass"),
            ("samples at the bin corners", " + 0.5) / sampling_ratio", ") / sampling_ratio"),
            ("spatial scale ignored", "float(v) * spatial_scale - offset", "float(v) - offset"),
        ],
        "mask_iou": [
            ("empty pair scores 0", "if union else 1.0", "if union else 0.0"),
            ("sum instead of union", "union = int((a | b).sum())", "union = int(a.sum() + b.sum())"),
            ("over the prediction only", "union = int((a | b).sum())", "union = int(a.sum())"),
        ],
        "match_predictions": [
            ("first ground truth above the threshold",
             "matched[p] = ious.index(max(ious))",
             "matched[p] = next(k for k, v in enumerate(ious) if v >= iou_threshold)"),
            ("predictions in the given order", "torch.argsort(scores, descending=True).tolist()",
             "range(len(pred_masks))"),
            ("a ground truth matched twice", "taken.add(matched[p])", "pass"),
            ("IoU must exceed the threshold", "max(ious) >= iou_threshold", "max(ious) > iou_threshold"),
            ("no fallback when the best object is taken",
             " if k not in taken else -1.0\n                for k, g in enumerate(gt_masks)]",
             "\n                for k, g in enumerate(gt_masks)]\n"
             "        if ious and ious.index(max(ious)) in taken:\n            continue"),
        ],
    },
    "06_sam": {
        "fourier_encoding": [
            ("coordinates not mapped to [-1, 1]", "(2 * unit - 1) @ gaussian", "unit @ gaussian"),
            ("no 2 pi", "angles = 2 * math.pi * (", "angles = ("),
            ("cos before sin", "[torch.sin(angles), torch.cos(angles)]", "[torch.cos(angles), torch.sin(angles)]"),
            ("x and y swapped", "unit = points / image_size", "unit = points.flip(-1) / image_size"),
        ],
        "disambiguating_click": [
            ("x and y swapped", "return int(xs[0]), int(ys[0]), label", "return int(ys[0]), int(xs[0]), label"),
            ("a click inside the spot", "ring = whole & ~part", "ring = part"),
            ("labels reversed", 'label = 1 if want == "whole" else 0', 'label = 0 if want == "whole" else 1'),
            ("always positive", 'label = 1 if want == "whole" else 0', "label = 1"),
        ],
    },
}


def solution_sources(notebook: str) -> dict[str, str]:
    """grade_id -> source of every code solution cell of ``notebooks/<notebook>.ipynb``, in notebook order
    (written answers, graded by hand, have no mutants)."""
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}


def mutate(source: str, old: str, new: str) -> str:
    """``source`` with every ``old`` replaced by ``new``; ``old`` must occur."""
    if old not in source:
        raise ValueError(f"the mutant's text {old!r} is not in the solution any more: update tests/checks/mutants.py")
    return source.replace(old, new)
