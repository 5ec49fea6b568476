"""Deterministic stand-ins for a Sampler, for tests that check lm-eval plumbing without a model."""

import json
from pathlib import Path

from varreason.backends.base import Completion, Rollouts
from varreason.config import PromptConfig
from varreason.eval.questions import BOXED_INSTRUCTION

DATA = Path(__file__).resolve().parents[3] / "varreason" / "eval" / "data"
# What params.yaml's eval and prompt sections give run_lm_eval / resolve_tasks (the tiny profile's values).
SAMPLING = {"temperature": 0.7, "top_p": 1.0}
STOP = "<|end_of_solution|>"
PROMPT = PromptConfig(reasoner="<|im_start|>{question}<|im_end|><|begin_of_thought|>",
                      posterior="<|im_start|>{question}=?{hint}<|im_end|><|begin_of_thought|>")


class RecordingSampler:
    """Returns ``"<prompt>|<seed>|<j>"``; records every call."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, params, seeds):
        self.calls.append((list(prompts), params, list(seeds)))
        return Rollouts([[Completion(f"{p}|{s}|{j}", [], [], [], "stop") for j in range(params.n)]
                         for p, s in zip(prompts, seeds)], n_generated=len(prompts) * params.n)

    def sync_weights(self, checkpoint):
        pass


class OracleSampler:
    """Answers from the gold: even samples box the right answer in a solution block, odd samples give no box
    (so avg@n = 1/2 and half the samples are "prediction unparseable" when n is even)."""

    def __init__(self, arith_answers: dict[str, str] | None = None):
        self.answers = dict(arith_answers or {})
        for f in ("math500", "aime24", "aime25", "amc23"):
            for line in (DATA / f"{f}.jsonl").read_text().splitlines():
                r = json.loads(line)
                self.answers[r["problem"]] = r["answer"]

    def _question(self, prompt: str) -> str:
        head = "<|im_start|>user\n" if "<|im_start|>user\n" in prompt else "<|im_start|>"
        q = prompt.split(head, 1)[1].split("<|im_end|>", 1)[0]
        return q[len(BOXED_INSTRUCTION) + 1:] if q.startswith(BOXED_INSTRUCTION) else q

    def generate(self, prompts, params, seeds):
        out = []
        for p in prompts:
            ans = self.answers[self._question(p)]
            good = f"steps<|end_of_thought|>\n\n<|begin_of_solution|>so \\boxed{{{ans}}}"
            out.append([Completion(good if j % 2 == 0 else "no idea", [], [], [], "stop") for j in range(params.n)])
        return Rollouts(out, n_generated=0)

    def sync_weights(self, checkpoint):
        pass


class ScriptedSampler:
    """Answers by lookup: ``script[key]`` is the list of responses of the question whose prompt contains ``key``;
    sample j gets response ``j % len``. For the hub-suite tests, where the graded outcome of every sample is known
    by hand."""

    def __init__(self, script: dict[str, list[str]]):
        self.script = script

    def generate(self, prompts, params, seeds):
        out = []
        for p in prompts:
            keys = [k for k in self.script if k in p]
            assert len(keys) == 1, (keys, p[-200:])
            rs = self.script[keys[0]]
            out.append([Completion(rs[j % len(rs)], [], [], [], "stop") for j in range(params.n)])
        return Rollouts(out, n_generated=0)

    def sync_weights(self, checkpoint):
        pass
