"""The node: command line, configuration; the DICOM services build on these."""
