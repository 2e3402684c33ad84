"""Pure algorithms: payload codec, sealing, stego codecs. Nothing here knows DICOM networking."""
