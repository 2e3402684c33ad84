"""Training, export and evaluation (the train extra; stegonode.training, loaded on demand): train-segmenter,
train-deepstego, deepstego-report, export-onnx, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stegonode.cli.common import on_terminal
from stegonode.errors import ConfigError, InputError


def add_commands(sub: Any) -> None:
    train = sub.add_parser("train-segmenter", help="train the Mask R-CNN segmenter (weights, model card, overlays)")
    train.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="weights, MODEL_CARD.md and overlays/ (default: the --work folder; the package's "
                       "models folder here replaces the shipped weights)")
    train.add_argument("--work", type=Path, default=Path("build/segmenter"), metavar="DIR",
                       help="checkpoint (resumed if present), training log, metrics.json")
    train.add_argument("--steps", type=int, help="optimizer steps (default 700)")
    train.add_argument("--batch", type=int, help="images per step (default 4)")
    train.add_argument("--seed", type=int, help="seed of every random choice (default 0)")
    train.add_argument("--learning-rate", type=float, help="peak learning rate (default 0.001)")
    train.add_argument("--warmup", type=int, help="warm-up steps (default 100)")
    train.add_argument("--init", type=Path, metavar="WEIGHTS",
                       help="fine-tune: start from these weights (ignored when resuming a checkpoint)")
    train.add_argument("--phantoms", type=int, default=600, help="training phantoms")
    train.add_argument("--held-out", type=int, default=60, help="held-out phantoms")
    train.add_argument("--real-repeat", type=int, default=20, help="copies of each labelled real training frame")
    train.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    train.set_defaults(run=_train_segmenter)

    train = sub.add_parser("train-deepstego", help="train the deep stego networks (resumable)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--steps", type=int, help="training steps (default: the shipped weights' count)")
    train.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    train.add_argument("--workdir", type=Path, default=Path("stegonode-data/deepstego"),
                       help="checkpoint folder: run again to resume")
    train.add_argument("--out", type=Path, help="where weights, model card and examples go (default: the "
                       "--workdir folder; the package's models folder here replaces the shipped weights)")
    train.set_defaults(run=_train_deepstego)

    report = sub.add_parser("deepstego-report", help="the seed-000 table on the held-out set")
    report.add_argument("--weights", type=Path, help="weights file (default: the shipped ones)")
    report.set_defaults(run=_deepstego_report)

    export = sub.add_parser("export-onnx", help="export the torch weights to the ONNX files the runtime runs")
    export.add_argument("--weights", type=Path, default=None, metavar="DIR",
                        help="folder of maskrcnn_foreground.pt and deepstego.pt (default: the package's models folder)")
    export.add_argument("--out", type=Path, default=Path("build/onnx"), metavar="DIR",
                        help="default: build/onnx (the package's models folder here replaces the shipped ONNX files)")
    export.set_defaults(run=_export_onnx)

    evidence = sub.add_parser("report", help="the three seeds' tables on our images: report.md, report.html, plots")
    evidence.add_argument("--images", nargs="+", type=Path, metavar="PATH",
                          help="DICOM files or folders (default: the round-trip set and ../shared/realdata)")
    evidence.add_argument("--out", type=Path, required=True, metavar="DIR")
    evidence.add_argument("--trials", type=int, default=3, help="noise draws per attack and level (default 3)")
    evidence.add_argument("--phantoms", type=int, default=30,
                          help="held-out phantoms for the segmentation IoU (default 30; 0: real images only)")
    evidence.set_defaults(run=_report)


def _train_segmenter(args: argparse.Namespace) -> int:
    from stegonode.models import require_training_extra

    require_training_extra("train-segmenter")
    import torch

    from stegonode.training.maskrcnn_fit import Schedule
    from stegonode.training.segmenter import train_segmenter

    torch.set_num_threads(args.threads)
    given = {"steps": args.steps, "batch": args.batch, "seed": args.seed,
             "learning_rate": args.learning_rate, "warmup": args.warmup}
    schedule = Schedule(**{key: value for key, value in given.items() if value is not None})
    metrics = train_segmenter(args.out or args.work, args.work, schedule, args.phantoms,
                              args.held_out, args.real_repeat, init=args.init)
    for name in ("phantoms_held_out", "real"):
        m = metrics[name]
        if m["count"]:
            print(f"{name}: {m['count']} images, Mask R-CNN IoU mean {m['maskrcnn_mean_iou']:.4f} "
                  f"min {m['maskrcnn_min_iou']:.4f}; classical mean {m['classical_mean_iou']:.4f}")
    return 0


def _train_deepstego(args: argparse.Namespace) -> int:
    from stegonode import models

    models.require_training_extra("train-deepstego")
    import torch

    from stegonode.training import deepstego as deeptrain
    from stegonode.training.deepstego_fit import TrainConfig

    torch.set_num_threads(args.threads)
    config = TrainConfig(seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    out = args.out or args.workdir
    print(deeptrain.train_deepstego(config, args.workdir, out))
    print(f"wrote {out}: weights and their ONNX export, {deeptrain.CARD}, {deeptrain.EXAMPLES}/")
    return 0


def _deepstego_report(args: argparse.Namespace) -> int:
    from stegonode.models import require_training_extra

    require_training_extra("deepstego-report")
    from stegonode.models import deepnet
    from stegonode.training import deepstego as deeptrain

    print(deeptrain.report(deepnet.load(args.weights), deeptrain.sources()))
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    """The ONNX files of the runtime from the torch weights: reproducible, see tests/test_lean_runtime.py."""
    from stegonode import models

    models.require_training_extra("export-onnx")
    from stegonode.models import deepnet, deepstego, foreground, maskrcnn

    source = args.weights or Path(models.__file__).parent
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in (maskrcnn.WEIGHTS.name, deepnet.WEIGHTS.name):
        if not (source / name).is_file():
            raise InputError(f"{source / name} not found: export-onnx reads {maskrcnn.WEIGHTS.name} and "
                             f"{deepnet.WEIGHTS.name} from the --weights folder")
    maskrcnn.export_onnx(source / maskrcnn.WEIGHTS.name, out / foreground.WEIGHTS.name)
    deepnet.export_onnx(source / deepnet.WEIGHTS.name, out / deepstego.HIDE.name, out / deepstego.REVEAL.name)
    for path in (foreground.WEIGHTS, deepstego.HIDE, deepstego.REVEAL):
        print(f"wrote {out / path.name} ({(out / path.name).stat().st_size / 2**20:.1f} MiB)")
    return 0


def _report(args: argparse.Namespace) -> int:
    import importlib.util

    from stegonode.errors import MissingExtraError
    from stegonode.models import require_training_extra

    require_training_extra("report")
    missing = [name for name in ("matplotlib", "markdown") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError("report", missing, extra="report")
    from stegonode.training import report

    if args.trials < 1 or args.phantoms < 0:
        raise ConfigError("--trials must be >= 1 and --phantoms >= 0")
    images = report.image_files(args.images) if args.images else report.default_images()
    if not images:
        raise InputError("no image files found in --images")
    settings = report.Settings(images=images, out=args.out, trials=args.trials, phantoms=args.phantoms)
    with tqdm(total=report.stages(settings), unit="step", file=sys.stderr, disable=not on_terminal()) as bar:

        def progress(stage: str) -> None:
            bar.set_description(stage[:40])
            bar.update(1)

        md, html = report.build(settings, progress)
        bar.update(bar.total - bar.n)  # fewer cipher images than planned: close the bar    print(f"wrote {md}, {html} and the plots beside them")
    return 0
