"""torch and torchvision are a matched pair: a mismatched torchvision fails at import or at its
first compiled op, and pytorch_lightning imports torchvision when present."""

import torch
import torchvision
from torchvision.ops import nms


def test_torchvision_imports_and_runs_a_compiled_op():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torchvision.__version__.startswith("0.29")
    assert torch.__version__.startswith("2.14")
