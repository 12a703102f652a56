"""Dataset adapters: each turns one dataset's own layout into the manifest's two tables."""

from mammo_monai.data.adapters.base import AdapterResult, DatasetTableError, walk_files
from mammo_monai.data.adapters.cbis_ddsm import load_cbis_ddsm
from mammo_monai.data.adapters.cdd_cesm import load_cdd_cesm
from mammo_monai.data.adapters.cmmd import load_cmmd
from mammo_monai.data.adapters.embed import load_embed
from mammo_monai.data.adapters.folder import load_folder
from mammo_monai.data.adapters.inbreast import load_inbreast
from mammo_monai.data.adapters.mias import load_mias
from mammo_monai.data.adapters.rsna import load_rsna
from mammo_monai.data.adapters.vindr import load_vindr

ADAPTERS = {
    "cbis-ddsm": load_cbis_ddsm,
    "mias": load_mias,
    "inbreast": load_inbreast,
    "rsna": load_rsna,
    "folder": load_folder,
    "vindr": load_vindr,
    "cmmd": load_cmmd,
    "cdd-cesm": load_cdd_cesm,
    "embed": load_embed,
}

__all__ = [
    "ADAPTERS",
    "AdapterResult",
    "DatasetTableError",
    "load_cbis_ddsm",
    "load_cdd_cesm",
    "load_cmmd",
    "load_embed",
    "load_folder",
    "load_inbreast",
    "load_mias",
    "load_rsna",
    "load_vindr",
    "walk_files",
]
