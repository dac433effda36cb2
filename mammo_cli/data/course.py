"""Loading and validating the course format.

A course folder holds ``train_tensor.npy``/``train_labels.npy`` and
``public_test_tensor.npy``/``public_test_labels.npy``: tensors of shape (N, 150, 150)
or (N, 150, 150, 1), integer or float, and labels 0..4 where the patch at index 2i is
the healthy-tissue baseline cut next to the abnormality at 2i+1.

Everything is checked here, once, with messages that name the file, what was expected
and what was found. Arrays are memory-mapped and never unpickled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError

import numpy as np
from numpy.lib import format as npy_format

from mammo_cli.errors import MammoError

IMAGE_SIZE = 150
#: what every mammo model takes per sample: one 150x150 grayscale patch
PATCH_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
#: course labels: index -> meaning
RAW_LABELS = (
    "baseline",
    "mass benign",
    "mass malignant",
    "calcification benign",
    "calcification malignant",
)
#: split name -> (tensor file, label file)
SPLIT_FILES = {
    "train": ("train_tensor.npy", "train_labels.npy"),
    "test": ("public_test_tensor.npy", "public_test_labels.npy"),
}
#: patient number per training patch, written by ``mammo prepare``
GROUPS_FILE = "train_groups.npy"
_CHUNK = 512  # patches checked at a time, so validation never copies a whole set


@dataclass(frozen=True)
class CourseSplit:
    """One split of a course folder: memory-mapped patches and their 0..4 labels."""

    images: np.ndarray
    labels: np.ndarray
    tensor_path: Path
    labels_path: Path
    #: patient number of each patch (``train_groups.npy``), when the folder has one
    groups: np.ndarray | None = None


#: what numpy raises for a .npy file it cannot parse: ValueError (bad signature, version
#: or header, pickled data), EOFError (cut short), OverflowError (a dimension too large
#: for C), tokenize.TokenError (a header dict that never closes)
_NPY_ERRORS = (ValueError, EOFError, OverflowError, TokenError)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc.args[0] if isinstance(exc, TokenError) else exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_npy_header(path: Path) -> None:
    """Refuse a file whose .npy header is unusable or announces more data than it holds.

    The header is read with numpy's own reader (:mod:`numpy.lib.format`); this only turns
    its findings into messages that say what is wrong with the file.
    """
    with path.open("rb") as handle:
        start = handle.read(len(npy_format.MAGIC_PREFIX))
        if start.startswith(b"PK\x03\x04"):
            raise MammoError(f"{path}: an .npz archive; expected one array saved by numpy.save")
        if start != npy_format.MAGIC_PREFIX:
            found = "it is empty" if not start else "it lacks numpy's \\x93NUMPY signature"
            raise MammoError(f"{path}: not a .npy file ({found})")
        handle.seek(0)
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):  # a wider header length (3.0: UTF-8 field names)
            shape, _, dtype = npy_format.read_array_header_2_0(handle)
        else:
            raise MammoError(f"{path}: .npy format version {version} (numpy reads 1.0 to 3.0)")
        data_start = handle.tell()
    if dtype.hasobject:
        raise MammoError(
            f"{path}: holds a pickled/object array; mammo only reads plain numeric arrays "
            "(re-save it with a numeric dtype)"
        )
    if dtype.kind == "V":
        raise MammoError(f"{path}: holds records ({dtype}), not a plain numeric array")
    if any(n < 0 for n in shape):
        raise MammoError(f"{path}: malformed .npy header: shape {shape} has a negative dimension")
    expected = math.prod(shape) * dtype.itemsize
    found = path.stat().st_size - data_start
    if found < expected:
        raise MammoError(
            f"{path}: truncated .npy file: its header announces shape {shape} of {dtype} "
            f"({expected:,} bytes of data) but only {found:,} bytes follow"
        )


def load_array(path: Path) -> np.ndarray:
    """Memory-map a ``.npy`` file without ever unpickling; refuse anything unreadable.

    Each refusal is one line naming the file and what is wrong with it: missing, not a
    .npy file, a malformed header, a pickled/object or record array, cut short.
    """
    if not path.is_file():
        raise MammoError(f"{path}: missing file (expected a course-format .npy file)")
    try:
        _check_npy_header(path)
    except OSError as exc:
        raise MammoError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except _NPY_ERRORS as exc:
        raise MammoError(f"{path}: malformed .npy header ({_one_line(exc)})") from exc
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as exc:
        raise MammoError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except _NPY_ERRORS as exc:
        raise MammoError(f"{path}: not a readable .npy file ({_one_line(exc)})") from exc


def _validate_tensor(images: np.ndarray, path: Path) -> None:
    shape = images.shape
    square = (IMAGE_SIZE, IMAGE_SIZE)
    if images.ndim not in (3, 4) or shape[1:3] != square or (images.ndim == 4 and shape[3] != 1):
        raise MammoError(
            f"{path} has shape {shape}; expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}) or "
            f"(N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1)"
        )
    kind = images.dtype.kind
    if kind not in "uif":
        raise MammoError(f"{path} has dtype {images.dtype}; expected integer or float patches")
    if len(images) == 0:
        raise MammoError(f"{path} holds no patches")
    if kind == "f":
        for start in range(0, len(images), _CHUNK):
            chunk = np.asarray(images[start : start + _CHUNK])
            if not np.isfinite(chunk).all():
                bad = start + int(np.argwhere(~np.isfinite(chunk))[0][0])
                raise MammoError(f"{path} contains NaN or inf (first at patch {bad})")
            if chunk.min() < 0.0 or chunk.max() > 1.0:
                raise MammoError(
                    f"{path} holds floats outside [0, 1] (found {chunk.min():g}..{chunk.max():g}); "
                    "save integer patches (scaled by their dtype's max) or floats in [0, 1]"
                )
    elif kind == "i":
        for start in range(0, len(images), _CHUNK):
            if np.asarray(images[start : start + _CHUNK]).min() < 0:
                raise MammoError(f"{path} holds negative pixel values; expected intensities >= 0")


def _validate_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if labels.ndim != 1:
        raise MammoError(f"{path} has shape {labels.shape}; expected labels of shape (N,)")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not np.equal(np.mod(labels, 1), 0).all():
            raise MammoError(f"{path} holds non-integer labels; expected integers 0..4")
    elif labels.dtype.kind not in "ui":
        raise MammoError(f"{path} has dtype {labels.dtype}; expected integer labels 0..4")
    values = np.asarray(labels).astype(np.int64)
    outside = values[(values < 0) | (values > 4)]
    if outside.size:
        raise MammoError(
            f"{path} holds label {int(outside[0])}; expected 0..4 "
            "(0 baseline, 1/2 mass benign/malignant, 3/4 calcification benign/malignant)"
        )
    return values


#: what a user whose data has no baseline patches can do about a broken pairing
PAIRS_HINT = "set data.require_pairs=false for data without baseline patches"


def check_interleaving(labels: np.ndarray, path: Path, hint: str = PAIRS_HINT) -> None:
    """Refuse labels that break the baseline (even index) / abnormality (odd) pairing."""
    if len(labels) % 2:
        raise MammoError(
            f"{path} holds an odd number of labels ({len(labels)}); expected baseline/abnormality "
            f"pairs ({hint})"
        )
    bad_baseline = np.flatnonzero(labels[0::2] != 0)
    bad_abnormal = np.flatnonzero(labels[1::2] == 0)
    if bad_baseline.size or bad_abnormal.size:
        index = 2 * int(bad_baseline[0]) if bad_baseline.size else 2 * int(bad_abnormal[0]) + 1
        raise MammoError(
            f"{path}: label {int(labels[index])} at index {index} breaks the pairing "
            "(even indices must be baselines = 0, odd indices abnormalities = 1..4; "
            f"{hint})"
        )


def _load_groups(path: Path, n_patches: int) -> np.ndarray:
    groups = load_array(path)
    if groups.ndim != 1 or groups.dtype.kind not in "ui" or len(groups) != n_patches:
        raise MammoError(
            f"{path} has shape {groups.shape} and dtype {groups.dtype}; expected one integer "
            f"patient number per training patch ({n_patches}), or set data.patient_groups=false"
        )
    return np.asarray(groups, dtype=np.int64)


def load_split(
    folder: Path, split: str, require_pairs: bool = True, patient_groups: bool = True
) -> CourseSplit:
    """Load and validate one split (``train`` or ``test``) of a course folder.

    With ``patient_groups``, the training split also carries ``train_groups.npy`` when the
    folder has one.
    """
    tensor_name, labels_name = SPLIT_FILES[split]
    tensor_path, labels_path = folder / tensor_name, folder / labels_name
    images = load_array(tensor_path)
    labels_raw = load_array(labels_path)
    _validate_tensor(images, tensor_path)
    labels = _validate_labels(labels_raw, labels_path)
    if len(labels) != len(images):
        raise MammoError(
            f"{labels_path} has {len(labels)} labels but {tensor_path} has {len(images)} "
            "patches; expected one label per patch"
        )
    if require_pairs:
        check_interleaving(labels, labels_path)
    groups_path = folder / GROUPS_FILE
    groups = (
        _load_groups(groups_path, len(labels))
        if split == "train" and patient_groups and groups_path.is_file()
        else None
    )
    return CourseSplit(
        images=images,
        labels=labels,
        tensor_path=tensor_path,
        labels_path=labels_path,
        groups=groups,
    )


def load_tensor(path: Path) -> np.ndarray:
    """Memory-map and validate a course-format patch tensor that comes without labels."""
    images = load_array(path)
    _validate_tensor(images, path)
    return images


def pixel_scale(dtype: np.dtype) -> float:
    """What patches of ``dtype`` are divided by to reach [0, 1]: the integer dtype's
    maximum (65535 for uint16); 1 for floats, which are already in [0, 1] (checked at
    load time)."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


