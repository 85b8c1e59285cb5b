"""ResNet-18 for 32x32 inputs: torchvision's network with the CIFAR stem.

torchvision's stem (7x7 stride-2 conv + max-pool) shrinks a 32x32 image to 8x8 before the
first residual block; the CIFAR variant (He et al., 2016, section 4.2) keeps full resolution
with a 3x3 stride-1 conv and no pooling.
"""

from torch import nn
from torchvision.models import resnet18


def resnet18_cifar(num_classes: int, in_channels: int = 3) -> nn.Module:
    net = resnet18(num_classes=num_classes)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net
