"""The built-in demo data set: synthetic mammogram patches in the course format.

When no data folder is configured, ``mammo`` trains on this set. It is generated
deterministically from a seed, so every installation gets byte-identical files, and it
has exactly the layout of the real course data (docs/data.md): a ``uint16`` tensor of
shape ``(N, 150, 150)`` and ``int64`` labels of shape ``(N,)`` with values
0 baseline, 1 mass benign, 2 mass malignant, 3 calcification benign,
4 calcification malignant, interleaved so that patch ``2i`` is the healthy baseline cut
next to the abnormality at ``2i + 1``.

How one pair is made
--------------------
1. **Tissue.** Breast tissue is modelled as power-law ("1/f^beta") noise, the standard
   statistical model of mammographic parenchyma: white Gaussian noise is filtered in the
   Fourier domain so that its power spectrum falls off as ``1/f^beta`` with ``beta``
   drawn around 3 (2.6..3.4). One field twice as wide as a patch is made per pair; the
   abnormality patch is cut from one half and the baseline patch from the other, so the
   two patches show the same, adjacent tissue. Each pair also gets its own breast
   density (mean brightness 0.25..0.6 of full scale) and texture strength (standard
   deviation 0.08..0.18: how much dense and fatty tissue alternate), from fatty/dark to
   dense/bright.
2. **Lesion** (abnormality patch only), placed near the centre with a random offset:

   - *Benign mass*: a round or oval blob (axis ratio up to 1:1.6) with a smooth, sharp
     (circumscribed) margin (edge width 2..5 % of the radius) and a domed brightness
     profile.
   - *Malignant mass*: a blob whose outline is irregular (random low-order harmonics of
     the radius), with an ill-defined, blurred margin (15..30 % of the radius) and, in
     19 cases out of 20, 10..18 thin spicules, brighter than the mass itself, that start
     at the margin and fade out over 0.8..2 radii.
   - *Benign calcifications*: a loose cluster of a few (3..8) coarse, round, bright
     specks.
   - *Malignant calcifications*: a tighter, dense cluster of many (40..80) fine specks
     of varied size, elongation, orientation and brightness (pleomorphic).

   Mass radius is 12..30 % of the patch side. Contrast is proportional to the
   texture strength of the pair; most lesions are clearly visible, but about one in
   eight is faint (15..45 % of the usual contrast, often hidden in the tissue), so the
   tasks are learnable but not trivial.
3. **Acquisition.** A little fine-grained (quantum-like) noise is added to both patches,
   intensities are clipped to [0, 1] and stored as ``uint16`` (0..65535).

Class mix follows the real study: of the abnormalities about 46 % are masses and 54 %
calcifications, about 59 % benign and 41 % malignant (type and pathology drawn
independently per pair).

Training and public test sets come from different random streams derived from one seed
(``numpy.random.SeedSequence.spawn``), so they never share a pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mammo_cli.files import write_with

DEMO_TRAIN_PAIRS = 500  # abnormality/baseline pairs in the training set
DEMO_TEST_PAIRS = 150
DEMO_SEED = 2024

P_MASS = 0.46  # share of abnormalities that are masses (the rest are calcifications)
P_MALIGNANT = 0.41  # share of abnormalities that are malignant

_CHUNK = 32  # pairs whose tissue fields are made in one FFT batch (fixed: determinism)


def demo_seeds(seed: int = DEMO_SEED) -> tuple[int, int]:
    """Derive the independent (train, test) generator seeds from one demo seed."""
    train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
    return (
        int(train_ss.generate_state(1, dtype=np.uint64)[0]),
        int(test_ss.generate_state(1, dtype=np.uint64)[0]),
    )


def _tissue_fields(rng: np.random.Generator, betas: np.ndarray, h: int, w: int) -> np.ndarray:
    """Zero-mean, unit-variance power-law noise fields, shape (len(betas), h, w)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    f = np.maximum(f, 1.0 / max(h, w))  # tame the very lowest frequencies
    white = rng.standard_normal((len(betas), h, w)).astype(np.float32)
    spectrum = np.fft.rfft2(white)
    spectrum *= (f[None] ** (-betas[:, None, None] / 2.0)).astype(np.float32)
    spectrum[:, 0, 0] = 0.0
    fields = np.fft.irfft2(spectrum, s=(h, w)).astype(np.float32)
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-8
    return fields


