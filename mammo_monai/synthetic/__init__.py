"""Synthetic CBIS-DDSM-like data for tests and the demo (no real patient data needed)."""

from mammo_monai.synthetic.cbis_tree import SynthOptions, burn_label, make_cbis_tree, make_patient
from mammo_monai.synthetic.dicom_writer import build_dataset, make_uid, save_dataset, write_dicom
from mammo_monai.synthetic.film import (
    FILM_ARTEFACTS,
    add_edge_strip,
    add_film_artefacts,
    add_frame,
    add_garbage_rows,
    add_label,
    add_ruler,
)
from mammo_monai.synthetic.phantom import Lesion, breast_tissue, draw_lesion
from mammo_monai.synthetic.rsna_tree import make_rsna_tree
from mammo_monai.synthetic.site import SITE_PROFILES, SiteProfile

__all__ = [
    "FILM_ARTEFACTS",
    "SITE_PROFILES",
    "Lesion",
    "SiteProfile",
    "SynthOptions",
    "add_edge_strip",
    "add_film_artefacts",
    "add_frame",
    "add_garbage_rows",
    "add_label",
    "add_ruler",
    "breast_tissue",
    "build_dataset",
    "burn_label",
    "draw_lesion",
    "make_cbis_tree",
    "make_patient",
    "make_rsna_tree",
    "make_uid",
    "save_dataset",
    "write_dicom",
]
