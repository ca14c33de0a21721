"""``python -m rats_app.worlds.shapes.pretrain --work-dir DIR [--stage ...] [--key value ...]``"""

from __future__ import annotations

from rats_app.worlds.pretraining import Stages, pretrain_main
from rats_app.worlds.shapes import pretrain
from rats_app.worlds.shapes.pretrain import report, transformer, vae

STAGES = Stages(train_vae=vae.train_vae, finetune_decoder=vae.finetune_decoder,
                encode_dataset=transformer.encode_dataset, train_transformer=transformer.train_transformer,
                export=transformer.export, print_reports=report.print_reports)


def main(argv: list[str] | None = None) -> int:
    return pretrain_main(argv, prog="python -m rats_app.worlds.shapes.pretrain", doc=pretrain.__doc__,
                         config_cls=pretrain.PretrainConfig, stages=STAGES, work_dir="runs/pretrain", out="assets/shapes-flux")
