"""torchvision architectures resized for small (24-64 px) synthetic images.

The models stay instances of the torchvision classes (plus plain ``torch.nn`` layers swapped into the
stem and head) so that pickled ``model.pt`` files reference only ``torchvision``/``torch`` globals,
as TrojAI's did, and load through the project's allow-listed unpickler. Widths are cut and the
ImageNet stems made gentler so a model trains in a few CPU minutes on 32 px images.
"""
from __future__ import annotations

from typing import Callable

from torch import nn
from torchvision.models import DenseNet, MobileNetV2, ResNet, ShuffleNetV2, SqueezeNet, VGG
from torchvision.models.resnet import BasicBlock
from torchvision.models.vgg import make_layers

Builder = Callable[[int, int], nn.Module]


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def resnet18(num_classes: int, width: int = 16) -> nn.Module:
    """ResNet-18 (BasicBlock [2,2,2,2]) with a 3x3 stride-2 stem, no max-pool, widths w..8w."""
    model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, width, 3, 2, 1, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.maxpool = nn.Identity()
    model.inplanes = width
    model.layer1 = model._make_layer(BasicBlock, width, 2)
    model.layer2 = model._make_layer(BasicBlock, 2 * width, 2, stride=2)
    model.layer3 = model._make_layer(BasicBlock, 4 * width, 2, stride=2)
    model.layer4 = model._make_layer(BasicBlock, 8 * width, 2, stride=2)
    model.fc = nn.Linear(8 * width, num_classes)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def mobilenet_v2(num_classes: int, width: int = 16) -> nn.Module:
    """MobileNetV2 at width 0.5 with a shortened inverted-residual table (total stride 16)."""
    setting = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 2, 2], [6, 64, 2, 2], [6, 96, 1, 1], [6, 160, 2, 2]]
    model = MobileNetV2(num_classes=num_classes, width_mult=width / 32, inverted_residual_setting=setting,
                        dropout=0.1)
    return model


def shufflenet_v2(num_classes: int, width: int = 16) -> nn.Module:
    """ShuffleNetV2 (repeats [4,8,4], 0.5x-like widths) without the stem max-pool."""
    model = ShuffleNetV2([4, 8, 4], [width + width // 2, 3 * width, 6 * width, 12 * width, 256],
                         num_classes=num_classes)
    model.maxpool = nn.Identity()
    return model


def squeezenet1_1(num_classes: int, width: int = 16) -> nn.Module:
    """SqueezeNet 1.1 with a 3x3 stride-1 stem; the ReLU before the pooled logits is dropped.

    Without batch-norm, the stock head's ReLU on the class maps leaves a from-scratch model stuck at
    chance (all class maps negative, zero gradient), so it is replaced by an identity. Still not in
    any preset: with the shared SGD schedule (lr 0.05, ~15 epochs) it stayed near chance (0.2-0.29 on
    5 classes, lr 0.05 and 0.01); it needs its own optimiser settings first.
    """
    model = SqueezeNet("1_1", num_classes=num_classes, dropout=0.2)
    model.features[0] = nn.Conv2d(3, 64, 3, 1, 1)
    model.classifier[2] = nn.Identity()
    nn.init.normal_(model.classifier[1].weight, 0.0, 0.01)
    return model


def vgg11_bn(num_classes: int, width: int = 16) -> nn.Module:
    """VGG-11 with batch-norm, widths w..8w, four pools (works from 16 px), global-average head."""
    w = width
    cfg: list[int | str] = [w, "M", 2 * w, "M", 4 * w, 4 * w, "M", 8 * w, 8 * w, "M", 8 * w, 8 * w]
    model = VGG(make_layers(cfg, batch_norm=True), num_classes=num_classes, dropout=0.2)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(nn.Linear(8 * w, 8 * w), nn.ReLU(inplace=True), nn.Dropout(0.2),
                                     nn.Linear(8 * w, num_classes))
    return model


def densenet121(num_classes: int, width: int = 16) -> nn.Module:
    """DenseNet-121's block layout (6,12,24,16) at growth rate w/2 with a 3x3 stride-2 stem."""
    model = DenseNet(growth_rate=width // 2, block_config=(6, 12, 24, 16), num_init_features=width,
                     bn_size=4, num_classes=num_classes)
    model.features.conv0 = nn.Conv2d(3, width, 3, 2, 1, bias=False)
    model.features.pool0 = nn.Identity()
    return model


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "shufflenet_v2": shufflenet_v2,
    "squeezenet1_1": squeezenet1_1,
    "vgg11_bn": vgg11_bn,
    "densenet121": densenet121,
}


def build(name: str, num_classes: int, width: int = 16) -> nn.Module:
    """A fresh, randomly initialised model of the named architecture."""
    try:
        builder = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
    return builder(num_classes, width)
