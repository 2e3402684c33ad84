"""Deep stego training from the command line: what the networks are trained on (real DICOM images
of pydicom-data, photographs that ship inside scikit-image, procedural textures, QR codes),
training, the held-out report, the examples and the model card (torch: the ``train`` extra).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pydicom
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from stegonode.dicom.pixels import read_pixels
from stegonode.models import deepnet
from stegonode.models import deepstego as deepstego_model
from stegonode.models.deepnet import DeepStego, TorchNetworks
from stegonode.models.geometry import BLANK_LIMIT, TILE
from stegonode.node.deepstego import write_png
from stegonode.training.corpus import Medical, Patches, Sources, patches
from stegonode.training.deepstego_fit import PSNR_CAP_DB, TrainConfig, evaluate, train

# Covers: whole images are held out. Training: CT head, CT abdomen, CT (enhanced, frame 1),
# MR abdomen, CR leg. Held out: CT neck, MR shoulder.
MEDICAL_TRAIN = ("693_UNCR.dcm", "explicit_VR-UN.dcm", "eCT_Supplemental.dcm",
                 "MR-SIEMENS-DICOM-WithOverlays.dcm", "RG3_UNCR.dcm")
MEDICAL_HELDOUT = ("bad_sequence.dcm", "MR2_UNCR.dcm")
# Photographs shipped in scikit-image's wheel (skimage/data). The four standard test images
# are held out, and are the per-image table of the report; motorcycle_right (a near duplicate
# of motorcycle_left) and the synthetic graphics are not used.
NATURAL_TRAIN = ("brick.png", "grass.png", "gravel.png", "cell.png", "clock_motion.png", "coins.png",
                 "moon.png", "page.png", "text.png", "hubble_deep_field.jpg", "ihc.png",
                 "motorcycle_left.png", "retina.jpg", "rocket.jpg")
NATURAL_HELDOUT = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png")
# Secrets: the one chest radiograph of pydicom-data (CR, 1841 columns). Columns from
# CHEST_HELDOUT_FROM on are held out; CHEST_GUARD columns before them are used by neither.
CHEST = "RG1_UNCR.dcm"
CHEST_HELDOUT_FROM = 1329
CHEST_GUARD = 64


def _medical(name: str) -> Medical:
    """First frame in display sense (MONOCHROME1 inverted), with its VOI window in stored units."""
    ds = pydicom.dcmread(str(get_testdata_file(name)))
    pixels = read_pixels(ds)[0].astype(np.float64)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    if "WindowCenter" in ds:
        center = (float(np.atleast_1d(ds.WindowCenter)[0]) - intercept) / slope
        width = float(np.atleast_1d(ds.WindowWidth)[0]) / slope
    else:
        lo, hi = np.percentile(pixels, [1, 99])
        center, width = (lo + hi) / 2, hi - lo
    if ds.PhotometricInterpretation == "MONOCHROME1":
        pixels, center = -pixels, -center
    return Medical(name, pixels, center, width)


def _photo(name: str) -> np.ndarray:
    """A scikit-image photograph as grayscale 8-bit units (ITU-R 601 luma)."""
    spec = importlib.util.find_spec("skimage")
    assert spec is not None and spec.origin is not None, "scikit-image is in the train extra"
    folder = Path(spec.origin).parent / "data"  # not imported: only its files
    return np.asarray(Image.open(folder / name).convert("L"), dtype=np.float64)


def _chest() -> np.ndarray:
    """The chest radiograph in display sense, windowed to its 0.5 to 99.5 percentiles."""
    image = _medical(CHEST).pixels
    lo, hi = np.percentile(image, [0.5, 99.5])
    return np.clip((image - lo) / (hi - lo) * 255, 0, 255)


def sources() -> Sources:
    """Every image the corpus is cut from, split into training and held-out."""
    chest = _chest()
    return Sources(
        medical_train=tuple(_medical(n) for n in MEDICAL_TRAIN),
        medical_heldout=tuple(_medical(n) for n in MEDICAL_HELDOUT),
        natural_train=tuple((n, _photo(n)) for n in NATURAL_TRAIN),
        natural_heldout=tuple((n, _photo(n)) for n in NATURAL_HELDOUT),
        chest_train=chest[:, : CHEST_HELDOUT_FROM - CHEST_GUARD],
        chest_heldout=chest[:, CHEST_HELDOUT_FROM:],
    )


# -- training, the report, the model card ---------------------------------------------------------

HELDOUT_SEED = 2024  # every model is measured on the same held-out pairs
HELDOUT_PATCHES = 512
EXAMPLES = "deepstego-examples"
CARD = "DEEPSTEGO.md"
# Seed 000's own figures (64 x 64, ImageNet): its table and its per-image embedding PSNR.
SEED_TABLE = {"embedding_mse": 77.18, "embedding_psnr": 29.30, "extraction_mse": 44.85, "extraction_psnr": 27.90}
SEED_PER_IMAGE = (("Airplane", 32.15), ("Baboon", 29.76), ("Lena", 29.49), ("Peppers", 29.14))


def heldout(src: Sources) -> Patches:
    """The held-out pairs every model is measured on."""
    return patches(src, heldout=True, n=HELDOUT_PATCHES, seed=HELDOUT_SEED)


def train_deepstego(config: TrainConfig, workdir: Path, out_dir: Path, progress: bool = True) -> str:
    """Train, then write the weights, their ONNX export, the examples and the model card into ``out_dir``.

    The checkpoint lives in ``workdir``: run the same command again to resume. Returns the
    report of the trained model.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    src = sources()
    corpus = patches(src, heldout=False, n=config.train_patches, seed=config.seed)
    checkpoint = workdir / f"deepstego-seed{config.seed}.ckpt"
    model, timing = train(config, corpus, checkpoint, progress)
    timing["threads"] = torch.get_num_threads()
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / deepnet.WEIGHTS.name
    deepnet.save(model, weights, {"train": asdict(config), "timing": timing})
    deepnet.export_onnx(weights, out_dir / deepstego_model.HIDE.name, out_dir / deepstego_model.REVEAL.name)
    examples = write_examples(model, src, out_dir / EXAMPLES)
    text = report(model, src)
    (out_dir / CARD).write_text(model_card(model, config, timing, text, examples, out_dir))
    return text


