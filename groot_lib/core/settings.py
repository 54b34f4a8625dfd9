"""Every knob of a report in one place: its default, environment variable, make variable, help and check.

Why: a setting spelled in ten places drifts (a default here, a different one there, an env var
only one side reads). Each ``Knob`` owns its definition; the CLI flags, the effective settings a
report records, and the validation that runs before any kernel starts all derive from ``KNOBS``.
Precedence: an explicit value (flag / notebook parameter) > the environment variable > the default.
stdlib only: the tools env validates without importing torch.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from groot_lib.core.errors import SettingError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
NOISE_MODES = ("seed", "inject")
RECORDINGS = ("cpu", "cuda")
SCHEDULES = ("auto", "overlap", "sequential")
STAGE_MODES = ("auto", "all", "off")  # how far stage localisation goes (the stages knob)


def _text(value: str) -> str:
    return str(value).strip()


def _int(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected an integer >= {minimum}") from None
        if number < minimum:
            raise ValueError(f"expected an integer >= {minimum}")
        return number
    return parse


def _float(*, positive: bool) -> Callable[[Any], float]:
    expected = "a finite number > 0" if positive else "a finite number >= 0"

    def parse(value: Any) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"expected {expected}") from None
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            raise ValueError(f"expected {expected}")
        return number
    return parse


def _device(value: Any) -> str:
    device = str(value).strip() or "auto"
    if not DEVICE_PATTERN.match(device):
        raise ValueError("expected auto, cpu, cuda or cuda:N")
    return device


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        which = str(value).strip()
        if which not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return which
    return parse


def _variants(value: Any) -> str:
    from groot_lib.core.variants import DEFAULT_VARIANT, VARIANTS

    names = [v.strip() for v in str(value).split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if not names or unknown:
        raise ValueError(f"expected a comma list of known variants ({', '.join(VARIANTS)})"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    if DEFAULT_VARIANT not in names:  # the consumer judges every other variant against it (the precision study)
        raise ValueError(f"expected {DEFAULT_VARIANT} among them: it is the parity reference every other variant is "
                         f"judged against (e.g. {DEFAULT_VARIANT},{names[0]})")
    return ",".join(dict.fromkeys([DEFAULT_VARIANT, *names]))


def _flag(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1 or 0 (true/false, yes/no)")


def _tags(value: Any) -> str:
    return ",".join(t.strip() for t in str(value).split(",") if t.strip())


@dataclass(frozen=True)
class Knob:
    name: str  # CLI flag (--name-with-dashes), notebook parameter, key in a report's settings
    default: Any
    parse: Callable[[Any], Any]  # raises ValueError("expected ...")
    help: str
    make: str | None = None  # the Makefile variable
    env: str | None = None  # environment variable read when no explicit value is given
    sides: tuple[str, ...] = ("producer", "consumer")  # which notebooks take it as a parameter
    make_from_shell: bool = True  # False: the make variable counts only given on make's command line (HF_HOME)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def resolve(self, given: Any) -> tuple[Any, str]:
        """(validated value, where it came from); raises SettingError naming the knob and the source."""
        if given not in (None, ""):
            source, raw = f"{self.flag}" + (f" / {self.make}=" if self.make else ""), given
        elif self.env and os.environ.get(self.env, "").strip():
            source, raw = f"${self.env}", os.environ[self.env]
        else:
            return self.default, "default"
        try:
            return self.parse(raw), source
        except ValueError as exc:
            raise SettingError(f"{self.name} = {raw!r} (from {source}): {exc}. {self.help}") from None


KNOBS: tuple[Knob, ...] = (
    Knob("checkpoint", None, _text, "A raw GR00T N1.7 checkpoint folder (an existing path wins), or a hub id "
         "owner/name[/subfolder][@branch|tag|commit] (e.g. nvidia/GR00T-N1.7-LIBERO/libero_10), read from the HF "
         "cache, else downloaded (that subfolder only) unless HF_HUB_OFFLINE is set; empty is the embedded tiny "
         "default.", make="CKPT", env="GROOT_N1_7_LIBERO_CKPT"),
    Knob("hf_home", None, _text, "The HF cache holding the checkpoint's backbone; empty is the tiny default's "
         "isolated cache, else $HF_HOME.", make="HF_HOME", make_from_shell=False),
    Knob("tags", "", _tags, "Comma-separated embodiment tags; empty is every tag of the checkpoint.", make="TAGS"),
    Knob("seed", 0, _int(0), "Seed of the flow-matching sampler and of the observations.", make="SEED", sides=("producer",)),
    Knob("batch_size", 2, _int(1), "Observations per embodiment.", make="BATCH", sides=("producer",)),
    Knob("atol", 1e-3, _float(positive=False), "Verdict: |delta| <= atol + rtol*|reference|.", make="ATOL",
         env="GROOT_PARITY_ATOL", sides=("consumer",)),
    Knob("rtol", 1e-3, _float(positive=False), "Verdict: |delta| <= atol + rtol*|reference|.", make="RTOL",
         env="GROOT_PARITY_RTOL", sides=("consumer",)),
    Knob("device", "auto", _device, "auto (cuda when available), cpu, cuda or cuda:N; both sides.", make="DEVICE",
         env="GROOT_PARITY_DEVICE"),
    Knob("variants", "fp32-sdpa,bf16-sdpa", _variants, "Precision/attention variants: fp32 parity plus the "
         "precision study.", make="VARIANTS", sides=("producer",)),
    Knob("noise_mode", "seed", _one_of(NOISE_MODES), "seed: reseed before sampling; inject: replay the producer's "
         "recorded initial noise (use it across devices).", make="NOISE_MODE", sides=("consumer",)),
    Knob("recordings", "cpu", _one_of(RECORDINGS), "Without gr00t, which committed recordings of the original serve the "
         "tiny default: cpu, or cuda (recorded on a GPU; a CPU LeRobot then needs NOISE_MODE=inject).",
         make="RECORDINGS", sides=("producer",)),
    Knob("stages", "auto", _one_of(STAGE_MODES), "Stage localisation: auto records the original's named stages and "
         "compares LeRobot's (and re-runs them) for the tags whose model parity fails or is SUSPECT; all: every tag; "
         "off: none.", make="STAGES", env="GROOT_PARITY_STAGES"),
    Knob("stage_mb", 256, _int(0), "MiB per tag for the named-stage capture that says where a divergence starts "
         "(stage outputs, and the original's stage inputs); past it the capture stops, saying where. 0: off.",
         make="STAGE_MB", env="GROOT_PARITY_STAGE_MB"),
    Knob("schedule", "auto", _one_of(SCHEDULES), "auto: run the two kernels at once when one model at a time fits beside the other "
         "kernel, else one after the other (core/memory.py says why); overlap or sequential force it.", make="SCHEDULE", sides=()),
    Knob("memory_gb", 0.0, _float(positive=False), "Memory the scheduler may plan with, in GB; 0 reads the "
         "machine's available memory.", make="MEMORY_GB", env="GROOT_PARITY_MEMORY_GB", sides=()),
    Knob("sweep", 0, _int(0), "Observations per embodiment beyond the fixed one, each stressing other inputs "
         "(prompt lengths and scripts, batch 1 and 3-4, structured images at real camera resolutions, states at and "
         "outside the range; core/sweep_cases.py); 0: none.", make="SWEEP", env="GROOT_PARITY_SWEEP", sides=("producer",)),
    Knob("sweep_from", 0, _int(0), "The input sweep's first case: SWEEP=N runs cases SWEEP_FROM .. SWEEP_FROM+N-1, so "
         "a matrix can split one long sweep into shards (axes: {sweep_from: [0, 16, 32, 48]}, fixed: {sweep: 16}).",
         make="SWEEP_FROM", env="GROOT_PARITY_SWEEP_FROM", sides=("producer",)),
    Knob("train", False, _flag, "1: also compare one training step per tag (the target encoding, loss, action loss "
         "and every trainable parameter's gradient on the same inputs and random draws, and each side's fine-tuning "
         "recipe; compare/training.py); 0: inference only. Recordings without gr00t: references/tiny-train "
         "(ARTIFACTS=references/tiny-train).", make="TRAIN", env="GROOT_PARITY_TRAIN"),
    Knob("train_update", False, _flag, "With TRAIN=1, 1: also take one optimizer step on each side with its own recipe's "
         "optimizer (AdamW, gradients clipped, at the peak learning rate) and compare the weight changes.",
         make="TRAIN_UPDATE", env="GROOT_PARITY_TRAIN_UPDATE"),
    Knob("artifacts", None, _text, "A folder of the original's outputs to judge instead of running the producer: "
         "groot-parity artifacts, or LeRobot's own dumps (original_n1_7_<tag>.npz from its dump_original_n1_7.py; "
         "they need trust_legacy).", make="ARTIFACTS", env="GROOT_N1_7_PARITY_DIR", sides=()),
    Knob("trust_legacy", False, _flag, "1: open LeRobot's dump_original_n1_7.py files, whose pickled dtype lists "
         "could run code when read; only for files you made.", make="TRUST_LEGACY", sides=("consumer",)),
    Knob("precision_k", 2.0, _float(positive=True), "Precision verdict: cross gap <= k x the larger noise floor.",
         make="PRECISION_K", env="GROOT_PARITY_PRECISION_K", sides=("consumer",)),
)
BY_NAME = {knob.name: knob for knob in KNOBS}


def resolve(given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validated effective settings and where each came from; unknown names are an error."""
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        raise SettingError(f"unknown setting(s) {unknown}; known: {', '.join(BY_NAME)}")
    values, sources = {}, {}
    for knob in KNOBS:
        values[knob.name], sources[knob.name] = knob.resolve(given.get(knob.name))
    return values, sources


