"""mammo_monai: mammography classification on MONAI (Shen et al. 2019, re-implemented and extended).

Subpackages: ``io`` (readers), ``transforms`` (MONAI transforms), ``synthetic`` (test data),
``preprocess`` (batch command); the ``mammo-monai`` console script ties them together.
"""

import logging
import warnings

# MONAI announces, at import and for every LoadImage, that NVIDIA's GPU codec is absent; on CPU
# machines that is expected and says nothing about our own reader.
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader: nvImageCodec")

__version__ = "0.1.0"
