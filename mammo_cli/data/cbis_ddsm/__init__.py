"""``mammo prepare``: the course tensors built from the public CBIS-DDSM release.

TCIA distributes CBIS-DDSM as DICOM full mammograms, ROI-mask DICOMs and cropped-lesion
DICOMs, described by four CSV files (mass/calc x train/test, one row per abnormality).
The steps, one module each:

- :mod:`~mammo_cli.data.cbis_ddsm.catalogue`: the CSV rows as lesions (label, split,
  UIDs of the image and ROI series), patients found in both splits resolved;
- :mod:`~mammo_cli.data.cbis_ddsm.dicom`: every DICOM of the download indexed by the UIDs
  in its header, and decoded (MONOCHROME1 inverted);
- :mod:`~mammo_cli.data.cbis_ddsm.patches`: one full image's (baseline, abnormality)
  pairs: mask bounding box, adjacent baseline inside the breast, resize to 150x150;
- :mod:`~mammo_cli.data.cbis_ddsm.build`: one job per full image (cached, parallel), then
  the course .npy files, ``train_groups.npy``, ``manifest.csv`` and ``summary.json``.

Rows that cannot be used (files absent or corrupt, no mask, no room for a baseline) are
skipped and reported with their reason, never a crash; a build that cuts no pair at all
is refused.
"""

from mammo_cli.data.cbis_ddsm.build import prepare
from mammo_cli.data.cbis_ddsm.catalogue import read_case_csvs
from mammo_cli.data.cbis_ddsm.dicom import read_pixels
from mammo_cli.data.cbis_ddsm.patches import PatchOptions, find_baseline, resize

__all__ = ["PatchOptions", "find_baseline", "prepare", "read_case_csvs", "read_pixels", "resize"]
