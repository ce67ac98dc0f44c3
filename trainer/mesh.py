"""The device mesh for data-parallel training: one `data` axis over every device JAX sees.

Params and optimizer state are replicated on every device; each step's batch is split over `data`,
so each device runs the forward and backward pass on batch / n rows and XLA inserts the all-reduce
of the gradients (plain jit, no pmap, no hand-written collectives). The corpus is replicated too:
batches are drawn from it inside the jitted step, and the step constrains the drawn x, y (and the
carry) to the batch sharding, so each device gathers and trains on its own rows. Replicating the
corpus is cheap: a megabyte of text is 4 MB of int32. Evaluation is not split (its batch is sized
by the validation set, not by the devices): it runs replicated.

With one device there is no mesh at all, so the single-device step is exactly what it was.
"""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from lstm.schema import ConfigError


def data_mesh(batch_size: int) -> Mesh | None:
    """A 1-D mesh named `data` over all devices, or None when JAX sees one device.

    Raises ConfigError when the batch does not split evenly: uneven shards would make XLA pad or
    reshard every step, and the gradient would no longer be the global batch's mean."""
    n = jax.device_count()
    if n == 1:
        return None
    if batch_size % n:
        raise ConfigError(
            f"batch size {batch_size} does not split evenly over the {n} devices JAX sees: use a multiple of {n} "
            f"(e.g. --batch-size {(batch_size // n + 1) * n}), or show JAX fewer devices (CUDA_VISIBLE_DEVICES)"
        )
    # make_mesh defaults to Explicit axes ("sharding in types"), under which the embedding lookup of
    # a sharded batch fails to type-check; Auto lets XLA propagate shardings as in classic jit.
    return jax.make_mesh((n,), ("data",), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array: params, optimizer state, the corpus."""
    return NamedSharding(mesh, PartitionSpec())


def batch_split(mesh: Mesh) -> NamedSharding:
    """The leading (batch) dimension split over `data`: x, y (B, T) and the carry (B, H)."""
    return NamedSharding(mesh, PartitionSpec("data"))

