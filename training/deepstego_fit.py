"""Training and evaluation of the deep stego networks: seeded, resumable, on the CPU.

Loss: MSE(cover, rounded stego) + ``secret_weight`` x MSE(secret, extraction of the rounded
stego), in [0, 1] units; a ``blank_fraction`` of each batch also shows the extraction network a
clean cover, for which the target is the blank image. Adam with a short warm-up and cosine decay.
Every random draw comes from ``seed`` (patch order, pairing, rotations, initial weights), and a
checkpoint holds the model, the optimizer and both random states, so an interrupted run resumed
from its checkpoint ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from stegonode.models.deepnet import DeepStego, from_tensor, quantize, to_tensor
from stegonode.models.deepstego import BLANK, NetConfig, blankness, mse, psnr
from stegonode.training.corpus import Patches

PSNR_CAP_DB = 100.0  # per-patch PSNR of an error-free patch (MSE 0), when averaging


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (saved with them)."""

    seed: int = 0
    steps: int = 4000
    batch: int = 16
    learning_rate: float = 2e-3
    warmup: int = 100
    secret_weight: float = 1.0
    blank_fraction: float = 0.125
    train_patches: int = 16000
    net: NetConfig = field(default_factory=NetConfig)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        values["net"] = NetConfig(**values.get("net", {}))
        return cls(**values)


def _learning_rate(config: TrainConfig, step: int) -> float:
    if step < config.warmup:
        return config.learning_rate * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _batch(patches: Patches, config: TrainConfig, rng: np.random.Generator
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Covers, secrets (independently drawn, so pairs never repeat) and clean covers."""
    n = len(patches.covers)
    covers = to_tensor(patches.covers[rng.integers(0, n, config.batch)])
    secrets = to_tensor(patches.secrets[rng.integers(0, n, config.batch)])
    clean = to_tensor(patches.covers[rng.integers(0, n, round(config.batch * config.blank_fraction))])
    k_cover, k_secret = (int(k) for k in rng.integers(0, 4, 2))
    return torch.rot90(covers, k_cover, (2, 3)), torch.rot90(secrets, k_secret, (2, 3)), clean


def loss(model: DeepStego, covers: torch.Tensor, secrets: torch.Tensor, clean: torch.Tensor,
         secret_weight: float) -> tuple[torch.Tensor, float, float]:
    """Training loss, and the cover and secret MSE of the batch (in [0, 1] units)."""
    stego = quantize(model.hide(covers, secrets))
    recovered = model.reveal(torch.cat([stego, quantize(clean)]))
    targets = torch.cat([secrets, torch.full_like(clean, BLANK / 255 - 0.5)])
    cover_loss = F.mse_loss(stego, covers)
    secret_loss = F.mse_loss(recovered, targets)
    return cover_loss + secret_weight * secret_loss, cover_loss.detach().item(), secret_loss.detach().item()


def train(config: TrainConfig, patches: Patches, checkpoint: Path, progress: bool = True,
          stop_at: int | None = None) -> tuple[DeepStego, dict]:
    """Train from scratch, or resume from ``checkpoint`` when it holds this config's run.

    Writes ``checkpoint`` every 100 steps and when it stops: after ``config.steps`` steps, or
    after ``stop_at`` (a pause: a later call goes on from there). Returns the model and the
    run's timings (seconds of training in this call and over all calls).
    """
    torch.manual_seed(config.seed)
    model = DeepStego(config.net)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    rng = np.random.Generator(np.random.PCG64([config.seed, 1]))
    step, seconds = 0, 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state["config"] == asdict(config):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
            step, seconds = state["step"], state["seconds"]
    start, first = time.perf_counter(), step
    model.train()
    last = min(config.steps, stop_at or config.steps)
    bar = tqdm(total=config.steps, initial=step, unit="step", disable=not progress, dynamic_ncols=True)
    running = None
    while step < last:
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(config, step)
        total, cover_mse, secret_mse = loss(model, *_batch(patches, config, rng), config.secret_weight)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        step += 1
        running = (cover_mse, secret_mse) if running is None else (
            0.98 * running[0] + 0.02 * cover_mse, 0.98 * running[1] + 0.02 * secret_mse)
        bar.update(1)
        bar.set_postfix(cover_db=f"{psnr(running[0], 1.0):.1f}", secret_db=f"{psnr(running[1], 1.0):.1f}")
        if step % 100 == 0 or step == last:
            elapsed = seconds + time.perf_counter() - start
            torch.save({
                "config": asdict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "step": step, "seconds": elapsed,
            }, checkpoint)
    bar.close()
    model.eval()
    session = time.perf_counter() - start
    return model, {"seconds_total": seconds + session, "seconds_this_run": session, "steps_this_run": step - first}


def evaluate(model: DeepStego, patches: Patches) -> dict:
    """The seed's table on ``patches``: embedding and extraction MSE and PSNR (8-bit peak).

    The stego image is rounded to integers before extraction, as storage does. Per patch, and
    averaged: ``*_psnr_db`` is the mean of per-patch PSNR (a patch recovered without any error,
    MSE 0, counts as PSNR_CAP_DB; ``secret_exact`` says how many), ``*_psnr_of_mean_mse_db``
    the PSNR of the mean MSE (the stricter figure, dominated by the worst patches). For binary
    secrets (QR codes) ``per_patch_flipped`` counts pixels recovered on the wrong side of
    mid-grey. Also the extraction of clean covers: how far it stays from the blank image,
    against real recoveries, and how far it is from the secrets (PSNR of a clean cover's
    extraction against the secret of its pair).
    """
    with torch.no_grad():
        stego = quantize(model.hide(to_tensor(patches.covers), to_tensor(patches.secrets)))
        recovered = from_tensor(model.reveal(stego))
        clean = from_tensor(model.reveal(quantize(to_tensor(patches.covers))))
    stego8 = from_tensor(stego)
    cover_mse = np.array([mse(s, c) for s, c in zip(stego8, patches.covers, strict=True)])
    secret_mse = np.array([mse(r, s) for r, s in zip(recovered, patches.secrets, strict=True)])
    cover_db = np.minimum([psnr(m) for m in cover_mse], PSNR_CAP_DB)
    secret_db = np.minimum([psnr(m) for m in secret_mse], PSNR_CAP_DB)
    return {
        "patches": len(patches.covers),
        "cover_mse": float(cover_mse.mean()),
        "cover_psnr_db": float(cover_db.mean()),
        "cover_psnr_of_mean_mse_db": psnr(float(cover_mse.mean())),
        "secret_mse": float(secret_mse.mean()),
        "secret_psnr_db": float(secret_db.mean()),
        "secret_psnr_of_mean_mse_db": psnr(float(secret_mse.mean())),
        "secret_exact": int((secret_mse == 0).sum()),
        "per_patch_cover_psnr_db": cover_db.tolist(),
        "per_patch_secret_psnr_db": secret_db.tolist(),
        "per_patch_flipped": [int(((r < BLANK) != (s < BLANK)).sum()) for r, s in zip(recovered, patches.secrets, strict=True)],
        "blankness_recovered": [blankness(r) for r in recovered],
        "blankness_clean": [blankness(r) for r in clean],
        "clean_secret_psnr_db": float(np.mean([psnr(mse(c, s)) for c, s in zip(clean, patches.secrets, strict=True)])),
    }
