"""Which stages a ``--stage`` choice runs, in order (each one resumes or is skipped when done)."""

from __future__ import annotations

from pathlib import Path

from rats_app.worlds.moving_shapes.pretrain import PretrainConfig
from rats_app.worlds.moving_shapes.pretrain.vae import finetune_decoder, train_vae


def run(stage: str, work: Path, out: Path, cfg: PretrainConfig) -> None:
    if stage == "decoder":
        finetune_decoder(work, cfg)
        return
    vae = train_vae(work, cfg)
    if stage == "vae":
        return
    if stage == "report":
        from rats_app.worlds.moving_shapes.pretrain.report import print_reports

        print_reports(work)
        return
    from rats_app.worlds.moving_shapes.pretrain import transformer

    if stage in ("all", "transformer"):
        data = transformer.encode_dataset(work, vae, cfg)
        transformer.train_transformer(work, data, cfg)
    if stage in ("all", "export"):
        transformer.export(work, out, cfg)
