"""Dataset adapters: each turns one dataset's own layout into the manifest's two tables."""

from mammo_monai.data.adapters.base import AdapterResult, DatasetTableError, walk_files
from mammo_monai.data.adapters.bcdr import load_bcdr
from mammo_monai.data.adapters.bcs_dbt import load_bcs_dbt
from mammo_monai.data.adapters.cbis_ddsm import load_cbis_ddsm
from mammo_monai.data.adapters.cdd_cesm import load_cdd_cesm
from mammo_monai.data.adapters.cmmd import load_cmmd
from mammo_monai.data.adapters.embed import load_embed
from mammo_monai.data.adapters.folder import load_folder
from mammo_monai.data.adapters.inbreast import load_inbreast
from mammo_monai.data.adapters.kau_bcmd import load_kau_bcmd
from mammo_monai.data.adapters.mias import load_mias
from mammo_monai.data.adapters.omi_db import load_omi_db
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
    "bcs-dbt": load_bcs_dbt,
    "kau-bcmd": load_kau_bcmd,
    "bcdr": load_bcdr,
    "omi-db": load_omi_db,
}

__all__ = [
    "ADAPTERS",
    "AdapterResult",
    "DatasetTableError",
    "load_bcdr",
    "load_bcs_dbt",
    "load_cbis_ddsm",
    "load_cdd_cesm",
    "load_cmmd",
    "load_embed",
    "load_folder",
    "load_inbreast",
    "load_kau_bcmd",
    "load_mias",
    "load_omi_db",
    "load_rsna",
    "load_vindr",
    "walk_files",
]
