"""Network definitions, training and shipped weights (the Mask R-CNN segmenter lands here)."""
