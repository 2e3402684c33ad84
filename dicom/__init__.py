"""DICOM helpers below the pipeline: reading objects, their pixels and display values, colour,
the PS3.15 tables, keyed pseudonyms and date shifting, references, private blocks.

Nothing here is a pipeline stage: the handlers (:mod:`stegonode.handlers`) and the segmenters
(:mod:`stegonode.segmenters`) use these modules; they import nothing above :mod:`stegonode.codecs`.
"""
