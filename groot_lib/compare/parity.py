"""Parity checks without torch: model parity, preprocessor parity and the precision study, per tag.

Pure comparisons of LeRobot's outputs (a ``pipeline.replay.Replay``) against an original artifact;
``pipeline.consume`` runs LeRobot and calls these. The notebook shows what they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groot_lib.compare.expected_gap import assess, expected_gap
from groot_lib.compare.precision import LEROBOT, ORIGINAL, PrecisionVerdict, study
from groot_lib.compare.stage_diff import StageReport, compare_stages
from groot_lib.compare.action_cells import name_action_cells
from groot_lib.compare.comparison import Comparison, cell_max_abs_delta, compare_close, compare_exact, violation_mask
from groot_lib.core import checkpoint as ckpt
from groot_lib.core.artifact import Artifact
from groot_lib.core.variants import DEFAULT_VARIANT

# Collated tensor names that must match exactly (token-level); the rest within atol/rtol.
EXACT_INPUTS = ("input_ids", "attention_mask", "image_grid_thw", "embodiment_id")
CLOSE_INPUTS = ("pixel_values", "state")


@dataclass
class TagResult:
    tag: str
    layout: ckpt.EmbodimentLayout
    model: Comparison
    preprocessor: list[Comparison]
    lerobot_action: np.ndarray
    original_action: np.ndarray
    noise_mode: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stages: "StageReport | None" = None  # where the models diverge (compare/stage_diff.py); None: not captured
    stages_missing: str = ""  # why there is no stage comparison
    preprocessor_missing: str = ""  # why preprocessor parity could not run (empty ``preprocessor``)
    # LeRobot's model on LeRobot's own inputs vs on the original's: {"max|delta|", "mean|delta|"} or None
    preprocessing_effect: dict | None = None
    # what the robot gets (decoded_parity); None with decoded_missing saying why
    decoded: Comparison | None = None
    decoded_missing: str = ""
    lerobot_decoded: np.ndarray | None = None
    original_decoded: np.ndarray | None = None
    # one training step (compare/training.py): targets, loss and gradients; the recipes side by side
    training: list[Comparison] = field(default_factory=list)
    training_missing: str = ""
    recipe: list[dict] = field(default_factory=list)
    action_losses: tuple | None = None  # (LeRobot's, the original's) per-element action loss, when both ran

    @property
    def first_divergence(self):
        return self.stages.first if self.stages else None

    def divergence(self) -> dict:
        """verdicts.json's first_divergence for this tag, with its state spelled out: "diverges" (and where),
        "none" (every stage compared stayed within rounding) or "not compared" (and why): two different answers
        that must never read alike."""
        if self.stages is None:
            return {"state": "not compared", "why": self.stages_missing}
        first = self.stages.summary()["first_divergence"]
        if first is None:
            return {"state": "none", "stages compared": len(self.stages.rows)}
        return {"state": "diverges", **first}

    @property
    def shows_stages(self) -> bool:
        """Its stage table and profile are shown: model parity fails or is SUSPECT, or a stage is above rounding."""
        return self.stages is not None and (not self.model.passed or self.model.suspect
                                            or self.first_divergence is not None)

    @property
    def comparisons(self) -> list[Comparison]:
        return [self.model, *self.preprocessor, *([self.decoded] if self.decoded else []), *self.training]

    def training_heatmap_data(self) -> dict:
        """|delta| max over batch of the per-element action loss on (horizon x named action dims), or {}."""
        loss = next((c for c in self.training if c.name == "action_loss"), None)
        if loss is None or self.action_losses is None or not loss.comparable or not loss.n_total:
            return {}
        ours, theirs = self.action_losses
        return {"delta_hd": cell_max_abs_delta(ours, theirs),
                "violations_hd": violation_mask(ours, theirs, loss.atol, loss.rtol).any(axis=0),
                "labels": self.layout.action_labels(theirs.shape[-1]), "check": loss}

    def decoded_heatmap_data(self) -> dict:
        """|delta| max over batch on (valid horizon x named action dims) of the decoded actions, or {}."""
        c = self.decoded
        if c is None or not c.comparable or not c.n_total:
            return {}
        return {"delta_hd": cell_max_abs_delta(self.lerobot_decoded, self.original_decoded),
                "violations_hd": violation_mask(self.lerobot_decoded, self.original_decoded, c.atol, c.rtol).any(axis=0),
                "labels": self.layout.action_labels(self.original_decoded.shape[-1])}

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    def heatmap_data(self) -> dict:
        """|delta| max over batch on (horizon x action dim), violations, and the valid region."""
        shape = self.original_action.shape
        if self.lerobot_action.shape != shape or len(shape) != 3:
            return {}
        if self.layout.action_horizon > shape[1] or self.layout.action_dim > shape[2]:
            return {}  # the embodiment's valid region does not fit: heatmaps() says why
        return {
            "delta_hd": cell_max_abs_delta(self.lerobot_action, self.original_action),
            "violations_hd": violation_mask(self.lerobot_action, self.original_action,
                                            self.model.atol, self.model.rtol).any(axis=0),
            "valid_horizon": self.layout.action_horizon,
            "valid_dim": self.layout.action_dim,
        }


def model_parity(replay, artifact: Artifact, *, atol: float, rtol: float, noise_mode: str,
                 layout: ckpt.EmbodimentLayout | None = None) -> Comparison:
    """LeRobot's full ``action_pred`` (no cropping) against the original's, from the same inputs."""
    comparison = compare_close(replay.action_pred, artifact.action_pred, name="action_pred", atol=atol, rtol=rtol,
                               tag=artifact.embodiment_tag, check="model parity")
    if layout is not None and comparison.comparable and comparison.n_total and replay.action_pred.ndim == 3 \
            and layout.action_horizon <= replay.action_pred.shape[1] and layout.action_dim <= replay.action_pred.shape[2]:
        name_action_cells(comparison, layout, replay.action_pred, artifact.action_pred)
    if comparison.comparable:  # set the gap against what rounding explains for this device pair
        lerobot_device = replay.info.get("provenance", {}).get("device")
        comparison.noise = assess(comparison.max_abs, expected_gap(
            artifact.producer.get("device"), lerobot_device, artifact.producer.get("dtype", "float32")))
    ours, theirs = replay.arrays.get("initial_noise"), artifact.initial_noise
    if noise_mode == "seed" and ours is not None and theirs is not None:
        same = ours.shape == theirs.shape and np.array_equal(ours, theirs)
        comparison.notes.append("seeded initial noise identical to the producer's" if same else
                                "seeded initial noise DIFFERS from the producer's (RNG/device/dtype): use noise_mode='inject'")
    return comparison


DECODED_CHECK = "decoded actions"


def decoded_parity(replay, artifact: Artifact, *, atol: float, rtol: float,
                   layout: ckpt.EmbodimentLayout) -> tuple[Comparison | None, str]:
    """What the robot gets: LeRobot's postprocessor vs the original policy's ``decode_action``, both on the
    original's ``action_pred`` (so only decoding differs), in the embodiment's units, worst elements named by
    action group. (None, why) when either side has nothing to compare."""
    tag, theirs = artifact.embodiment_tag, artifact.decoded_action
    if theirs is None:
        why = artifact.extra.get("decode_error")
        if why:
            return None, f"the original's decode_action raised: {why}"
        return None, ("the original's file records no decoded actions" + (
            " (LeRobot's dump records neither them nor the raw state they need)" if artifact.extra.get("upstream")
            else " (recorded before groot_lib decoded them)") + ": run the original live to compare them")
    error, ours = replay.decode_error, replay.decoded
    if error is not None or ours is None:
        c = compare_exact(np.zeros(0), theirs, name="action", tag=tag, check=DECODED_CHECK)
        c.passed, c.reason = False, (f"LeRobot's postprocessor raised {error}" if error is not None else
                                     "LeRobot's replay has no decoded actions (stored before groot_lib decoded them)")
        return c, ""
    c = compare_close(ours, theirs, name="action", atol=atol, rtol=rtol, tag=tag, check=DECODED_CHECK)
    if not c.comparable and ours.shape == artifact.action_pred.shape and np.array_equal(ours, artifact.action_pred):
        c.reason = (f"LeRobot's postprocessor returned action_pred unchanged {ours.shape}: still normalised and "
                    f"padded, where the original decodes it to {theirs.shape} in the embodiment's units")
    elif c.comparable and c.n_total:
        name_action_cells(c, layout, ours, theirs)
        if not c.passed and ours.shape[-1] == layout.action_dim:
            c.notes.append(_groups_differing(layout, ours, theirs, atol=atol, rtol=rtol))
    transform, configured = replay.decoded_configured or (None, None)
    if configured is not None and configured.shape == ours.shape:
        changed = np.abs(configured.astype(np.float64) - ours)
        dims = sorted({layout.action_labels(ours.shape[-1])[i] for i in np.nonzero(changed.max(axis=(0, 1)))[0]})
        if dims:
            c.notes.append(f"LeRobot's default postprocessor (action_decode_transform='auto') adds its "
                           f"{transform!r} environment transform for {tag}, changing "
                           f"{', '.join(dims)} by up to {float(changed.max()):.3g}; NVIDIA applies that convention in "
                           "its rollout wrapper, not the policy, so this check compares the policy-level decode")
    return c, ""


def _groups_differing(layout: ckpt.EmbodimentLayout, ours, theirs, *, atol: float, rtol: float) -> str:
    """Which action groups a decoded-action failure lies in (max |delta| each), and which decode identically."""
    bad, good, start = [], [], 0
    for group, size in layout.action_dims.items():
        a, e = ours[..., start:start + size], theirs[..., start:start + size]
        start += size
        if violation_mask(a, e, atol, rtol).any():
            bad.append(f"{group} (max |delta| {float(np.nanmax(np.abs(a.astype(np.float64) - e))):.3g})")
        else:
            good.append(group)
    return f"outside tolerance in {', '.join(bad)}; within it: {', '.join(good) or '-'}"


def stage_parity(replay, artifact: Artifact) -> tuple[StageReport | None, str]:
    """The named stages of both runs compared in firing order, or (None, why not)."""
    if not artifact.stages:
        return None, (f"{artifact.path.name} has no stage capture (STAGE_MB=0, or recorded before groot_lib "
                      "captured stages); re-run the original live to localise a divergence")
    if not replay.stages:
        return None, ("model parity holds: LeRobot's stages were not compared (STAGES=auto; STAGES=all compares "
                      "every tag)" if replay.info.get("stages") == "auto" else
                      "LeRobot's replay has no stage capture (STAGES=off or STAGE_MB=0)")
    return compare_stages(artifact.stages, replay.stages, original_device=artifact.producer.get("device"),
                          lerobot_device=replay.info.get("provenance", {}).get("device"),
                          dtype=artifact.producer.get("dtype", "float32"), reruns=replay.reruns,
                          original_inputs=artifact.inputs), ""


def preprocessor_parity(replay, artifact: Artifact, *, atol: float, rtol: float,
                        layout: ckpt.EmbodimentLayout | None = None, statistics: dict | None = None,
                        decode=None) -> list[Comparison]:
    """LeRobot's own preprocessor on the raw observations vs the original's collated inputs; a failing
    tensor gets ``details`` in words (compare/inputs.py) when the layout is known."""
    ours = replay.preprocessed
    theirs = {k.split(".", 1)[1] if k.startswith("inputs.") else k: v for k, v in artifact.inputs.items()}
    tag = artifact.embodiment_tag
    results = []
    for name in EXACT_INPUTS + CLOSE_INPUTS:
        if name not in theirs:
            continue
        if name not in ours:
            c = compare_exact(np.zeros(0), theirs[name], name=name, tag=tag, check="preprocessor parity")
            c.passed, c.reason = False, f"LeRobot's preprocessor produced no {name!r}"
        elif name in EXACT_INPUTS:
            c = compare_exact(ours[name], theirs[name], name=name, tag=tag, check="preprocessor parity")
        else:
            c = compare_close(ours[name], theirs[name], name=name, atol=atol, rtol=rtol, tag=tag,
                              check="preprocessor parity")
        if not c.passed and layout is not None and name in ours:
            c.details = _input_details(name, ours, theirs, layout, statistics or {}, artifact.raw, decode)
        results.append(c)
    extra_ours = sorted(set(ours) - set(theirs))
    extra_theirs = sorted(set(theirs) - set(ours))
    if results and (extra_ours or extra_theirs):
        results[0].notes.append(f"extra keys: LeRobot only {extra_ours or '-'}; original only {extra_theirs or '-'}")
    return results


def _input_details(name: str, ours: dict, theirs: dict, layout, statistics: dict, raw: dict, decode) -> list[dict]:
    from groot_lib.compare import inputs

    if name == "state":
        return inputs.state_elements(layout, statistics, raw, ours[name], theirs[name])
    if name in ("input_ids", "attention_mask"):
        return inputs.token_alignment(ours["input_ids"], theirs["input_ids"], ours.get("attention_mask"),
                                      theirs.get("attention_mask"), decode=decode)
    if name in ("pixel_values", "image_grid_thw") and "image_grid_thw" in ours and "image_grid_thw" in theirs:
        names = inputs.view_names(layout, len(theirs.get("input_ids", [])), len(theirs["image_grid_thw"]))
        return inputs.view_differences(ours["pixel_values"], theirs["pixel_values"], ours["image_grid_thw"],
                                       theirs["image_grid_thw"], names)
    return []


def precision_study(replays, artifacts: dict[str, dict[str, Artifact]], variants: list[str], *,
                    layouts: dict[str, ckpt.EmbodimentLayout], k: float) -> list[PrecisionVerdict]:
    """Per tag and low-precision variant: the four gaps and the k x noise-floor verdict."""
    verdicts = []
    for variant in variants:
        if variant == DEFAULT_VARIANT or variant in replays.refused:
            continue
        for tag, ref in artifacts[DEFAULT_VARIANT].items():
            runs = {(ORIGINAL, DEFAULT_VARIANT): ref.action_pred}
            if (tag, DEFAULT_VARIANT) in replays.replays:
                reference = replays.replays[(tag, DEFAULT_VARIANT)].arrays
                runs[(LEROBOT, DEFAULT_VARIANT)] = reference.get("study_pred", reference["action_pred"])
            if tag in artifacts.get(variant, {}):
                runs[(ORIGINAL, variant)] = artifacts[variant][tag].action_pred
            if (tag, variant) in replays.replays:
                runs[(LEROBOT, variant)] = replays.replays[(tag, variant)].action_pred
            verdicts.append(study(tag, variant, runs, k=k, valid_horizon=layouts[tag].action_horizon,
                                  valid_dim=layouts[tag].action_dim))
    return verdicts


def heatmap_title(tag: str, model: Comparison) -> str:
    """'<tag>: model parity PASS|FAIL|SUSPECT', with how far above rounding a SUSPECT gap sits."""
    flag = f" ({model.noise.ratio:.3g}x the gap rounding explains)" if model.suspect else ""
    return f"{tag}: model parity {model.status}{flag}"
