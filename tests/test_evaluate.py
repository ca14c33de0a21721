"""python -m rats_app.evaluate: tables, resume from cached images, errors before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rats_app.evaluate import main, mean_ci
from rats_app.paired import cell, compare, paired_gap, sign_test, verdict


def test_mean_ci():
    mean, ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and ci == pytest.approx(1.96 * 1.2909944 / 2, rel=1e-6)


def test_paired_statistics_are_exact_on_known_pairs():
    """A gap the same on every image has no spread; a sign test is the binomial's two tails; NaN
    (no object to fit) drops the pair; the verdict reads the interval against the measure's direction."""
    b = np.linspace(0.5, 1.5, 40)
    assert paired_gap(b + 0.25, b) == pytest.approx((0.25, 0.25, 0.25))
    assert paired_gap([1.0, np.nan, 3.0, 5.0], [0.0, 9.0, 2.0, 4.0], "mean")[0] == pytest.approx(1.0)
    assert sign_test(0, 6) == pytest.approx(2 / 64) and sign_test(1, 5) == pytest.approx(14 / 64)
    assert sign_test(3, 3) == 1.0 and sign_test(0, 0) == 1.0
    assert verdict(-0.3, -0.1, lower_is_better=True) == "better" and verdict(-0.3, -0.1, False) == "worse"
    assert verdict(-0.1, 0.2, True) == "≈"
    result = compare({"correct": np.array([True] * 10 + [False] * 30), "sigma": b - 0.1},
                     {"correct": np.array([False] * 10 + [False] * 30), "sigma": b})
    assert result["correct"] == {"gap": 25.0, "only_a": 10, "only_b": 0, "p": pytest.approx(2 / 1024),
                                 "verdict": "better"}
    assert result["sigma"]["verdict"] == "better" and list(result) == ["correct", "sigma"]
    assert cell(result["correct"]) == "+25.0 pts (10:0, p 0.00) better"
    assert cell(result["sigma"]) == "-0.100 [-0.100, -0.100] better"


@pytest.fixture()
def tiny_env(tmp_path, tiny_world_model_dir, tiny_reward_dir, train_tiny, monkeypatch):
    monkeypatch.setenv("RATS_SHAPES_REWARD", str(tiny_reward_dir))
    lora = tmp_path / "lora"
    train_tiny(lora, steps=1)
    return tmp_path, tiny_world_model_dir, lora


def test_evaluate_writes_paper_style_tables_and_resumes(tiny_env, capsys):
    tmp, model, lora = tiny_env
    out = tmp / "eval"
    args = ["--out-dir", str(out), "--model", str(model), "--lora", f"rats={lora}", "--prompts", "world-heldout",
            "--images", "3", "--nfe", "2", "1", "--teacher-nfe", "4", "--rewards", "shapes", "--quiet"]
    assert main(args) == 0
    data = json.loads((out / "results.json").read_text())
    assert [(r["variant"], r["nfe"]) for r in data["rows"]] == [
        ("teacher", 4), ("baseline", 1), ("baseline", 2), ("rats", 1), ("rats", 2)]
    row = data["rows"][3]
    assert {"shapes", "shapes_ci", "shapes_delta", "correct", "clean"} <= set(row) and row["n"] == 3
    assert data["rows"][1]["shapes_delta"] is None  # the baseline is the reference
    assert set(row["attributes"]) == {"background", "color", "shape", "size", "position"}
    assert all(0.0 <= v <= 100.0 for v in row["attributes"].values())
    assert "attributes" not in (out / "results.md").read_text() and "attributes" not in (out / "results.csv").read_text()
    assert (out / "results.md").read_text().startswith("| variant | NFE | n |")
    assert (out / "results.csv").exists() and (out / "frontier.png").stat().st_size > 1000
    # every row against the teacher, image by image; every image's scores in per_image.csv
    assert "vs_teacher" not in data["rows"][0] and set(row["vs_teacher"]) == {
        "shapes", "correct", "sigma", "residual", "ideal_error"}
    assert row["vs_teacher"]["correct"]["verdict"] in ("better", "worse", "≈")
    assert "Against the teacher @ 4, paired image by image" in (out / "results.md").read_text()
    assert "vs_teacher" not in (out / "results.csv").read_text()
    lines = (out / "per_image.csv").read_text().splitlines()
    assert lines[0] == "variant,nfe,image,seed,prompt,shapes,correct,sigma,residual,ideal_error" and len(lines) == 16
    assert lines[1].startswith("teacher,4,0,0,")
    cached = sorted((out / "images").rglob("*.png"))
    assert len(cached) == 15
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert main(args) == 0  # resumes: nothing regenerated
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    record = json.loads((lora / "rats.json").read_text())
    (lora / "rats.json").write_text(json.dumps({**record, "call_by_nfe": {"2": {"true_cfg_scale": 1.5}}}))
    assert main(args) == 0  # the LoRA now samples 2 steps otherwise: those images alone are made again
    again = [str(p.relative_to(out)) for p, t in zip(cached, stamps) if p.stat().st_mtime_ns != t]
    assert again == [f"images/rats/nfe002/{i:04d}.png" for i in range(3)]
    (lora / "rats.json").write_text(json.dumps(record))
    assert main(args) == 0
    screen = out.parent / "screen"
    assert main(args[:1] + [str(screen)] + args[2:] + ["--loras-only"]) == 0  # only the LoRA's rows, same values
    rows = json.loads((screen / "results.json").read_text())["rows"]
    assert [(r["variant"], r["nfe"]) for r in rows] == [("rats", 1), ("rats", 2)]
    assert rows[1]["shapes"] == data["rows"][4]["shapes"] and rows[1]["shapes_delta"] is None