def report(model: DeepStego, src: Sources) -> str:
    """The seed's table on the held-out set, per-image PSNR, and the nothing-hidden flag."""
    held = heldout(src)
    m = evaluate(model, held)
    lines = [
        f"Held-out set: {m['patches']} pairs of 64 x 64 patches, never used in training "
        f"(covers: {_counts(held.cover_kinds)}; secrets: {_counts(held.secret_kinds)}).",
        "PSNR at the 8-bit peak 255, after rounding the stego image to integers.",
        "",
        "| method | embedding MSE | embedding PSNR (dB) | extraction MSE | extraction PSNR (dB) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| seed 000 (as printed) | {SEED_TABLE['embedding_mse']:.2f} | {SEED_TABLE['embedding_psnr']:.2f} | "
        f"{SEED_TABLE['extraction_mse']:.2f} | {SEED_TABLE['extraction_psnr']:.2f} |",
        f"| seed 000, PSNR recomputed from its MSE | | {deepstego_model.psnr(SEED_TABLE['embedding_mse']):.2f} | "
        f"| {deepstego_model.psnr(SEED_TABLE['extraction_mse']):.2f} |",
        f"| stegonode, mean of per-patch PSNR | {m['cover_mse']:.2f} | {m['cover_psnr_db']:.2f} | "
        f"{m['secret_mse']:.2f} | {m['secret_psnr_db']:.2f} |",
        f"| stegonode, PSNR of the mean MSE | | {m['cover_psnr_of_mean_mse_db']:.2f} | "
        f"| {m['secret_psnr_of_mean_mse_db']:.2f} |",
        "",
        "Per kind (mean of per-patch PSNR, dB):",
        "",
        "| kind | patches | embedding PSNR | extraction PSNR |",
        "| --- | ---: | ---: | ---: |",
    ]
    cover_db, secret_db = np.array(m["per_patch_cover_psnr_db"]), np.array(m["per_patch_secret_psnr_db"])
    for role, kinds in (("cover", held.cover_kinds), ("secret", held.secret_kinds)):
        for kind in dict.fromkeys(kinds):
            chosen = kinds == kind
            lines.append(f"| {role} {kind} | {chosen.sum()} | {cover_db[chosen].mean():.2f} | "
                         f"{secret_db[chosen].mean():.2f} |")
    qr = held.secret_kinds == "qr"
    flipped = np.array(m["per_patch_flipped"])[qr]
    lines += ["", f"Secrets recovered without any error (MSE 0, counted as {PSNR_CAP_DB:.0f} dB in the means): "
              f"{m['secret_exact']} of {m['patches']}. QR secrets: {flipped.sum()} of {qr.sum() * TILE * TILE} "
              f"pixels on the wrong side of mid-grey (bit error rate {flipped.sum() / (qr.sum() * TILE * TILE):.2e}); "
              f"{(flipped == 0).sum()} of {qr.sum()} QR patches without a wrong pixel."]
    lines += ["", "Per image: the seed's four standard images against the four that ship with scikit-image "
              "(held out), each resized to 64 x 64 as in the seed, and whole, tile by tile; secret: the "
              "middle of the held-out chest strip shrunk 4 times, as large as the cover. "
              "Embedding PSNR / extraction PSNR (dB).", "",
              "| seed 000 image | seed 000 embedding PSNR | stegonode image | 64 x 64 | whole image |",
              "| --- | ---: | --- | ---: | ---: |"]
    for (seed_name, seed_db), (name, small, whole) in zip(SEED_PER_IMAGE, per_image(model, src), strict=False):
        lines.append(f"| {seed_name} | {seed_db:.2f} | {name} | {small[0]:.2f} / {small[1]:.2f} | "
                     f"{whole[0]:.2f} / {whole[1]:.2f} |")
    clean, real = np.array(m["blankness_clean"]), np.array(m["blankness_recovered"])
    lines += [
        "",
        f"Nothing hidden: the extraction network run on the {len(clean)} held-out covers themselves. "
        f"RMS distance of the recovery from mid-grey: clean covers median {np.median(clean):.1f}, "
        f"99th percentile {np.percentile(clean, 99):.1f}, max {clean.max():.1f}; real recoveries "
        f"1st percentile {np.percentile(real, 1):.1f}, median {np.median(real):.1f}. Flagged as blank "
        f"(< {BLANK_LIMIT:.0f}): {(clean < BLANK_LIMIT).mean():.1%} of clean covers, "
        f"{(real < BLANK_LIMIT).mean():.1%} of real recoveries. A clean cover's recovery against the "
        f"secret of its pair: {m['clean_secret_psnr_db']:.2f} dB, against {m['secret_psnr_db']:.2f} dB "
        "for the real recovery.",
    ]
    return "\n".join(lines)


