"""Segmenters: what in each frame is foreground (anatomy, anything that must stay intact).

Like the stego codecs (:mod:`stegonode.codecs.registry`), each segmenter registers itself in its
own module (``@SEGMENTERS.register``) and :mod:`.registry` names the built-in modules once:

* :mod:`.classical`: threshold per modality (Hounsfield units on CT), hole filling, large components;
* :mod:`.maskrcnn`: the Mask R-CNN shipped in :mod:`stegonode.models`, run by ONNX Runtime, united
  with the classical mask on CT, the classical one on frames where it finds nothing;
* :mod:`.padding`: only what is provably not image (padding, collimator black at the border).

:mod:`.base` holds the interface (:class:`~.base.Segmenter`) and :class:`~.base.Segmentation`.
Which segmenter decides per modality is the ``segment`` handler's policy
(:class:`stegonode.handlers.segment.SegmenterPolicy`); the safety guard under every segmenter is
:mod:`stegonode.handlers.guard`.
"""