def _mass(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, malignant: bool, contrast: float
) -> np.ndarray:
    """Brightness added by one mass (benign: smooth oval; malignant: irregular, spiculated)."""
    s = yy.shape[0]
    cy, cx = (float(v) for v in rng.uniform(0.35, 0.65, size=2) * s)
    r0 = float(rng.uniform(0.12, 0.3)) * s
    dy, dx = yy - cy, xx - cx
    d = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    if malignant:
        radius = np.full_like(d, r0)
        for k in range(2, 8):
            amp, phase = float(rng.uniform(0.04, 0.18)), float(rng.uniform(0, 2 * np.pi))
            radius += r0 * amp * np.cos(k * theta + phase)
        edge = float(rng.uniform(0.15, 0.3)) * r0  # ill-defined margin
        dd = d
    else:
        ratio = float(rng.uniform(1.0, 1.6))
        phi = float(rng.uniform(0, np.pi))
        u = dx * np.cos(phi) + dy * np.sin(phi)
        v = -dx * np.sin(phi) + dy * np.cos(phi)
        dd = np.hypot(u / np.sqrt(ratio), v * np.sqrt(ratio))
        radius = np.full_like(d, r0)
        edge = float(rng.uniform(0.02, 0.05)) * r0  # circumscribed margin
    inside = 1.0 / (1.0 + np.exp(-(radius - dd) / edge))
    dome = np.sqrt(np.clip(1.0 - (dd / (radius + 2 * edge)) ** 2, 0.0, 1.0))
    out = contrast * inside * (0.6 + 0.4 * dome)
    if malignant and rng.random() < 0.95:
        n_sp = int(rng.integers(10, 19))
        angles = rng.uniform(0, 2 * np.pi, size=n_sp).astype(np.float32)[:, None, None]
        lengths = (r0 * rng.uniform(0.8, 2.0, size=n_sp)).astype(np.float32)[:, None, None]
        widths = rng.uniform(1.2, 2.2, size=n_sp).astype(np.float32)[:, None, None]
        along = d[None] * np.cos(theta[None] - angles)
        perp = d[None] * np.sin(theta[None] - angles)
        profile = np.exp(-0.5 * (perp / widths) ** 2)
        beyond = along - 0.8 * r0  # spicules start at the margin and fade outwards
        fade = np.clip(1.0 - beyond / lengths, 0.0, 1.0) * (beyond > 0)
        spicules = contrast * float(rng.uniform(1.1, 1.5)) * (profile * fade).max(axis=0)
        out = np.maximum(out, spicules)  # from the margin outwards, not over the body
    return out


def _calcifications(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, malignant: bool, contrast: float
) -> np.ndarray:
    """Brightness added by one cluster of calcification specks."""
    s = yy.shape[0]
    cy, cx = rng.uniform(0.35, 0.65, size=2) * s
    if malignant:  # many, fine, pleomorphic, tightly clustered
        n = int(rng.integers(40, 81))
        spread = rng.uniform(0.08, 0.13) * s
        sig_major = rng.uniform(0.9, 1.6, size=n)
        elong = rng.uniform(1.5, 3.0, size=n)
        amps = contrast * rng.uniform(0.8, 1.4, size=n)
    else:  # few, coarse, round, loosely clustered
        n = int(rng.integers(3, 9))
        spread = rng.uniform(0.08, 0.18) * s
        sig_major = rng.uniform(2.5, 4.5, size=n)
        elong = rng.uniform(1.0, 1.3, size=n)
        amps = contrast * rng.uniform(0.75, 1.1, size=n)
    py = np.clip(cy + spread * rng.standard_normal(n), 2.0, s - 3.0)
    px = np.clip(cx + spread * rng.standard_normal(n), 2.0, s - 3.0)
    phi = rng.uniform(0, np.pi, size=n)
    sig_minor = sig_major / elong
    out = np.zeros((s, s), dtype=np.float32)
    for k in range(n):  # each speck is drawn in a small window around it
        half = int(np.ceil(4.0 * sig_major[k]))
        y0, y1 = max(0, int(py[k]) - half), min(s, int(py[k]) + half + 2)
        x0, x1 = max(0, int(px[k]) - half), min(s, int(px[k]) + half + 2)
        dy, dx = yy[y0:y1, x0:x1] - py[k], xx[y0:y1, x0:x1] - px[k]
        c, sn = np.cos(phi[k]), np.sin(phi[k])
        u = (dx * c + dy * sn) / sig_major[k]
        v = (-dx * sn + dy * c) / sig_minor[k]
        speck = (amps[k] * np.exp(-0.5 * (u * u + v * v))).astype(np.float32)
        np.maximum(out[y0:y1, x0:x1], speck, out=out[y0:y1, x0:x1])
    return out