#: byte alignment that lets TensorFlow use an array's memory without copying it
TENSOR_ALIGNMENT = 64


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array that starts on a :data:`TENSOR_ALIGNMENT`-byte
    boundary, so the training pipeline can share it with TensorFlow instead of holding
    a second copy (:func:`mammo_cli.training.fit.host_tensors`)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buffer = np.empty(nbytes + TENSOR_ALIGNMENT, dtype=np.uint8)
    start = -buffer.ctypes.data % TENSOR_ALIGNMENT
    return buffer[start : start + nbytes].view(dtype).reshape(shape)


def aligned_rows(images: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``images[index]`` copied into an :func:`aligned_empty` array."""
    out = aligned_empty((len(index), *images.shape[1:]), images.dtype)
    # the indices are valid; mode "clip" spares the full-size buffer that "raise" uses
    return np.take(images, index, axis=0, out=out, mode="clip")


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    """The patches as (N, 150, 150, 1), in their stored dtype (a view, never a copy)."""
    return images.reshape(len(images), IMAGE_SIZE, IMAGE_SIZE, 1)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Scale patches to float32 in [0, 1] with a channel axis: (N, 150, 150, 1).

    Scaled by :func:`pixel_scale`, chunk by chunk, so a memory-mapped uint16 set is never
    held as float64. (Training and evaluation instead scale each batch in the tf.data
    graph, :func:`mammo_cli.training.fit.make_dataset`.)
    """
    out = np.empty((len(images), IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.float32)
    scale = pixel_scale(images.dtype)
    for start in range(0, len(images), _CHUNK):
        chunk = np.asarray(images[start : start + _CHUNK], dtype=np.float32)
        out[start : start + len(chunk)] = (
            chunk.reshape(len(chunk), IMAGE_SIZE, IMAGE_SIZE, 1) / scale
        )
    return out
