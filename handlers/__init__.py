"""Pipeline stages: collect, seal, segment, embed, deidentify, and the reveal that inverts them."""
