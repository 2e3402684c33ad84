"""Network definitions, training and shipped weights: seed 000's deep stego networks (more to come)."""
