"""Networks, training and shipped weights: the Mask R-CNN foreground segmenter (maskrcnn,
phantoms, train, morphology) and seed 000's deep stego networks (deepstego, corpus, training).

Nothing here reads DICOM files: handlers and codecs hand over arrays.
"""
