"""Networks: ResNet patch classifiers (torchvision layout) and Shen et al.'s whole-image classifier."""

from mammo_monai.networks.onednn_guards import GuardedConv2d, guard_convolutions
from mammo_monai.networks.resnet import ARCHITECTURES, load_torchvision_weights, patch_resnet
from mammo_monai.networks.whole_image import Bottleneck, WholeImageClassifier

__all__ = ["ARCHITECTURES", "Bottleneck", "GuardedConv2d", "WholeImageClassifier", "guard_convolutions", "load_torchvision_weights",
           "patch_resnet"]
