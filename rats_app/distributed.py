"""Several processes: data parallel (DDP-style) or FSDP (sharded base and LoRA), for the trainer.

- **DDP** (``parallel: ddp``, or ``auto`` under a plain multi-process ``accelerate launch``): every
  process holds the whole base model, draws its own prompts, and the LoRA gradients are averaged
  after backward. Only the LoRA trains, so averaging its few tensors is all the communication.
- **FSDP** (``parallel: fsdp``, or ``auto`` under an accelerate FSDP config): the transformer's
  blocks are sharded with PyTorch's FSDP2 ``fully_shard``; each process keeps 1/N of the base
  (and LoRA) weights and gathers a block only while it runs. The EMA teacher still shares the
  base: its shadow LoRA is sharded like the LoRA itself. Gradients are reduce-scattered by FSDP.

The trainer's checkpoints stay process-count independent: LoRA, EMA and optimizer state are
gathered to full tensors (every process takes part in the gather; the main one writes).
"""

from __future__ import annotations

import os

import torch


def fsdp_requested(parallel: str, accelerator) -> bool:
    """Whether to shard: asked for by name, or ``auto`` under an accelerate FSDP launch."""
    if parallel == "fsdp":
        return True
    if parallel != "auto" or accelerator is None:
        return False
    from accelerate.utils import DistributedType

    # On a machine without CUDA accelerate reports MULTI_CPU even for an FSDP config; the launcher's
    # environment variable still says what was asked for.
    return (accelerator.distributed_type == DistributedType.FSDP
            or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true")


def transformer_blocks(transformer) -> list[torch.nn.Module]:
    """The repeated blocks FSDP wraps one by one (FLUX: double + single stream; SD3: joint)."""
    blocks = []
    for name in ("transformer_blocks", "single_transformer_blocks"):
        blocks.extend(getattr(transformer, name, None) or [])
    return blocks


def shard_transformer(transformer, device: torch.device) -> None:
    """FSDP2: shard every block, then the rest of the transformer, over all processes."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if not dist.is_initialized():
        raise RuntimeError("parallel: fsdp needs a process group: start training with `accelerate launch`")
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    for block in transformer_blocks(transformer):
        fully_shard(block, mesh=mesh)
    fully_shard(transformer, mesh=mesh)


def is_sharded(tensor: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor (a collective for a sharded one: every process must call it)."""
    return tensor.full_tensor() if is_sharded(tensor) else tensor


def shard_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A full tensor laid out like ``like`` (this process's shard when ``like`` is sharded)."""
    if not is_sharded(like):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value.to(like.device, like.dtype), like.device_mesh, like.placements)


def full_optimizer_state(transformer, optimizer) -> dict:
    """The optimizer state gathered to full tensors, keyed by parameter name (collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(transformer, optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_optimizer_state(transformer, optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(transformer, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True))


def average_gradients(accelerator, params: list[torch.nn.Parameter]) -> None:
    """DDP-style: average LoRA gradients across processes (a parameter without a gradient counts as 0)."""
    for p in params:
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        p.grad = accelerator.reduce(grad.contiguous(), reduction="mean")
