"""Dense prediction: torchvision's segmentation models (an output dict, `F.interpolate(x, size=...)` back to the
input's size, DeepLabV3's image pooling spread over the map) import exactly, and `upsample` on a vector (a map
of one position) is what PyTorch computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import segmentation

import paramsym
from helpers.imported import ours, torch_truth

MODELS = {
    "fcn_resnet50": segmentation.fcn_resnet50,
    "deeplabv3_resnet50": segmentation.deeplabv3_resnet50,
    "lraspp_mobilenet_v3_large": segmentation.lraspp_mobilenet_v3_large,
}


@pytest.mark.parametrize("name", MODELS)
def test_segmentation_models_import_exactly(name):
    with torch.device("meta"):
        model = MODELS[name](weights=None, weights_backbone=None)
    text, counted = ours(model, (224, 224, 3))
    truth = torch_truth(model, (224, 224, 3))
    assert counted["params"] == truth["params"] and counted["state"] == truth["state"]
    c, h, w = truth["out"]
    assert counted["out"] == (h, w, c) == (224, 224, 21)
    assert counted["macs"] == truth["macs"], (counted["macs"], truth["macs"])
    assert "upsample(" in text


@pytest.mark.parametrize(
    "program, module, out",
    [
        ("input(4x4x8) > gap > upsample(3x5)", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Upsample((3, 5))), (3, 5, 8)),
        (
            "input(4x4x8) > gap > upsample(6x6, bilinear)",
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Upsample(scale_factor=6, mode="bilinear")),
            (6, 6, 8),
        ),
        ("input(5x8) > gap > upsample(7)", nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Upsample(scale_factor=7)), (7, 8)),
    ],
)
def test_upsample_spreads_a_vector_over_a_map(program, module, out):
    network = paramsym.parse(program)
    values = network.evaluate()
    assert tuple(int(d) for d in network.output_shape.dims()) == out
    assert values["params"] == 0 and values["macs"] == 0
    *spatial, channels = (int(d) for d in network.input_shape.dims())
    x = torch.randn(2, channels, *spatial)
    theirs = module(x)
    assert tuple(theirs.shape[2:]) + (theirs.shape[1],) == out
    exported = paramsym.to_torch(network)
    assert torch.allclose(exported(x), theirs)  # nearest and bilinear from one position: the vector, everywhere


@pytest.mark.parametrize(
    "build",
    [
        lambda: __import__("torchvision").models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None),
        lambda: __import__("torchvision").models.detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None),
        lambda: __import__("torchvision").models.detection.ssdlite320_mobilenet_v3_large(
            weights=None, weights_backbone=None
        ),
    ],
    ids=["fasterrcnn", "retinanet", "ssdlite"],
)
def test_detection_models_are_refused_by_name(build):
    with torch.device("meta"):
        model = build()
    with pytest.raises(paramsym.ParamsymError, match=f"{type(model).__name__} is a detection model"):
        paramsym.from_torch(model, (320, 320, 3))