def parse_list(value) -> list[str] | None:
    """Notebook/CLI parameters arrive as 'a,b' strings or lists; empty means default."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def for_side(values: dict[str, Any], side: str) -> dict[str, Any]:
    """The resolved values a side's notebook takes as parameters."""
    return {knob.name: values[knob.name] for knob in KNOBS if side in knob.sides}


def default(name: str) -> Any:
    """One knob's default, for the few library signatures that must carry one (the backends' ``sample``)."""
    return BY_NAME[name].default


def value(name: str, given: Any = None) -> Any:
    """One knob's effective, validated value (notebooks call this for parameters they own)."""
    return BY_NAME[name].resolve(given)[0]


class Knobs:
    """One side's knobs, each resolved once (explicit value > environment variable > default) and validated,
    read as attributes (``knobs.seed``). What a notebook hands the library instead of a keyword argument per knob,
    so no library signature spells a default again."""

    def __init__(self, side: str, given: Any = None):
        given = dict(given or {})
        self.side = side
        self._values = {k.name: k.resolve(given.get(k.name))[0] for k in KNOBS if side in k.sides}

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{name!r} is not a knob of the {self.__dict__.get('side')} side "
                             f"(it has {', '.join(values)})")

    def replace(self, **changes: Any) -> "Knobs":
        """The same knobs with ``changes`` (validated like any given value)."""
        return Knobs(self.side, {**self._values, **changes})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    @property
    def tag_list(self) -> list[str] | None:
        """``tags`` as a list; None (every tag of the checkpoint) when empty."""
        return parse_list(self._values.get("tags"))

    def sweep_cases(self) -> range:
        """The input sweep's case indices: SWEEP cases from SWEEP_FROM (empty when SWEEP=0)."""
        first = int(self._values.get("sweep_from") or 0)
        return range(first, first + int(self._values.get("sweep") or 0))


def for_notebook(side: str, namespace: Any = None) -> Knobs:
    """The knobs ``side``'s notebook takes (Knob.sides), read from ``namespace`` (its parameters: ``globals()``)."""
    namespace = namespace or {}
    return Knobs(side, {k.name: namespace.get(k.name) for k in KNOBS if side in k.sides})
