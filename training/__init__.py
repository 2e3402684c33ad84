"""Training and evaluation: what makes and measures the shipped networks and the report.

Reads DICOM files (pydicom-data, ../shared/realdata) and may use every other part of stegonode;
nothing of the runtime (node, handlers, codecs, models, web) imports it: only the command line's
training and report commands load it, on demand. Most of it needs the ``train`` extra (torch).

- segmenter: ``stegonode train-segmenter`` (data through the DICOM path, training, weights,
  model card, overlays); segdata: its examples (phantoms written and read as DICOM, the shipped
  labels); phantoms: the procedural phantoms; maskrcnn_fit: the Mask R-CNN training loop.
- deepstego: ``stegonode train-deepstego`` and ``deepstego-report`` (sources, training, held-out
  report, examples, model card); corpus: its patches; deepstego_fit: the training loop.
- report: ``stegonode report`` (the seeds' tables); evidence: the measurements behind it and the
  benchmarks; images: the image sets they measure on.
"""
