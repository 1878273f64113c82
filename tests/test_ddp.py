"""DistributedDataParallel on CPU with gloo: two processes, identical weights, rank-0 files."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

TINY = {"channels": 2, "stages": 2, "blocks": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    from sdsen.data import SyntheticRainDataset
    from sdsen.models import ModelConfig, build_model
    from sdsen.train import TrainConfig, fit

    torch.manual_seed(rank)  # different inits: DDP must broadcast rank 0's weights
    model = build_model(ModelConfig(**TINY))
    data = SyntheticRainDataset("test", patch_size=16, length=32, preset="light", seed=0)
    cfg = TrainConfig.preset(
        "quick",
        steps=3,
        batch_size=4,
        patch_size=16,
        log_every=1,
        val_every=0,
        ckpt_every=3,
        device="cpu",
        tensorboard=False,
    )
    # each rank gets its own run folder: only rank 0's may receive files
    hist = fit(model, data, None, cfg, Path(tmp) / f"run{rank}", progress=False)
    assert not dist.is_initialized()  # fit tears down the group it created
    torch.save({"state": model.state_dict(), "loss": hist["loss"]}, Path(tmp) / f"rank{rank}.pt")


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), k
    assert r0["loss"] != r1["loss"]  # the ranks saw different halves of the batch
    assert {"latest.pt", "metrics.jsonl", "config.json"} <= {
        p.name for p in (tmp_path / "run0").iterdir()
    }
    assert not (tmp_path / "run1").exists()
    saved = torch.load(tmp_path / "run0" / "latest.pt", weights_only=True)
    assert all(torch.equal(v, saved["model"][k]) for k, v in r0["state"].items())
    cfg = json.loads((tmp_path / "run0" / "config.json").read_text())
    assert cfg["world_size"] == 2
