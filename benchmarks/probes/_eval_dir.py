"""What the probes of an evaluate run's Shapes World images share: their arguments and the checker's fit."""
import argparse
from pathlib import Path

import numpy as np

from rats_app.evaluate import load_prompts
from rats_app.worlds import get_world
from rats_app.worlds.reading import box_from_mask, segment
from rats_app.worlds.shapes.checker import fit_scene
from rats_app.worlds.shapes.prompts import parse_prompt


def eval_dir_args(doc: str, add_options=None) -> tuple[argparse.Namespace, list[str]]:
    """EVAL_DIR, --prompts, --images (and the probe's own options): the arguments and the prompts,
    which must be those the evaluate run used with seed 0."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--prompts", default="world-train")
    parser.add_argument("--images", type=int, default=60)
    if add_options:
        add_options(parser)
    args = parser.parse_args()
    return args, load_prompts(args.prompts, args.images, get_world("shapes-world"), 0)


def fit_image(image: np.ndarray, prompt: str):
    """(scene, box, the checker's fit) of a float H x W x 3 image; None when no object is found."""
    scene = parse_prompt(prompt)
    box = box_from_mask(segment(image).alpha > 0.5)
    return None if box is None else (scene, box, fit_scene(image, scene, box))
