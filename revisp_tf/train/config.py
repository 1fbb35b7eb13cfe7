"""Typed experiment configs: dataclasses, YAML applied strictly, `--set a.b=value` overrides.

Loading validates everything before any training starts: an unknown key, a value of the wrong
type or an impossible value is one `ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import yaml

from revisp_tf.checks import check_choice
from revisp_tf.choices import (
    AUGMENTS,
    FRAME_PRIORS,
    GLOBAL_STAGES,
    LAYOUTS,
    OPTIMIZERS,
    PHASE_LOSSES,
    STRATEGIES,
)
from revisp_tf.isp.mask import MASK_RULES
from revisp_tf.losses.yuv_refine import NORMS
from revisp_tf.models.reverse_isp import VARIANTS


class ConfigError(ValueError):
    """A config file or override that cannot be applied."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    variant: str = "dual"  # baseline | single | dual | global (the global stage alone)
    base_filters: int = 64
    depth: int = 4
    mask_rule: str = "luma"  # luma (Y >= 0.978) | max (max(R,G,B) >= 0.99)
    mask_threshold: typing.Optional[float] = None
    init_from: str = ""  # start from these weights: a .keras file of the same architecture, or "shipped"
    # none: the paper's nets | upi: a global stage starting as UPI's default camera | fitted: one fitted
    # in closed form on the training pairs before the nets train (see revisp_tf/global_stage/)
    global_stage: str = "none"
    global_knots: int = 24  # knots of each curve of the global stage
    global_smoothness: float = 1e-3  # ridge on the curves' second differences in the closed-form fit
    # Train the global stage's curves with the nets (false: keep the closed-form fit; SGD on one
    # frame's crops has no smoothness prior, and moves the knots the frame barely covers)
    global_trainable: bool = True
    # Use the white balance and exposure gain make-pairs recorded per frame (meta.json) when every
    # training pair has them: the curves are fitted on balanced RAW, the recorded gains are applied
    # exactly, and the frame-gain prior is fitted on them for frames that come without
    capture_metadata: bool = True
    frame_prior: str = "ridge"  # ridge | mean: that prior (revisp_tf.choices.FRAME_PRIORS)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "folder"  # folder: read train_dir | synthetic: generate pairs into the run directory
    train_dir: str = ""
    val_dir: str = ""  # empty: split train_dir by scene with val_fraction
    layout: str = "aim22"  # aim22 | folder
    sensor: str = "s7"
    crop: int = 504
    batch_size: int = 6
    val_fraction: float = 0.1
    val_images: int = 4  # images written to TensorBoard at each validation
    augment: str = "dihedral"  # dihedral (8 flips/rotations; needs crop + 2 px) | transpose | none
    # Recompress each training crop's RGB as JPEG at a random quality in [low, high] (e.g. [70, 95]),
    # as a camera would; empty: no recompression
    jpeg_quality: tuple[int, ...] = ()
    skip_bad: bool = False
    synthetic_count: int = 96
    synthetic_patch: int = 128


@dataclasses.dataclass(frozen=True)
class LossConfig:
    noe_gamma: typing.Optional[float] = None  # paper eq. 1: gamma before the NOE loss (dual)
    gamma: typing.Optional[float] = None  # single: gamma on all pixels (paper eq. 4 uses 1/3.6)
    yuv_refine_weight: float = 0.0  # sec. 3.6: + weight * YUV bayer loss
    yuv_refine_norm: str = "l1"


@dataclasses.dataclass(frozen=True)
class PhaseConfig:
    epochs: int = 1
    learning_rate: float = 1e-4
    loss: str = "paper"  # paper (eq. 3 / eq. 4 mixes) | l2 | mse_bayer


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"  # adam | adamw
    weight_decay: float = 1e-6
    phases: tuple[PhaseConfig, ...] = (PhaseConfig(200, 1e-4, "paper"), PhaseConfig(20, 1e-5, "l2"))


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    strategy: str = "auto"  # auto | one_device | mirrored | multi_worker
    devices: tuple[str, ...] = ()  # explicit devices for one_device / mirrored; empty = all local GPUs or the CPU
    mixed_precision: bool = False  # mixed_float16 compute, float32 variables (GPUs)
    seed: int = 0
    checkpoint_every_steps: int = 200
    log_every_steps: int = 10
    steps_per_epoch: int = 0  # 0: one pass over the training set
    jit_compile: bool = False  # XLA-compile the training step (then not bit-reproducible: XLA has no deterministic MaxPool gradient)
    # dual: forward and backward of one net, then the other, then one update (the same gradients, one net's
    # activations in memory), wherever the losses separate (see train/objectives.py net_objectives); false: both at once
    sequential_nets: bool = True
    recompute: bool = False  # recompute each U-Net level's activations in the backward pass: less memory, more time


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.optim.phases)


_CHOICES = {
    "model.variant": VARIANTS,
    "model.global_stage": GLOBAL_STAGES,
    "model.frame_prior": FRAME_PRIORS,
    "model.mask_rule": tuple(MASK_RULES),
    "data.source": ("folder", "synthetic"),
    "data.layout": LAYOUTS,
    "data.augment": AUGMENTS,
    "loss.yuv_refine_norm": NORMS,
    "optim.optimizer": OPTIMIZERS,
    "optim.phases.loss": PHASE_LOSSES,
    "runtime.strategy": STRATEGIES,
}
_POSITIVE = {"model.base_filters", "model.depth", "model.global_knots", "data.crop", "data.batch_size", "optim.phases.epochs",
             "optim.phases.learning_rate", "runtime.checkpoint_every_steps", "runtime.log_every_steps",
             "data.synthetic_count", "data.synthetic_patch"}


