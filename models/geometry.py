"""What the deep stego networks were trained on, importable without loading torch."""

TILE = 64  # side of the square patches the networks were trained on, and of the tiles they process
BLANK = 128.0  # what the extraction network returns for a cover with nothing hidden (8-bit units)
# Root-mean-square distance from BLANK below which a recovery is flagged "nothing hidden": clean
# covers come back near BLANK, hidden radiographs and QR codes far from it (measured by
# `stegonode deepstego-report`, recorded in models/DEEPSTEGO.md).
BLANK_LIMIT = 12.0
