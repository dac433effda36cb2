"""What can be predicted: course tensors, images and DICOM files, decoded a batch at a time.

An input is one of

* a course-format tensor ``.npy`` without labels (e.g. ``private_test_tensor.npy``),
  validated like the course tensors; for a siamese run its patches are read as the
  course's interleaved pairs (baseline at 2i, abnormality at 2i+1), one prediction a pair;
* a PNG/TIFF/DICOM file, or a folder of them (not recursive): each file one patch,
  grayscale, 8/16-bit scaled by its dtype's maximum, resized to 150x150 (nearest) when
  needed; with ``roi=[x0,y0,x1,y1]`` the box is cut from each image first (e.g. a full
  mammogram) before the resize.

Files are decoded one batch at a time (bounded memory). A file that cannot be decoded
becomes an error row of its own; the other files are still predicted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mammo_cli.data.cbis_ddsm import read_pixels, resize
from mammo_cli.data.course import IMAGE_SIZE, load_tensor, to_model_input
from mammo_cli.data.tasks import ModelInput
from mammo_cli.errors import MammoError

#: file suffixes read as images (Pillow) and as DICOM (pydicom)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")

#: one decoded sample: a (150, 150, 1) patch, or an (abnormality, baseline) pair of them
Sample = np.ndarray | tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Item:
    """One sample to predict: its id (index or file name) and how to decode it."""

    id: str
    read: Callable[[], Sample]


def _to_patch(pixels: np.ndarray, roi: Sequence[int] | None, name: str) -> np.ndarray:
    """Cut ``roi`` (x0, y0, x1, y1), resize to 150x150 (nearest), scale to [0, 1]."""
    if roi is not None:
        x0, y0, x1, y1 = roi
        if not (0 <= x0 < x1 <= pixels.shape[1] and 0 <= y0 < y1 <= pixels.shape[0]):
            raise ValueError(
                f"roi={list(roi)} is outside {name} ({pixels.shape[1]}x{pixels.shape[0]} pixels)"
            )
        pixels = pixels[y0:y1, x0:x1]
    if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE):
        pixels = resize(pixels, IMAGE_SIZE, "nearest")
    return to_model_input(pixels[np.newaxis])[0]


def _grayscale_pixels(path: Path) -> np.ndarray:
    """Decode a PNG/TIFF with Pillow as a 2-D uint8/uint16 (or [0, 1] float) array.

    An image over Pillow's ``MAX_IMAGE_PIXELS`` is refused before it is decoded (Pillow
    only warns below twice that size; a full mammogram is far below it).
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(path)
    with image:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            pixels = np.asarray(image)
            if pixels.min() < 0 or pixels.max() > 65535:
                raise ValueError(f"{path.name}: 32-bit pixel values outside 0..65535")
            return pixels.astype(np.uint16)
        if image.mode == "F":
            pixels = np.asarray(image, dtype=np.float32)
            if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
                raise ValueError(f"{path.name}: float pixels outside [0, 1]")
            return pixels
        return np.asarray(image.convert("L"), dtype=np.uint8)


def read_file(path: Path, roi: Sequence[int] | None = None) -> np.ndarray:
    """One image or DICOM file as a (150, 150, 1) float32 patch in [0, 1].

    Raises ValueError with the reason when the file cannot be used.
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        pixels, _ = read_pixels(str(path))  # uint16: scaled by 65535 like course tensors
    else:
        from PIL import Image

        # Pillow's errors: unreadable or truncated (OSError), a broken header (SyntaxError),
        # too many pixels (DecompressionBombError, or the warning turned into an error)
        bomb = (Image.DecompressionBombError, Image.DecompressionBombWarning)
        try:
            pixels = _grayscale_pixels(path)
        except (OSError, SyntaxError, *bomb) as exc:
            raise ValueError(f"cannot decode {path.name}: {exc}") from exc
    return _to_patch(pixels, roi, path.name)


def _file_items(paths: Sequence[Path], root: Path, roi: Sequence[int] | None) -> list[Item]:
    def reader(path: Path) -> Callable[[], Sample]:
        return lambda: read_file(path, roi)

    return [Item(str(path.relative_to(root)), reader(path)) for path in paths]


def _tensor_items(path: Path, pairs: bool) -> list[Item]:
    images = load_tensor(path)

    def patch(index: int) -> np.ndarray:
        return to_model_input(images[index : index + 1])[0]

    if not pairs:
        return [Item(str(i), lambda i=i: patch(i)) for i in range(len(images))]
    if len(images) % 2:
        raise MammoError(
            f"{path} holds {len(images)} patches; a siamese run reads interleaved pairs "
            "(baseline at even index 2i, abnormality at 2i+1), so an even number is expected"
        )
    return [
        Item(str(i), lambda i=i: (patch(2 * i + 1), patch(2 * i))) for i in range(len(images) // 2)
    ]


def collect_items(source: Path, pairs: bool, roi: Sequence[int] | None = None) -> list[Item]:
    """The samples of ``source`` (an existing path): a course tensor, an image/DICOM
    file, or a folder of them; ``roi`` as validated by the config check."""
    if source.is_file() and source.suffix.lower() == ".npy":
        if roi is not None:
            raise MammoError("roi= cuts images and DICOM files; a course tensor holds patches")
        return _tensor_items(source, pairs)
    known = IMAGE_SUFFIXES + DICOM_SUFFIXES
    if pairs:
        raise MammoError(
            f"this run is a siamese model on (abnormality, baseline) pairs; give input= a "
            f"course tensor .npy with interleaved pairs (baseline 2i, abnormality 2i+1), "
            f"not {'a folder' if source.is_dir() else source.suffix or 'a file'} of single images"
        )
    if source.is_file():
        if source.suffix.lower() not in known:
            raise MammoError(
                f"input={source}: expected a .npy tensor or an image ({', '.join(known)})"
            )
        return _file_items([source], source.parent, roi)
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in known)
    if not files:
        raise MammoError(f"input={source} holds no .npy, image or DICOM file ({', '.join(known)})")
    return _file_items(files, source, roi)


def stack(samples: list[Sample]) -> ModelInput:
    """A batch in the model's input layout: patches, or the (abnormality, baseline) tuple."""
    if isinstance(samples[0], tuple):
        return tuple(np.stack(part) for part in zip(*samples, strict=True))  # type: ignore[return-value]
    return np.stack(samples)  # type: ignore[arg-type]


def progress_bar(enabled: bool) -> Progress:
    """The rich progress bar of predict/explain (transient; hidden when ``enabled`` is off)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    )


@dataclass(frozen=True)
class Batch:
    """Decoded items of one batch, and the items that could not be decoded."""

    items: list[Item]
    samples: list[Sample]
    #: (item id, reason) of each item that could not be decoded
    errors: list[tuple[str, str]]


def iter_batches(
    items: Sequence[Item], batch_size: int, progress: bool = True, label: str = "predicting"
) -> Iterator[Batch]:
    """Decode ``items`` a batch at a time; an undecodable item becomes an error entry."""
    with progress_bar(progress) as bar:
        task = bar.add_task(label, total=len(items))
        for start in range(0, len(items), batch_size):
            batch = Batch([], [], [])
            for item in items[start : start + batch_size]:
                try:
                    batch.samples.append(item.read())
                    batch.items.append(item)
                except ValueError as exc:
                    batch.errors.append((item.id, str(exc)))
            yield batch
            bar.advance(task, len(batch.items) + len(batch.errors))
