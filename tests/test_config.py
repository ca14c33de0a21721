"""TrainConfig rejects unknown keys and bad values, naming them; YAML and CLI layers compose."""

from __future__ import annotations

import json

import pytest

from rats_app.config import TrainConfig
from rats_app.errors import ConfigError
from rats_app.train import build_parser, main, resolve_config


@pytest.mark.parametrize("data, message", [
    ({"learning_rat": 1e-3}, "unknown config key(s): learning_rat"),
    ({"alpha": -1}, "alpha: -1.0 must be >= 0.0"),
    ({"tau": 0}, "tau: 0.0 must be > 0.0"),
    ({"gate": "maybe"}, "gate: 'maybe' is not one of"),
    ({"student_steps": 0}, "student_steps: 0 must be >= 1"),
    ({"steps": "many"}, "steps: expected int, got 'many'"),
    ({"horizons": [5]}, "horizons: 5 is not a student step index"),
    ({"horizon_weights": [1.0, 2.0]}, "horizon_weights: 2 weights for 3 horizons"),
    ({"preset": "magic"}, "preset: 'magic' is not one of"),
    ({"ema_decay": 1.5}, "ema_decay: 1.5 must be <= 1.0"),
    ({"gradient_checkpointing": 1}, "gradient_checkpointing: expected bool"),
    ({"student_steps": 5}, "student_steps: 5 is not one of student_steps_choices [1, 2, 3, 4, 6, 8]"),
    ({"student_steps_choices": [2, 4], "horizons": [0]}, "set student_steps_choices=[] to train one K"),
    ({"sample_cfg_by_nfe": {0: 1.5}}, "sample_cfg_by_nfe: 0 is not a step count in [1, 50]"),
    ({"sample_cfg_by_nfe": {"two": 1.5}}, "sample_cfg_by_nfe: 'two' is not a step count"),
    ({"sample_cfg_by_nfe": {2: -1}}, "sample_cfg_by_nfe: the scale -1 at NFE 2 must be a number > 0"),
    ({"sample_cfg_by_nfe": {2: float("nan")}}, "the scale nan at NFE 2"),
    ({"sample_cfg_by_nfe": [2, 1.5]}, "sample_cfg_by_nfe: expected dict"),
    ({"student_sigmas_by_nfe": {2: [1.0]}}, "student_sigmas_by_nfe: [1.0] at NFE 2 must be a list of 2 sigmas"),
    ({"student_sigmas_by_nfe": {2: [1.0, 1.2]}}, "[1.0, 1.2] at NFE 2 must fall from at most 1 to above 0"),
    ({"student_sigmas_by_nfe": {2: [1.0, 0.0]}}, "must fall from at most 1 to above 0"),
    ({"student_sigmas_by_nfe": {2: [1.5, 0.5]}}, "must fall from at most 1 to above 0"),
    ({"student_sigmas_by_nfe": {2: "1, 0.5"}}, "must be a list of 2 sigmas"),
    ({"student_sigmas_by_nfe": {51: [1.0]}}, "student_sigmas_by_nfe: 51 is not a step count in [1, 50]"),
])
def test_bad_values_are_named(data, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data)
    assert message in str(info.value)


def test_presets_set_their_fields_and_can_be_overridden():
    assert TrainConfig.from_dict({"preset": "distill"}).reward_weight == 0.0
    assert TrainConfig.from_dict({"preset": "distill"}).gate == "always"
    assert TrainConfig.from_dict({"preset": "reward"}).alpha == 0.0
    assert TrainConfig.from_dict({"preset": "reward", "alpha": 0.5}).alpha == 0.5


def test_teacher_grid_is_a_refinement():
    cfg = TrainConfig.from_dict({"student_steps": 3, "teacher_steps": 50})
    assert cfg.teacher_subdivisions == 17 and cfg.horizon_indices == [0, 1, 2] and cfg.weights == [1.0] * 3


def test_yaml_then_preset_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 10\nalpha: 2.0\nlora_targets: [to_q, to_v]\n")
    args = build_parser().parse_args(["--output-dir", "x", "--config", str(path), "--preset", "distill",
                                      "alpha=3", "horizons=[0, 2]", "student_steps_choices=[]"])
    cfg = resolve_config(args)
    assert (cfg.steps, cfg.alpha, cfg.preset, cfg.horizons, cfg.lora_targets) == (10, 3.0, "distill", [0, 2], ["to_q", "to_v"])


def test_cli_bad_config_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sttps: 3\n")
    assert main(["--output-dir", str(tmp_path / "out"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: unknown config key(s): sttps"
    assert not (tmp_path / "out").exists()
    assert main(["--output-dir", str(tmp_path / "out"), "tau=-1"]) == 2
    assert "tau: -1.0 must be > 0.0" in capsys.readouterr().err


def test_a_worlds_model_trains_with_its_worlds_defaults(tiny_wan_dir):
    """A Moving Shapes model starts from that world's training defaults; key=value overrides and the
    method preset still win; Shapes World's differ from TrainConfig's in seven keys, among them the draw
    weights of TrainConfig's student_steps_choices (a run that picks its own choices drops them)."""
    from rats_app.worlds import get_world

    defaults = get_world("moving-shapes").train_defaults()
    shapes = get_world("shapes-world").train_defaults()
    assert defaults and set(shapes) == {"student_cfg", "sample_cfg_by_nfe", "sample_sigmas_by_nfe",
                                         "student_steps_weights", "steps", "teacher_steps", "watch_every"}
    parse = build_parser().parse_args
    cfg = resolve_config(parse(["--output-dir", "x", f"model={tiny_wan_dir}"]))
    assert {k: getattr(cfg, k) for k in defaults} == defaults
    assert resolve_config(parse(["--output-dir", "x", f"model={tiny_wan_dir}", "steps=7"])).steps == 7
    assert resolve_config(parse(["--output-dir", "x", "--preset", "reward", f"model={tiny_wan_dir}"])).alpha == 0.0
    assert resolve_config(parse(["--output-dir", "x"])) == TrainConfig(**shapes)
    own = resolve_config(parse(["--output-dir", "x", "student_steps_choices=[2,3]"]))
    assert own.student_steps_weights == [] and own.student_cfg == shapes["student_cfg"]


def test_sample_cfg_by_nfe_reads_json_keys_and_falls_back_to_the_sampling_scale():
    """Keys come back from config.json as text: the same config either way; other budgets sample at
    sample_cfg, else student_cfg."""
    config = TrainConfig(student_cfg=2.0, sample_cfg_by_nfe={2: 1.75, 1: 1})
    assert config.sample_cfg_by_nfe == {1: 1.0, 2: 1.75}
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    assert [config.sampling_cfg_at(n) for n in (1, 2, 3)] == [1.0, 1.75, 2.0]


def test_student_sigmas_by_nfe_reads_json_keys():
    config = TrainConfig(student_sigmas_by_nfe={"2": [1, 0.6]})
    assert config.student_sigmas_by_nfe == {2: [1.0, 0.6]}
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