def _counts(kinds: np.ndarray) -> str:
    names, counts = np.unique(kinds, return_counts=True)
    return ", ".join(f"{c} {n}" for n, c in zip(names, counts, strict=True))


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    picture = Image.fromarray(np.rint(np.clip(image, 0, 255)).astype(np.uint8))
    return np.asarray(picture.resize((shape[1], shape[0]), Image.Resampling.BOX), dtype=np.float64)


def per_image(model: DeepStego, src: Sources) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    """(name, (embedding, extraction) PSNR at 64 x 64, the same for the whole image) per standard image."""
    rows, networks = [], TorchNetworks(model)
    for name, image in src.natural_heldout:
        figures = []
        for cover in (_resize(image, (TILE, TILE)), image):
            secret = chest_secret(src, cover.shape)
            stego = np.rint(deepstego_model.hide(cover, secret, networks))
            recovered = deepstego_model.reveal(stego, networks)
            figures.append((deepstego_model.psnr(deepstego_model.mse(stego, cover)),
                            deepstego_model.psnr(deepstego_model.mse(recovered, secret))))
        rows.append((name.rsplit(".", 1)[0], figures[0], figures[1]))
    return rows


def chest_secret(src: Sources, shape: tuple[int, int]) -> np.ndarray:
    """A held-out chest picture of ``shape``: the middle of the held-out strip, shrunk 4 times.

    Four times is the coarsest scale of the training crops; the strip is 512 columns wide, so
    wider secrets are stretched.
    """
    chest = src.chest_heldout
    rows, columns = min(4 * shape[0], chest.shape[0]), min(4 * shape[1], chest.shape[1])
    top, left = (chest.shape[0] - rows) // 2, (chest.shape[1] - columns) // 2
    return _resize(chest[top : top + rows, left : left + columns], shape)


def write_examples(model: DeepStego, src: Sources, folder: Path) -> list[Path]:
    """PNG strips: cover | stego | 10x |stego - cover| | secret | recovered, 256 x 256 each."""
    from stegonode.training.corpus import qr_modules, window

    ct = src.medical_heldout[0]
    qr = np.where(np.pad(qr_modules(np.random.Generator(np.random.PCG64(HELDOUT_SEED))), 4), 0, 255)
    pairs = {
        "camera-hides-chest": (_resize(dict(src.natural_heldout)["camera.png"], (256, 256)),
                               chest_secret(src, (256, 256))),
        "ct-neck-hides-qr": (_resize(window(ct.pixels, ct.center, ct.width), (256, 256)),
                             _resize(qr.astype(np.float64), (256, 256))),
    }
    paths, networks = [], TorchNetworks(model)
    for name, (cover, secret) in pairs.items():
        stego = np.rint(deepstego_model.hide(cover, secret, networks))
        recovered = deepstego_model.reveal(stego, networks)
        strip = np.hstack([cover, stego, np.abs(stego - cover) * 10, secret, recovered])
        paths.append(folder / f"{name}.png")
        write_png(strip, paths[-1])
    return paths


