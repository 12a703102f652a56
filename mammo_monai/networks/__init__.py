"""Networks: ResNet and VGG16 patch classifiers (torchvision layout) and Shen et al.'s whole-image classifier."""

from mammo_monai.networks.efficientnet_v2 import (
    EFFICIENTNET_V2,
    EfficientNetV2,
    efficientnet_v2,
    load_efficientnet_v2_weights,
)
from mammo_monai.networks.onednn_guards import GuardedConv2d, guard_convolutions
from mammo_monai.networks.pretrained import (
    IMAGENET_GREY,
    NormalizedConv2d,
    checkpoint_setting,
    input_normalisation,
    normalize_input,
    resolve_weights,
)
from mammo_monai.networks.resnet import ARCHITECTURES, load_torchvision_weights, patch_resnet
from mammo_monai.networks.seresnext import SERESNEXT, screening_seresnext
from mammo_monai.networks.vgg import (
    PATCH_ARCHITECTURES,
    VGG_ARCHITECTURES,
    arch_layers,
    load_vgg_weights,
    patch_network,
    patch_vgg,
)
from mammo_monai.networks.whole_image import TOPS, Bottleneck, VGGBlock, WholeImageClassifier

__all__ = [
    "EFFICIENTNET_V2",
    "EfficientNetV2",
    "efficientnet_v2",
    "load_efficientnet_v2_weights",
    "SERESNEXT",
    "screening_seresnext",
    "ARCHITECTURES",
    "IMAGENET_GREY",
    "Bottleneck",
    "GuardedConv2d",
    "NormalizedConv2d",
    "WholeImageClassifier",
    "checkpoint_setting",
    "guard_convolutions",
    "input_normalisation",
    "load_torchvision_weights",
    "normalize_input",
    "patch_resnet",
    "resolve_weights",
    "PATCH_ARCHITECTURES",
    "TOPS",
    "VGG_ARCHITECTURES",
    "VGGBlock",
    "arch_layers",
    "load_vgg_weights",
    "patch_network",
    "patch_vgg",
]
