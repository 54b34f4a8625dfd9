"""Does an artifact made elsewhere fit the checkpoint it is to be judged against? Checked before any kernel starts.

Why: outputs of the original made on another machine (a GPU box, a colleague's run, LeRobot's own dump script)
reach the consumer as files. One from another checkpoint must be refused with what does not fit, not crash a
kernel ("Image features and image tokens do not match") and never PASS. What a file records is checked against
what the checkpoint declares: the tag, the embodiment id, the model's action and state shapes, the cameras,
frames and state groups, the image tokens the backbone expects, and the fingerprint when the file has one.
``attach`` writes the checkpoint identity into files that lack it, after the same checks. numpy + stdlib.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from groot_lib.core import checkpoint as ckpt
from groot_lib.core.artifact import Artifact, find_artifacts, find_variants, load_artifact
from groot_lib.core.atomic import atomic_save_npz
from groot_lib.core.errors import ArtifactError, CheckpointMismatchError


def _backbone_config(checkpoint: Path, hf_home: str | None) -> dict:
    """The backbone's config.json from the HF cache (image token id, merge size), or {} when not cached."""
    model_id = ckpt.read_json(checkpoint / "config.json").get("model_name")
    if not model_id:
        return {}
    cache = ckpt.hub_cache_dir(hf_home, model_id)
    for path in sorted(cache.glob("snapshots/*/config.json")):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return {}


def problems(artifact: Artifact, checkpoint: Path, hf_home: str | None = None) -> list[str]:
    """Everything in ``artifact`` that does not fit ``checkpoint``, each in words (empty: it fits)."""
    checkpoint = Path(checkpoint)
    tag, config = artifact.embodiment_tag, ckpt.read_json(checkpoint / "config.json")
    known = ckpt.embodiment_tags(checkpoint)
    if tag not in known:
        return [f"embodiment tag {tag!r} is not in the checkpoint (it has {known})"]
    layout = ckpt.embodiment_layout(checkpoint, tag)
    found: list[str] = []
    recorded = None if artifact.extra.get("upstream") else artifact.checkpoint.get("fingerprint")  # dumps have none
    expected = ckpt.fingerprint(checkpoint)["fingerprint"]
    if recorded and recorded != expected:
        found.append(f"made from checkpoint fingerprint {recorded}, the checkpoint's is {expected}")
    ids = artifact.inputs.get("inputs.embodiment_id")
    if ids is not None and layout.embodiment_id is not None and set(np.unique(ids).tolist()) != {layout.embodiment_id}:
        found.append(f"embodiment id(s) {sorted(set(np.unique(ids).tolist()))}, the checkpoint's embodiment_id.json "
                     f"maps {tag} to {layout.embodiment_id}")
    action = artifact.action_pred
    want = (config.get("action_horizon"), config.get("max_action_dim"))
    if None not in want and tuple(action.shape[1:]) != want:
        found.append(f"action_pred is {tuple(action.shape)}, the checkpoint's model predicts (batch, {want[0]}, "
                     f"{want[1]}) (config.json action_horizon, max_action_dim)")
    state = artifact.inputs.get("inputs.state")
    if state is not None and config.get("max_state_dim") and state.shape[-1] != config["max_state_dim"]:
        found.append(f"inputs.state has {state.shape[-1]} dims, the checkpoint's max_state_dim is {config['max_state_dim']}")
    decoded = artifact.decoded_action
    if decoded is not None and tuple(decoded.shape[1:]) != (layout.action_horizon, layout.action_dim):
        found.append(f"decoded_action is {tuple(decoded.shape)}, {tag} decodes to (batch, {layout.action_horizon}, "
                     f"{layout.action_dim})")
    found += _raw_problems(artifact, layout)
    found += _image_token_problems(artifact, _backbone_config(checkpoint, hf_home))
    return found


def _raw_problems(artifact: Artifact, layout: ckpt.EmbodimentLayout) -> list[str]:
    """The raw observations' cameras, frames and state groups against the modality config."""
    if not artifact.raw:
        return []
    found = []
    cameras = sorted(k[len("video."):] for k in artifact.raw if k.startswith("video."))
    if cameras != sorted(layout.cameras):
        found.append(f"cameras {cameras}, the modality config lists {sorted(layout.cameras)}")
    frames = {k: v.shape[1] for k, v in artifact.raw.items() if k.startswith("video.")}
    wrong = {k: n for k, n in frames.items() if n != layout.video_horizon}
    if wrong:
        found.append(f"{', '.join(f'{k} has {n} frame(s)' for k, n in wrong.items())}; the modality config asks for "
                     f"{layout.video_horizon}")
    for group, size in layout.state_dims.items():
        value = artifact.raw.get(f"state.{group}")
        if value is None:
            found.append(f"no raw state.{group} (the modality config lists it)")
        elif value.shape[-1] != size:
            found.append(f"raw state.{group} has {value.shape[-1]} dims, statistics.json gives it {size}")
    return found