def _coerce(value, hint, key: str):
    """Checks `value` against the type hint `hint`, converting YAML's forms where lossless."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], key) for v in value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool) or not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build(cls, values, prefix: str = ""):
    """Builds dataclass `cls` from a mapping, rejecting unknown keys by their full name."""
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in fields:
            raise ConfigError(f"unknown config key {key!r}; expected one of {', '.join(fields)}")
        kwargs[name] = _coerce(value, hints[name], key)
    return cls(**kwargs)


def _validate(cfg: ExperimentConfig) -> None:
    def check(key, value):
        generic = "optim.phases." + key.split(".")[-1] if key.startswith("optim.phases.") else key
        if generic in _CHOICES:
            check_choice(key, value, _CHOICES[generic], ConfigError)
        if generic in _POSITIVE and not value > 0:
            raise ConfigError(f"{key}: must be positive, got {value!r}")

    for section in ("model", "data", "loss", "runtime"):
        for f in dataclasses.fields(getattr(cfg, section)):
            check(f"{section}.{f.name}", getattr(getattr(cfg, section), f.name))
    for i, phase in enumerate(cfg.optim.phases):
        for f in dataclasses.fields(phase):
            check(f"optim.phases.{i}.{f.name}", getattr(phase, f.name))
    if not cfg.optim.phases and cfg.model.variant != "global":
        raise ConfigError("optim.phases: need at least one phase (only the global variant can be fitted alone)")
    if cfg.model.variant == "global" and cfg.model.global_stage == "none":
        raise ConfigError("model.global_stage: the global variant is the global stage alone; choose upi or fitted")
    if cfg.runtime.recompute and cfg.model.variant == "global":
        raise ConfigError("runtime.recompute: the global variant has no U-Net whose activations could be recomputed")
    if cfg.model.variant == "baseline" and cfg.model.global_stage != "none":
        raise ConfigError("model.global_stage: the baseline variant (the paper's plain U-Net) takes no global stage")
    q = cfg.data.jpeg_quality
    if q and not (len(q) == 2 and 1 <= q[0] <= q[1] <= 100):
        raise ConfigError(f"data.jpeg_quality: expected [low, high] with 1 <= low <= high <= 100, or [], got {list(q)}")
    if cfg.model.global_knots < 3:
        raise ConfigError(f"model.global_knots: need at least 3 knots, got {cfg.model.global_knots}")
    if cfg.data.crop % 2:
        raise ConfigError(f"data.crop: must be even (whole bayer tiles), got {cfg.data.crop}")
    if cfg.data.source == "folder" and not cfg.data.train_dir:
        raise ConfigError("data.train_dir: required when data.source is 'folder'")
    if cfg.model.variant in ("baseline", "global") and any(p.loss == "paper" for p in cfg.optim.phases):
        raise ConfigError(f"optim.phases: the {cfg.model.variant} variant has no perceptual loss; use loss mse_bayer or l2")
    for name in ("noe_gamma", "gamma"):
        g = getattr(cfg.loss, name)
        if g is not None and not 0 < g <= 1:
            raise ConfigError(f"loss.{name}: expected a value in (0, 1] or null, got {g}")


def _index(node: list, k: str, dotted: str, upto: str) -> int:
    """`k` as an index into the list `node`, or a ConfigError naming the key."""
    if not k.isdigit() or int(k) >= len(node):
        raise ConfigError(f"--set {dotted}: {upto} is not an index of the list (0..{len(node) - 1})")
    return int(k)


def _set(tree: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = tree
    for i, k in enumerate(keys[:-1]):
        upto = ".".join(keys[: i + 1])
        if isinstance(node, list):
            node = node[_index(node, k, dotted, upto)]
        else:
            node = node.setdefault(k, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"--set {dotted}: {upto} is not a section")
    if isinstance(node, list):
        node[_index(node, keys[-1], dotted, dotted)] = value
    else:
        node[keys[-1]] = value


def to_dict(cfg) -> dict:
    """The resolved config as plain YAML-able data."""
    return yaml.safe_load(yaml.safe_dump(_plain(dataclasses.asdict(cfg))))


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def parse_config(values: dict, overrides: typing.Sequence[str] = ()) -> ExperimentConfig:
    """Applies `a.b=value` overrides (values parsed as YAML) to a mapping, then builds and validates."""
    tree = to_dict(_build(ExperimentConfig, values or {}))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optim.phases.0.epochs=3")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key.strip()}: {raw!r} is not a YAML value ({e.__class__.__name__})") from None
        _set(tree, key.strip(), value)
    cfg = _build(ExperimentConfig, tree)
    _validate(cfg)
    return cfg


def load_config(path, overrides: typing.Sequence[str] = ()) -> ExperimentConfig:
    """Reads a YAML experiment strictly and applies overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a YAML text file ({e.__class__.__name__}); expected an experiment YAML") from None
    try:
        return parse_config(values, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dump_config(cfg: ExperimentConfig, path) -> None:
    """Writes the resolved config atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    tmp.replace(path)
