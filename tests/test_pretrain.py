"""Pretraining stages that the shipped teacher's recipe relies on (tiny VAE, a couple of steps)."""

from __future__ import annotations

import shutil

import pytest


def test_decoder_phase_from_a_named_phase_skips_the_vae_stage(tmp_path, tiny_world_model_dir):
    from rats_app.worlds.shapes.pretrain.cli import main

    work = tmp_path / "work"
    shutil.copytree(tiny_world_model_dir / "vae", work / "phase2")
    main(["--work-dir", str(work), "--stage", "decoder", "--decoder-from", "phase2", "--decoder-steps", "2",
          "--threads", "1"])
    assert (work / "vae_decoder" / "config.json").exists()
    assert not (work / "vae").exists() and not (work / "vae_ckpt.pt").exists()  # no VAE was trained


def _scene(prompt: str, contrast: float = 1.0):
    import numpy as np

    from rats_app.worlds.shapes.render import Degradation, Sample, render_scene, sample_scene

    sample = sample_scene(prompt, np.random.default_rng(0), 0.0)
    sample = Sample(sample.scene, sample.placement, Degradation(contrast=contrast))
    return sample, render_scene(sample)


def test_scene_palette_follows_the_contrast_degradation():
    import torch

    from rats_app.worlds.shapes.pretrain.vae import scene_palette

    clean, _ = _scene("a large red square at the center on a gray background")
    faded, _ = _scene("a large red square at the center on a white background", contrast=0.5)
    background, axis = scene_palette([clean, faded])
    assert background.shape == axis.shape == (2, 3, 1, 1)
    # gray (128) -> 128/127.5 - 1; red (220, 40, 40) - gray (128) = (92, -88, -88) levels
    torch.testing.assert_close(background[0, :, 0, 0], torch.full((3,), 128 / 127.5 - 1))
    torch.testing.assert_close(axis[0, :, 0, 0], torch.tensor([92.0, -88.0, -88.0]) / 127.5)
    # white (240) at contrast 0.5 -> 184; red -> (174, 84, 84): axis (-10, -100, -100)
    torch.testing.assert_close(background[1, :, 0, 0], torch.full((3,), 184 / 127.5 - 1))
    torch.testing.assert_close(axis[1, :, 0, 0], torch.tensor([-10.0, -100.0, -100.0]) / 127.5)


def test_coverage_loss_measures_error_in_units_of_the_object_contrast():
    import torch

    from rats_app.worlds.shapes.data import to_tensor
    from rats_app.worlds.shapes.pretrain.vae import coverage_loss, scene_palette

    gray, gray_image = _scene("a large red square at the center on a gray background")
    white, white_image = _scene("a large red square at the center on a white background")
    target = to_tensor([gray_image, white_image])
    background, axis = scene_palette([gray, white])
    assert coverage_loss(target, target, background, axis).item() == 0.0
    # A uniform shift of 0.1 along each image's own axis moves coverage by exactly 0.1 everywhere
    # and leaves its gradient alone.
    shifted = target + 0.1 * axis
    for i in range(2):
        loss = coverage_loss(shifted[i:i + 1], target[i:i + 1], background[i:i + 1], axis[i:i + 1])
        torch.testing.assert_close(loss, torch.tensor(0.1))
    # A shift across the axis leaves coverage alone and costs its L1 norm over the contrast.
    across = torch.tensor([1.0, 1.0, 0.0])[None, :, None, None]  # made orthogonal to the red axis below
    across = across - (across * axis[:1]).sum(1, keepdim=True) / axis[:1].pow(2).sum(1, keepdim=True) * axis[:1]
    loss = coverage_loss(target[:1] + 0.1 * across, target[:1], background[:1], axis[:1])
    torch.testing.assert_close(loss, 0.1 * across.abs().sum() / axis[0].norm())
    # The same absolute error (one unit-length colour step) costs more on the low-contrast gray
    # background, by the ratio of the two contrasts: that is the point of the loss.
    unit = axis / axis.norm(dim=1, keepdim=True)
    step = 0.05 * unit
    losses = [coverage_loss(target[i:i + 1] + step[i:i + 1], target[i:i + 1], background[i:i + 1],
                            axis[i:i + 1]) for i in range(2)]
    torch.testing.assert_close(losses[0] / losses[1], axis[1].norm() / axis[0].norm())
    assert losses[0] > 1.8 * losses[1]


