"""An INT8 Mask R-CNN for evaluation: the shipped ONNX network's convolutions quantized (ONNX Runtime).

Not shipped: on the round-trip set it let embedding change anatomy pixels the float network
keeps (RG1_UNCI, RG1_J2KI: 33 each; docs/performance.md), for about 17 % less network CPU on
512 x 512 CT. Evaluate a file it writes with ``MaskRCNNSegmenter(weights=PATH)``.

Static quantization, QDQ format, convolutions only (weights per channel, signed 8 bits;
activations unsigned 8 bits), calibrated (min/max) on the training data only: the training
phantoms and the training set's labelled real frames, as the network sees them. The evaluation
sets (held-out phantoms, evaluation real frames, /work/shared/realdata) stay unseen, so the
segmenter tests and benchmarks/realdata.py judge it as they judge the float network.

The file keeps the float network's metadata (input size, the torch weights' SHA-256) and adds
``precision = int8``. Run (the ``train`` extra: onnx)::

    .venv/bin/python -m stegonode.training.quantize [--phantoms 48] [--out build/maskrcnn_foreground_int8.onnx]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stegonode.models import foreground

# Convolutions left in float: the region proposal network's. Quantized, its proposals shift and
# MR2_UNCR's mask loses 4 points of IoU (0.872, under the segmenter test's 0.90); with it in float
# every evaluation frame is within 0.007 of the float network's IoU (docs/performance.md).
KEEP_FLOAT = ("/model/rpn/",)


def calibration_images(phantom_count: int) -> list[np.ndarray]:
    """Training frames (phantoms ``0 .. phantom_count - 1`` and the training real frames) at the
    network's input size, as :func:`foreground.foreground_probability` gives them to it."""
    from stegonode.training.segmenter import phantoms, real_examples

    size = foreground.load(foreground.WEIGHTS).size
    examples = phantoms(range(phantom_count)) + real_examples(evaluation=False)
    return [foreground.to_network(example.image, size) for example in examples]


def quantize(source: Path, out: Path, images: list[np.ndarray], keep_float: tuple[str, ...] = KEEP_FLOAT) -> None:
    """Quantize the convolutions of ``source`` into ``out``, except those whose node name starts
    with one of ``keep_float``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.images: Iterator[np.ndarray] = iter(images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self.images, None)
            return None if image is None else {"image": image[None, None].astype(np.float32)}

    import onnx as onnx_module

    excluded = [node.name for node in onnx_module.load(str(source)).graph.node
                if node.op_type == "Conv" and node.name.startswith(keep_float)]
    prepared = out.with_suffix(".prepared.onnx")
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], per_channel=True, nodes_to_exclude=excluded,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
    model = onnx.load(str(out))
    meta = {entry.key: entry.value for entry in onnx.load(str(source)).metadata_props}
    meta["precision"] = "int8"
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phantoms", type=int, default=48, help="training phantoms to calibrate on")
    parser.add_argument("--out", type=Path, default=Path("build") / "maskrcnn_foreground_int8.onnx")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    quantize(foreground.WEIGHTS, args.out, calibration_images(args.phantoms))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