def model_card(model: DeepStego, config: TrainConfig, timing: dict, text: str, examples: list[Path],
               out_dir: Path) -> str:
    parameters = sum(p.numel() for p in model.parameters())
    size = (out_dir / deepnet.WEIGHTS.name).stat().st_size
    return f"""# Deep stego networks (seed 000): model card

Written by `stegonode train-deepstego`; `stegonode deepstego-report` recomputes every figure
from the shipped weights.

## What it is

Seed 000's three parts in torch (`models/deepnet.py`): a preparation network (three
convolutional layers) for the cover and another for the secret, their features concatenated,
an embedding network that outputs the stego image, and a separate extraction network that
recovers the secret from the stego image alone. Added (see the docstring of
`models/deepnet.py`): the embedding network picks, per pixel, a phase on a lattice of period
{config.net.period} levels and the stego pixel is the nearest cover level of that phase (a skip
connection whose change is bounded, learned quantization index modulation), the extraction
network reads the stego pixel with its phase; quantization in training (stego clamped to 0..255
and rounded, straight-through gradient); space-to-depth by {config.net.down}; a loss weight of
{config.secret_weight} on the secret; a "nothing hidden" target (a blank image for clean
covers). Grayscale network; colour images go plane by plane. Without the lattice (a free-form
residual added to the cover, everything else equal) the same budget gave 24.1 dB embedding and
15.8 dB extraction PSNR after 600 steps, against 36.3 and 26.7 dB with it (an earlier run of
this comparison, on a held-out mix with more one-pixel-per-module QR codes).

Network: `{asdict(config.net)}`; {parameters:,} parameters; weights `{deepnet.WEIGHTS.name}`
(float32) {size / 2**20:.2f} MiB, exported to ONNX (`{deepstego_model.HIDE.name}`,
`{deepstego_model.REVEAL.name}`), which `deep-hide`, `deep-reveal` and the `deep` codec run
through ONNX Runtime.

## Data (made here, nothing downloaded)

64 x 64 patches, {config.train_patches} training pairs (seed {config.seed}),
{HELDOUT_PATCHES} held-out pairs (seed {HELDOUT_SEED}); see `training/corpus.py` and
`training/deepstego.py`.

- Covers, medical (3/8): pydicom-data CT head `693_UNCR`, CT abdomen `explicit_VR-UN`, CT
  `eCT_Supplemental`, MR abdomen `MR-SIEMENS-DICOM-WithOverlays`, CR leg `RG3_UNCR`; held out:
  CT neck `bad_sequence`, MR shoulder `MR2_UNCR`. Half the crops through the image's VOI window
  (jittered), half at one stored unit per level around the crop's mean (the `deep` codec's
  mapping).
- Covers, photographs (3/8), grayscale, from scikit-image's wheel (`skimage/data`): {", ".join(NATURAL_TRAIN)};
  held out: {", ".join(NATURAL_HELDOUT)}.
- Covers, procedural textures (1/4): 1/f noise, white noise, gradients, stripes, discs, plain
  black, white and grey fields; held out by seed.
- Secrets, chest radiograph (1/2): pydicom-data CR chest `RG1_UNCR` (the only one), display
  sense; columns < {CHEST_HELDOUT_FROM - CHEST_GUARD} for training, >= {CHEST_HELDOUT_FROM} held out.
- Secrets, QR codes (1/2): random alphanumeric text, all four levels, 1 to 4 pixels per
  module (2, the `deep` codec's, twice as often as the others), random placement; held out by
  seed.

## Training

`{asdict(config)}`

Adam, warm-up then cosine decay; one batch = {config.batch} pairs plus
{round(config.batch * config.blank_fraction)} clean covers. Time: {timing['seconds_total'] / 60:.1f} min wall clock for
{config.steps} steps on {timing['threads']} thread(s) (`torch.set_num_threads`) of a 2-core
machine shared with other work (time spent waiting for the CPU included).

Reproducibility: every random draw (patches, pairing, rotations, initial weights) comes from
the seed, and the checkpoint keeps the optimizer and both random states; on the CPU with the
same thread count, two runs of one seed give identical weights, and so does a run paused and
resumed (`tests/test_deepstego.py::test_training_is_seeded_and_resumes_to_the_same_weights`).

## Held-out measurements

{text}

## Examples

Each strip: cover | stego | 10 x |stego - cover| | secret | recovered (held-out images).

{chr(10).join(f"![{p.stem}]({EXAMPLES}/{p.name})" for p in examples)}
"""
