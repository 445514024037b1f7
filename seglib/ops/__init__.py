"""The teaching operations, each a function with a docstring of its shapes.

* :mod:`~seglib.ops.upsampling`: convolution arithmetic, transposed convolution
  from scratch, the convolution matrix, unpooling;
* :mod:`~seglib.ops.roi`: bilinear sampling, RoIAlign (tested against
  ``torchvision.ops.roi_align``), RoIPool's quantisation, mask targets and pasting;
* :mod:`~seglib.ops.tiling`: overlap-tile inference with mirror padding;
* :mod:`~seglib.ops.receptive_field`: receptive fields, computed and measured;
* :mod:`~seglib.ops.crf`: mean-field CRF refinement of a segmentation (DeepLab v1/v2's post-processing).
"""