def test_decoder_phase_with_coverage_loss_logs_it(tmp_path, tiny_world_model_dir):
    import json

    from rats_app.worlds.shapes.pretrain.cli import main

    work = tmp_path / "work"
    shutil.copytree(tiny_world_model_dir / "vae", work / "phase2")
    main(["--work-dir", str(work), "--stage", "decoder", "--decoder-from", "phase2", "--decoder-steps", "2",
          "--decoder-coverage-weight", "4.0", "--threads", "1"])
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert records[-1]["stage"] == "decoder" and records[-1]["coverage"] > 0


def test_pretrain_config_names_bad_values(tmp_path, capsys):
    import pytest

    from rats_app.worlds.shapes.pretrain import PretrainConfig
    from rats_app.worlds.shapes.pretrain.cli import main

    for bad, name in (({"decoder_coverage_weight": -1.0}, "decoder_coverage_weight"),
                      ({"vae_steps": 0}, "vae_steps"), ({"ema_decay": 1.0}, "ema_decay"),
                      ({"true_cfg_scale": 0.5}, "true_cfg_scale")):
        with pytest.raises(ValueError, match=name):
            PretrainConfig(**bad)
    with pytest.raises(SystemExit):
        main(["--work-dir", str(tmp_path / "w"), "--stage", "report", "--decoder-lr", "-0.1"])
    assert "decoder_lr: -0.1 must be > 0.0" in capsys.readouterr().err
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text('{"decoder_stepz": 5}')
    with pytest.raises(SystemExit):
        main(["--work-dir", str(tmp_path / "old"), "--stage", "report"])
    assert "decoder_stepz" in capsys.readouterr().err


def test_export_records_a_committed_decoders_own_training_record(tmp_path, tiny_world_model_dir):
    """A decoder copied in from a checkpoint dir keeps its provenance in the exported world.json."""
    import json

    from rats_app.io import save_torch_state
    from rats_app.training.loop import flat_state
    from rats_app.training.schedules import ema_of
    from rats_app.worlds.shapes.model import WorldModelConfig, build_world_pipeline
    from rats_app.worlds.shapes.pretrain import PretrainConfig
    from rats_app.worlds.shapes.pretrain.transformer import export, trainable

    work = tmp_path / "work"
    modules = trainable(build_world_pipeline(WorldModelConfig(), seed=0))
    ema = ema_of([p for m in modules.values() for p in m.parameters()], 0.999, warmup=True)
    save_torch_state(work / "transformer_ckpt.pt", {"model": flat_state(modules), "ema": ema.state_dict(), "step": 7})
    shutil.copytree(tiny_world_model_dir / "vae", work / "vae_decoder")
    record = {"steps": "decoder phases a, b, c", "wall_time_s": {"decoder_a": 1.0}}
    (work / "vae_decoder" / "training.json").write_text(json.dumps(record))
    export(work, tmp_path / "out", PretrainConfig())
    meta = json.loads((tmp_path / "out" / "world.json").read_text())
    assert meta["pretrain"]["transformer_steps"] == 7 and meta["pretrain"]["decoder_finetuned"]
    assert meta["pretrain"]["decoder_training"] == record


def test_moving_shapes_decoder_phase_from_a_named_phase_skips_the_vae_stage(tmp_path):
    """Moving Shapes sharpens its decoder in phases too (each from the one before, beside the
    transformer), so a phase must start from a named VAE and never retrain stage 1."""
    from rats_app.worlds.moving_shapes.model import WanWorldConfig, build_vae
    from rats_app.worlds.moving_shapes.pretrain.cli import main

    work = tmp_path / "work"
    build_vae(WanWorldConfig(z_dim=4, vae_base_dim=4)).save_pretrained(work / "vae_decoder_a")
    main(["--work-dir", str(work), "--stage", "decoder", "--decoder-from", "vae_decoder_a", "--decoder-steps", "2",
          "--vae-batch", "2", "--threads", "1"])
    assert (work / "vae_decoder" / "config.json").exists()
    assert not (work / "vae").exists() and not (work / "vae_ckpt.pt").exists()  # no VAE was trained