def _image_token_problems(artifact: Artifact, backbone: dict) -> list[str]:
    """The image placeholder tokens in ``input_ids`` must match the patches the image grid brings: otherwise
    the model stops with "Image features and image tokens do not match"."""
    ids, grid = artifact.inputs.get("inputs.input_ids"), artifact.inputs.get("inputs.image_grid_thw")
    token = backbone.get("image_token_id")
    merge = (backbone.get("vision_config") or {}).get("spatial_merge_size", 2)
    if ids is None or grid is None or token is None:
        return []
    mask = artifact.inputs.get("inputs.attention_mask")
    tokens = int(((ids == token) & (mask.astype(bool) if mask is not None else True)).sum())
    patches = int(np.prod(np.asarray(grid), axis=-1).sum()) // (merge * merge)
    if tokens != patches:
        return [f"input_ids hold {tokens} image token(s) (id {token} in the checkpoint's backbone), the image grid "
                f"brings {patches} merged patch(es): made with another backbone or processor"]
    return []


def check_folder(folder: Path, checkpoint: Path, tags: list[str], *, hf_home: str | None = None,
                 trust_legacy: bool = False) -> list[str]:
    """Every artifact of ``tags`` in ``folder`` (every variant, and the input sweep's cases) against the checkpoint;
    raises
    CheckpointMismatchError naming each file and what does not fit. Returns the files that record no
    checkpoint identity (they fit, and ``attach`` can give them one)."""
    from groot_lib.core.sweep_cases import case_dirs

    unattached, wrong = [], []
    files = [path for variant in find_variants(folder) for tag, path in find_artifacts(folder, variant).items()
             if tag in tags]
    files += [path for case in case_dirs(folder) for tag, path in find_artifacts(case).items() if tag in tags]
    if not files:
        raise ArtifactError(f"{folder} holds no artifact of {', '.join(tags)} (<tag>.npz, <tag>__<variant>.npz, "
                            f"sweep/<case>/<tag>.npz){'' if Path(folder).is_dir() else ': no such folder'}",
                            path=Path(folder))
    for path in files:
        artifact = load_artifact(path, trust_legacy=trust_legacy, require_checkpoint=False)
        issues = problems(artifact, checkpoint, hf_home)
        if issues:
            wrong.append(f"{path.relative_to(folder)}: " + "; ".join(issues))
        elif not artifact.checkpoint.get("fingerprint") and not artifact.extra.get("upstream"):
            unattached.append(str(path.relative_to(folder)))
    if wrong:
        raise CheckpointMismatchError(f"the artifacts in {folder} do not fit the checkpoint {checkpoint}: "
                                      + " | ".join(wrong) + ". Judge them against the checkpoint they were made from "
                                      "(CKPT=...), or run the original on this one")
    return unattached


def attach(folder: Path, checkpoint: Path, *, hf_home: str | None = None) -> list[Path]:
    """Write ``checkpoint``'s identity (meta::checkpoint) into every artifact in ``folder`` that has none, after
    checking every artifact fits it (``check_folder``); files that already name this checkpoint are left as they
    are, files naming another are refused. Atomic per file. Returns the files written."""
    folder, checkpoint = Path(folder), Path(checkpoint)
    tags = ckpt.embodiment_tags(checkpoint)
    unattached = check_folder(folder, checkpoint, tags, hf_home=hf_home)
    identity = {**ckpt.fingerprint(checkpoint),
                "attached": {"by": "groot-parity attach-checkpoint", "path": str(checkpoint),
                             "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    written = []
    for name in unattached:
        path = folder / name
        with np.load(path, allow_pickle=False) as npz:
            members = {k: npz[k] for k in npz.files}
        members["meta::checkpoint"] = np.array(json.dumps(identity, sort_keys=True))
        written.append(atomic_save_npz(path, members))
    return written


def main(argv: list[str] | None = None) -> int:
    """``make attach-checkpoint ARTIFACTS=dir [CKPT=...] [HF_HOME=...]``."""
    import argparse
    import sys

    from groot_lib.core.errors import ParityError
    from groot_lib.tiny import layout as tiny_layout

    parser = argparse.ArgumentParser(prog="make attach-checkpoint", description=main.__doc__)
    parser.add_argument("folder", type=Path, help="a folder of the original's outputs (<tag>.npz, <tag>__<variant>.npz)")
    parser.add_argument("--checkpoint", default=str(tiny_layout.TINY_CHECKPOINT),
                        help="a checkpoint folder or hub id (CKPT=; core/checkpoint.resolve_checkpoint's forms)")
    parser.add_argument("--hf-home", default=None, help="the HF cache holding the checkpoint's backbone")
    args = parser.parse_args(argv)
    hf_home = tiny_layout.hf_home_for(args.checkpoint, args.hf_home) or os.environ.get("HF_HOME")
    try:
        checkpoint = ckpt.resolve_checkpoint(args.checkpoint, hf_home)
        written = attach(args.folder, checkpoint, hf_home=hf_home)
    except ParityError as exc:
        print(f"attach-checkpoint: error: {exc}", file=sys.stderr)
        return 2
    print(f"attach-checkpoint: every artifact in {args.folder} fits {checkpoint}; wrote its identity into "
          f"{len(written)} file(s)" + (f": {', '.join(p.name for p in written)}" if written else
                                        " (all already had it)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
