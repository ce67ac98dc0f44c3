"""The LSTM recurrence as a compiled CPU kernel (lstm_cpu.cc), built on first use.

The source is compiled with the machine's C++ compiler for the machine it runs on
(`-march=native`), once per source, compiler flags and jaxlib, into DANN_NATIVE_DIR (default
~/.cache/dann/native), and registered with XLA as FFI targets: the forward and backward scans of
training, and one step of the cell for the sampler. Everything that can go wrong (no
compiler, a failed build, no FFI headers) leaves `available()` False, logs one warning, and
lstm/kernel.py uses its pure-JAX code: the kernel is a speed-up, never a requirement.
DANN_NATIVE_LSTM=off skips it. It runs on a single CPU device only, for float32 and hidden sizes
that are a multiple of the vector width (16)."""

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import jax
import jax.numpy as jnp

log = logging.getLogger("dann")

SOURCE = Path(__file__).with_name("lstm_cpu.cc")
FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-std=c++17", "-shared", "-fPIC"]
WIDTH = 16  # hidden sizes the kernel takes: a multiple of the widest vector it is built for

_lock = threading.Lock()
_state: dict[str, object] = {}


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def configure(enabled: bool, directory: str) -> None:
    """The command line's settings (DANN_NATIVE_LSTM, DANN_NATIVE_DIR, from the environment or
    .env), before the first use. Without a call, the environment's are read."""
    _state["enabled"], _state["directory"] = enabled, directory


def _enabled() -> bool:
    if "enabled" in _state:
        return bool(_state["enabled"])
    return os.environ.get("DANN_NATIVE_LSTM", "on").lower() not in {"off", "0", "false", "no"}


def library_dir() -> Path:
    return Path(str(_state.get("directory") or os.environ.get("DANN_NATIVE_DIR", "~/.cache/dann/native"))).expanduser()


def _build(compiler: str) -> Path:
    include = jax.ffi.include_dir()
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS).encode(), compiler.encode(), jax.__version__.encode(),
                 platform.machine().encode(), _cpu_id()):
        key.update(part)
    target = library_dir() / f"lstm_cpu-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed into place: two processes building at once each
    # finish their own file, and no process ever loads a half-written one.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        result = subprocess.run([compiler, *FLAGS, f"-I{include}", str(SOURCE), "-o", str(built)],
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"{compiler} failed on {SOURCE.name}: {last}")
        os.replace(built, target)
    return target


def _cpu_id() -> bytes:
    """What -march=native depends on: a library built on one CPU is not loaded on another."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.encode()
    except OSError:
        pass
    return platform.processor().encode()


def available() -> bool:
    """True once the kernel is built, loaded and registered with XLA (first call does the work)."""
    with _lock:
        if "ok" in _state:
            return bool(_state["ok"])
        _state["ok"] = False
        if not _enabled():
            return False
        compiler = _compiler()
        if compiler is None:
            log.warning("no C++ compiler found: the LSTM runs as the slower pure-JAX scan")
            return False
        try:
            library = ctypes.CDLL(str(_build(compiler)))
            for name, symbol in (("dann_lstm_forward", "DannLstmForward"), ("dann_lstm_backward", "DannLstmBackward"),
                                 ("dann_lstm_cell", "DannLstmCell"), ("dann_lstm_cell_input", "DannLstmCellInput")):
                jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
        except (OSError, RuntimeError, subprocess.TimeoutExpired, AttributeError) as error:
            log.warning("the native LSTM kernel is not used (%s): the LSTM runs as the slower pure-JAX scan", error)
            return False
        _state["library"] = library  # keep it loaded
        _state["ok"] = True
        return True


def applies(xp, w_hh, dtype) -> bool:
    """Whether this scan can run on the kernel: the CPU backend with one device, float32, a hidden
    size it takes. Several CPU devices (a data-parallel mesh, which on a CPU only the tests build)
    get the pure-JAX scan: XLA cannot split a custom call over the batch, and would run the whole
    batch on every device."""
    hidden = w_hh.shape[-1] // 4
    return (
        dtype is None
        and xp.dtype == jnp.float32
        and w_hh.dtype == jnp.float32
        and hidden % WIDTH == 0
        and jax.default_backend() == "cpu"
        and jax.device_count() == 1
        and available()
    )


def forward(xp, w_hh, c0, h0):
    """xp (T, B, 4H), w_hh (H, 4H), c0, h0 (B, H) -> hs, cs (T, B, H), acts (T, B, 4H)."""
    steps, batch, gates = xp.shape
    hidden = gates // 4
    shapes = (
        jax.ShapeDtypeStruct((steps, batch, hidden), jnp.float32),
        jax.ShapeDtypeStruct((steps, batch, hidden), jnp.float32),
        jax.ShapeDtypeStruct((steps, batch, gates), jnp.float32),
    )
    return jax.ffi.ffi_call("dann_lstm_forward", shapes, vmap_method="sequential")(xp, w_hh, c0, h0)


def backward(w_hh, c0, cs, acts, d_hs, d_c_last, d_h_last):
    """The backward scan: -> d_xp (T, B, 4H), d_c0, d_h0 (B, H)."""
    shapes = (
        jax.ShapeDtypeStruct(acts.shape, jnp.float32),
        jax.ShapeDtypeStruct(c0.shape, jnp.float32),
        jax.ShapeDtypeStruct(c0.shape, jnp.float32),
    )
    return jax.ffi.ffi_call("dann_lstm_backward", shapes, vmap_method="sequential")(
        w_hh, c0, cs, acts, d_hs, d_c_last, d_h_last
    )


def pack(w):
    """A weight (K, 4H) as the sampler's cells read it: (H / WIDTH, K, 4, WIDTH), each block of
    WIDTH hidden units' gate columns one contiguous stream (lstm_cpu.cc's kPack). A generation
    packs once, before its loop."""
    rows, gates = w.shape
    return w.reshape(rows, 4, gates // 4 // WIDTH, WIDTH).transpose(2, 0, 1, 3)


def cell(xp, w_packed, c, h):
    """One step: xp (B, 4H) with the bias added, w_hh packed (`pack`), c, h (B, H) -> new c, h."""
    shapes = (jax.ShapeDtypeStruct(c.shape, jnp.float32), jax.ShapeDtypeStruct(h.shape, jnp.float32))
    return jax.ffi.ffi_call("dann_lstm_cell", shapes, vmap_method="sequential")(xp, w_packed, c, h)


def cell_input(x, w_ih_packed, b, w_hh_packed, c, h):
    """One step of a layer after the first, its input projection folded in: x (B, H_in), w_ih and
    w_hh packed, b (4H,) -> new c, h, as cell(x @ w_ih + b, w_hh, c, h)."""
    shapes = (jax.ShapeDtypeStruct(c.shape, jnp.float32), jax.ShapeDtypeStruct(h.shape, jnp.float32))
    return jax.ffi.ffi_call("dann_lstm_cell_input", shapes, vmap_method="sequential")(
        x, w_ih_packed, b, w_hh_packed, c, h
    )