def test_per_object_weights_give_a_small_and_a_large_object_the_same_total_weight():
    import torch

    from rats_app.worlds.pretraining import object_pixel_weights

    images = torch.zeros(2, 3, 16, 16)
    images[0, :, 4:6, 4:6] = 1.0    # 2 x 2 px (4 x 4 after the mask's one-pixel dilation)
    images[1, :, 4:10, 4:10] = 1.0  # 6 x 6 px (8 x 8 dilated)
    extra = lambda w: (w - 1.0).flatten(1).sum(dim=1)  # noqa: E731 - each sample's total object weight
    plain = extra(object_pixel_weights(images, 10.0))
    assert plain.tolist() == [160.0, 640.0]  # per pixel: total weight follows the area
    scaled = extra(object_pixel_weights(images, 10.0, per_object=True))
    assert torch.allclose(scaled, torch.full((2,), 400.0))  # the mean of the two, each


def test_object_weighted_temporal_loss_counts_a_difference_with_the_larger_frame_weight():
    import torch

    from rats_app.worlds.moving_shapes.pretrain.vae import temporal_loss

    target = torch.zeros(1, 1, 3, 1, 2)  # B x C x F x H x W: 3 frames of 1 x 2 px
    recon = target.clone()
    recon[0, 0, 1, 0, 0] = 1.0           # frame 1 wrong at pixel 0: both differences touching it are off by 1
    weight = torch.ones(1, 1, 3, 1, 2)
    weight[0, 0, 0, 0, 0] = 11.0         # pixel 0 is on the object in frame 0 only
    assert temporal_loss(recon, target).item() == 0.5  # (1 + 1) / 4 differences
    assert temporal_loss(recon, target, weight).item() == (11.0 + 1.0) / 4  # 0->1 takes frame 0's 11


def test_moving_shapes_transformer_warm_start_from_a_half_precision_hand_over(tmp_path):
    """transformer_init: a later session continues from the committed weights (float16 on disk,
    float32 in training); a missing folder or another architecture is one clear error."""
    import torch

    from rats_app.errors import ConfigError
    from rats_app.worlds.moving_shapes.model import WanWorldConfig, build_world_pipeline
    from rats_app.worlds.moving_shapes.pretrain.transformer import warm_start

    trained = build_world_pipeline(WanWorldConfig(), seed=1)
    trained.transformer.to(torch.float16).save_pretrained(tmp_path / "handover" / "transformer")
    trained.text_encoder.save_pretrained(tmp_path / "handover" / "text_encoder")
    fresh = build_world_pipeline(WanWorldConfig(), seed=0)
    warm_start(fresh, tmp_path / "handover")
    for name, tensor in trained.transformer.state_dict().items():
        assert fresh.transformer.state_dict()[name].dtype == torch.float32
        assert torch.equal(fresh.transformer.state_dict()[name], tensor.float()), name
    assert all(torch.equal(a, b) for a, b in zip(fresh.text_encoder.state_dict().values(),
                                                 trained.text_encoder.state_dict().values()))
    with pytest.raises(ConfigError, match="has no transformer/"):
        warm_start(fresh, tmp_path)
    other = build_world_pipeline(WanWorldConfig(layers=1), seed=0)
    other.transformer.save_pretrained(tmp_path / "other" / "transformer")
    other.text_encoder.save_pretrained(tmp_path / "other" / "text_encoder")
    with pytest.raises(ConfigError, match="is not this world's model"):
        warm_start(fresh, tmp_path / "other")


def test_flow_times_shift_maps_each_time_as_a_shifted_scheduler_does():
    import torch

    from rats_app.worlds.pretraining import flow_times

    plain = flow_times(1000, torch.Generator().manual_seed(3))
    shifted = flow_times(1000, torch.Generator().manual_seed(3), shift=3.0)
    torch.testing.assert_close(shifted, 3 * plain / (1 + 2 * plain))
    assert ((shifted > 0) & (shifted < 1)).all()
    assert (shifted > 0.8).float().mean() > 2 * (plain > 0.8).float().mean()  # the noise end gets more
