"""What the VAE probes share: a fixed set of world renders and their reconstructions."""
import numpy as np
import torch
from diffusers import AutoencoderKL

from rats_app.worlds.shapes.data import to_tensor, to_uint8
from rats_app.worlds.shapes.render import Sample, render_scene, sample_scene


def probe_samples(prompts: list[str], n: int, p_degraded: float = 0.0, seed: int = 5) -> list[Sample]:
    """n scenes of randomly drawn prompts; the same (prompts, n, p_degraded, seed) gives the same scenes."""
    rng = np.random.default_rng(seed)
    return [sample_scene(prompts[i], rng, p_degraded) for i in rng.integers(len(prompts), size=n)]


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, samples: list[Sample]) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """(uint8 reconstructions, posterior-mode latents, the [-1, 1] inputs)."""
    x = to_tensor([render_scene(s) for s in samples])
    z = vae.encode(x).latent_dist.mode()
    return to_uint8(vae.decode(z).sample), z, x
