"""The backbone (step a's starting point): a tiny Qwen3 built from scratch or a pretrained checkpoint, saved as
safetensors. A builder of the step table (``varreason.steps``)."""

from __future__ import annotations

from pathlib import Path

from varreason.io import ArtifactRef
from varreason.pipeline.common import timed


def init_backbone(out: Path, c, task: ArtifactRef) -> None:
    """The untrained (tiny) or pretrained backbone as a safetensors checkpoint."""
    from varreason import modeling

    model = c.model
    with timed(out) as st:
        if model.kind == "tiny":
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(task.verify() / "tokenizer")
            net = modeling.build_tiny_model(model, tok, c.seed)
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            with modeling.CONSTRUCT:
                net = AutoModelForCausalLM.from_pretrained(model.name_or_path, use_safetensors=True,
                                                           trust_remote_code=model.trust_remote_code)
            tok = AutoTokenizer.from_pretrained(model.name_or_path, trust_remote_code=model.trust_remote_code)
        modeling.save_checkpoint(net, tok, out)
        st.update(n_params=modeling.n_params(net))
