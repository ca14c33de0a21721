"""Pretraining stages that the shipped teacher's recipe relies on (tiny VAE, a couple of steps)."""

from __future__ import annotations

import shutil


def test_decoder_phase_from_a_named_phase_skips_the_vae_stage(tmp_path, tiny_world_model_dir):
    from rats_app.world.pretrain import main

    work = tmp_path / "work"
    shutil.copytree(tiny_world_model_dir / "vae", work / "phase2")
    main(["--work-dir", str(work), "--stage", "decoder", "--decoder-from", "phase2", "--decoder-steps", "2",
          "--threads", "1"])
    assert (work / "vae_decoder" / "config.json").exists()
    assert not (work / "vae").exists() and not (work / "vae_ckpt.pt").exists()  # no VAE was trained