def _visibility(rng: np.random.Generator) -> float:
    """How conspicuous a lesion is: most are clear, a share is faint."""
    if rng.random() < 0.12:
        return float(rng.uniform(0.15, 0.45))
    return float(rng.uniform(0.7, 1.4))


def _generate(n_pairs: int, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_pairs`` pairs from ``rng``; see :func:`generate_pairs`."""
    tensor = np.empty((2 * n_pairs, size, size), dtype=np.uint16)
    labels = np.zeros(2 * n_pairs, dtype=np.int64)
    is_mass = rng.random(n_pairs) < P_MASS
    malignant = rng.random(n_pairs) < P_MALIGNANT
    labels[1::2] = np.where(is_mass, 1, 3) + malignant
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for start in range(0, n_pairs, _CHUNK):
        stop = min(start + _CHUNK, n_pairs)
        m = stop - start
        betas = rng.uniform(2.6, 3.4, size=m)
        fields = _tissue_fields(rng, betas, size, 2 * size)
        density = rng.uniform(0.25, 0.6, size=m)
        texture = rng.uniform(0.08, 0.18, size=m)
        quantum = rng.uniform(0.004, 0.012, size=m)
        abn_left = rng.random(m) < 0.5
        for j in range(m):
            i = start + j
            field = density[j] + texture[j] * fields[j]
            left, right = field[:, :size], field[:, size:]
            abn, base = (left, right) if abn_left[j] else (right, left)
            vis = _visibility(rng)
            if is_mass[i]:
                lesion = _mass(rng, yy, xx, bool(malignant[i]), float(texture[j]) * 2.0 * vis)
            else:
                lesion = _calcifications(
                    rng, yy, xx, bool(malignant[i]), float(texture[j]) * 4.0 * vis
                )
            noise = quantum[j] * rng.standard_normal((2, size, size)).astype(np.float32)
            pair = np.stack([base, abn + lesion]) + noise
            tensor[2 * i : 2 * i + 2] = np.round(np.clip(pair, 0.0, 1.0) * 65535.0)
    return tensor, labels


def generate_pairs(n_pairs: int, seed: int, image_size: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved course-format (tensor uint16 (2n,S,S), labels int64 (2n,)).

    Patch ``2i`` is the baseline (label 0) cut from the same tissue field as the
    abnormality at ``2i + 1`` (label 1..4). The same ``seed`` gives identical arrays.
    """
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16, got {image_size}")
    return _generate(n_pairs, np.random.default_rng(seed), image_size)


def write_demo_set(
    out_dir: str | Path,
    n_train_pairs: int = DEMO_TRAIN_PAIRS,
    n_test_pairs: int = DEMO_TEST_PAIRS,
    seed: int = DEMO_SEED,
) -> Path:
    """Write the four course-format files into ``out_dir``; return ``out_dir``.

    Files: ``train_tensor.npy``, ``train_labels.npy`` (``n_train_pairs`` pairs) and
    ``public_test_tensor.npy``, ``public_test_labels.npy`` (``n_test_pairs`` pairs), each
    written whole (temporary file, then rename). Train and test use independent random
    streams derived from ``seed`` (see :func:`demo_seeds`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_seed, test_seed = demo_seeds(seed)
    for prefix, n, s in (
        ("train", n_train_pairs, train_seed),
        ("public_test", n_test_pairs, test_seed),
    ):
        tensor, labels = generate_pairs(n, s)
        write_with(out / f"{prefix}_tensor.npy", lambda tmp, a=tensor: np.save(tmp, a))
        write_with(out / f"{prefix}_labels.npy", lambda tmp, a=labels: np.save(tmp, a))
    return out
