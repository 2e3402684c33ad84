"""The Mask R-CNN foreground segmenter: network (maskrcnn), phantoms, training, shipped weights.

Nothing here reads DICOM files: handlers window the pixels and hand over float images.
"""