@pytest.mark.parametrize("extra, message", [
    (["--nfe", "0", "3"], "nfe must be between 1 and 1000, got 0"),
    (["--nfe", "-2"], "nfe must be between 1 and 1000, got -2"),
    (["--prompts", "EMPTY"], "no prompts"),
    (["--prompts", "BINARY"], "not UTF-8 text"),
    (["--lora", "bad=BADLORA"], "does not fit this model"),
    (["--lora", "noequals"], "NAME=PATH"),
    (["--batch", "0"], "--batch must be >= 1, got 0"),
])
def test_bad_input_fails_before_any_work(tiny_env, capsys, extra, message):
    tmp, model, _ = tiny_env
    (tmp / "empty.txt").write_text("\n \n")
    (tmp / "binary.txt").write_bytes(b"\xff\xfe\x00\x81")
    import torch
    from safetensors.torch import save_file

    save_file({"transformer.nope.lora_A.weight": torch.zeros(2, 2)}, tmp / "bad.safetensors")
    extra = [{"EMPTY": str(tmp / "empty.txt"), "BINARY": str(tmp / "binary.txt"),
              "bad=BADLORA": f"bad={tmp / 'bad.safetensors'}"}.get(x, x) for x in extra]
    out = tmp / "eval-bad"
    assert main(["--out-dir", str(out), "--model", str(model), "--images", "2", "--quiet", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "images").exists()


def test_ground_truth_reports_fidelity_medians_of_renders():
    import numpy as np

    from rats_app.evaluate import ground_truth, median_ci
    from rats_app.worlds import get_world
    from rats_app.worlds.shapes.prompts import parse_prompt, training_prompts
    from rats_app.worlds.shapes.render import Degradation, Sample, render_scene, sample_placement

    world, rng = get_world("shapes-world"), np.random.default_rng(0)
    prompts = training_prompts()[:6]
    scenes = [parse_prompt(p) for p in prompts]
    sharp = [world.check(render_scene(Sample(s, sample_placement(s, rng))), p) for s, p in zip(scenes, prompts)]
    soft = [world.check(render_scene(Sample(s, sample_placement(s, rng), Degradation(blur_sigma=1.5))), p)
            for s, p in zip(scenes, prompts)]
    a, b = ground_truth(sharp, world), ground_truth(soft, world)
    assert a["correct"] == 100.0 and a["sigma_median"] < 0.35 < 1.4 < b["sigma_median"] < 1.6
    assert a["ideal_error_median"] < 2.0 < b["ideal_error_median"] and "ideal_error_mean_ci" in a
    assert median_ci([1.0, 2.0, 3.0])[0] == 2.0


def test_evaluate_a_video_model_caches_filmstrips(tmp_path, tiny_wan_dir, tiny_reward_dir, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("RATS_SHAPES_REWARD", str(tiny_reward_dir))
    out = tmp_path / "eval"
    args = ["--out-dir", str(out), "--model", str(tiny_wan_dir), "--prompts", "world-train", "--images", "2",
            "--nfe", "1", "--teacher-nfe", "2", "--rewards", "shapes", "--quiet"]
    assert main(args) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {"shapes", "flicker", "motion", "correct", "clean"} <= set(rows[0])
    strips = sorted((out / "images").rglob("*.png"))
    assert len(strips) == 4 and Image.open(strips[0]).size == (9 * 32, 32)
    stamps = [p.stat().st_mtime_ns for p in strips]
    assert main(args) == 0 and json.loads((out / "results.json").read_text())["rows"] == rows  # from the cache
    assert [p.stat().st_mtime_ns for p in strips] == stamps


def test_a_lora_retrained_in_place_is_not_read_from_the_cache(tiny_env, train_tiny, capsys):
    """Cached images carry what made them: a LoRA retrained under the same name and path is made again,
    the baseline's images are kept."""
    import shutil

    tmp, model, lora = tiny_env
    out = tmp / "eval"
    args = ["--out-dir", str(out), "--model", str(model), "--lora", f"rats={lora}", "--prompts", "world-heldout",
            "--images", "2", "--nfe", "1", "--teacher-nfe", "2", "--rewards", "shapes", "--quiet"]
    assert main(args) == 0
    rats, baseline = out / "images" / "rats" / "nfe001", out / "images" / "baseline" / "nfe001"
    before = {p.name: p.read_bytes() for p in rats.glob("*.png")}
    kept = [p.stat().st_mtime_ns for p in sorted(baseline.glob("*.png"))]
    shutil.rmtree(lora)
    train_tiny(lora, steps=1, seed=1, learning_rate=0.05)
    assert main(args) == 0
    assert "made by another model, seed or LoRA" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in rats.glob("*.png")} != before
    assert [p.stat().st_mtime_ns for p in sorted(baseline.glob("*.png"))] == kept


def test_batched_generation_keeps_each_images_seed_and_fills_only_the_gaps(tiny_env):
    """--batch makes several images per call, each from its own seed: the same images as one at a
    time (within 1/255: a batch's arithmetic is not bit for bit a single call's), and a resumed run
    makes only the missing ones."""
    import numpy as np
    from PIL import Image

    tmp, model, _ = tiny_env
    common = ["--model", str(model), "--prompts", "world-train", "--images", "5", "--nfe", "2",
              "--teacher-nfe", "3", "--rewards", "shapes", "--quiet"]
    assert main(["--out-dir", str(tmp / "one"), "--batch", "1", *common]) == 0
    assert main(["--out-dir", str(tmp / "batched"), "--batch", "3", *common]) == 0

    def pixels(run):
        return {p.relative_to(tmp / run).as_posix(): np.asarray(Image.open(p), dtype=int)
                for p in sorted((tmp / run / "images").rglob("*.png"))}
    one, batched = pixels("one"), pixels("batched")
    assert one.keys() == batched.keys() and len(one) == 10
    assert max(np.abs(one[k] - batched[k]).max() for k in one) <= 1
    baseline = sorted((tmp / "batched" / "images" / "baseline" / "nfe002").glob("*.png"))
    baseline[3].unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in baseline if p.exists()}
    assert main(["--out-dir", str(tmp / "batched"), "--batch", "3", *common]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in baseline if p.name in stamps} == stamps and baseline[3].exists()
    again = np.asarray(Image.open(baseline[3]), dtype=int)
    assert np.abs(again - one["images/baseline/nfe002/0003.png"]).max() <= 1
