"""Bare seed-style consumer: LeRobot replays the bare producer's inputs, one assert per tag.

The bench's anchor on the LeRobot side: one plain pytest file, no notebooks, plots or
HTML. It lives in bench/, outside ``testpaths`` (``make test`` runs ``pytest tests``),
so only ``make bench`` runs it, with the LeRobot env's interpreter:

    BARE_NPZ=x.npz BARE_CHECKPOINT=DIR BARE_HF_HOME=DIR .envs/lerobot/bin/python -m pytest bench/test_bare_consumer.py

Model load and sampling seconds, and this process's peak RSS, go to ``$BARE_TIMINGS``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

NPZ = os.environ.get("BARE_NPZ")
if not NPZ:
    pytest.skip("bench/test_bare_consumer.py is run by `make bench` (needs BARE_NPZ, BARE_CHECKPOINT, "
                "BARE_HF_HOME)", allow_module_level=True)
CHECKPOINT = Path(os.environ["BARE_CHECKPOINT"]).resolve()
# Before anything imports transformers / huggingface_hub: they read these at import time.
os.environ["HF_HOME"] = str(Path(os.environ["BARE_HF_HOME"]).resolve())
os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ATOL = RTOL = 1e-3

with np.load(NPZ, allow_pickle=False) as _npz:
    PRODUCED = {k: _npz[k] for k in _npz.files}
TAGS = sorted({k.split("::", 1)[0] for k in PRODUCED})
TIMINGS: dict = {"tags": TAGS, "sample": {}}


@pytest.fixture(scope="module")
def policy():
    """One LeRobot model for every tag (its weights do not depend on the tag)."""
    from groot_lib.core import checkpoint as ckpt
    from groot_lib.backends import lerobot as lb
    from groot_lib.core import runinfo
    from groot_lib.core.variants import get_variant

    start = time.perf_counter()
    with lb.load(CHECKPOINT, ckpt.embodiment_layout(CHECKPOINT, TAGS[0]), variant=get_variant("fp32-sdpa"),
                 device="cpu") as bundle:
        TIMINGS["load"] = time.perf_counter() - start
        yield bundle
    TIMINGS["model_seconds"] = TIMINGS["load"] + sum(TIMINGS["sample"].values())
    TIMINGS["peak_rss_mb"] = runinfo.peak_rss_mb()
    if os.environ.get("BARE_TIMINGS"):
        Path(os.environ["BARE_TIMINGS"]).write_text(json.dumps(TIMINGS, indent=2) + "\n")


@pytest.mark.parametrize("tag", TAGS)
def test_action_pred_matches_original(policy, tag):
    from groot_lib.backends import lerobot as lb

    prefix = f"{tag}::in::"
    inputs = {k[len(prefix):]: v for k, v in PRODUCED.items() if k.startswith(prefix)}
    start = time.perf_counter()
    ours = lb.sample(policy, inputs, seed=int(os.environ.get("BARE_SEED", "0")))["action_pred"]
    TIMINGS["sample"][tag] = time.perf_counter() - start
    np.testing.assert_allclose(ours, PRODUCED[f"{tag}::out::action_pred"], atol=ATOL, rtol=RTOL,
                               err_msg=f"{tag}: LeRobot action_pred differs from the original's")
