"""What a stego codec changed in an image: changed pixels, MSE and PSNR (benchmarks, the report)."""

from __future__ import annotations

import numpy as np


def distortion(cover: np.ndarray, stego: np.ndarray, peak: int) -> dict[str, float | int]:
    """Changed pixels, MSE and PSNR at ``peak`` and at 65535 (the seed paper's peak); frame by
    frame, so the 64-bit differences take one frame's memory."""
    changed, squares = 0, 0
    for cover_frame, stego_frame in zip(cover.reshape(-1, *cover.shape[-2:]), stego.reshape(-1, *stego.shape[-2:]), strict=True):
        diff = (stego_frame.astype(np.int64) - cover_frame).ravel()
        changed += int(np.count_nonzero(diff))
        squares += int(diff @ diff)
    mse = squares / cover.size

    def psnr(p: int) -> float:
        return float("inf") if mse == 0 else float(10 * np.log10(p * p / mse))

    return {
        "changed_pixels": changed,
        "mse": mse,
        "psnr_db": psnr(peak),
        "psnr_65535_db": psnr(65535),
    }
