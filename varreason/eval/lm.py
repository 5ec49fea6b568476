"""``VarReasonLM``: an lm-eval ``LM`` over the project's ``Sampler`` (HF on CPU, vLLM on GPU), so benchmarks
are sampled by the same engine as the EM loop. Pass an instance to ``lm_eval.simple_evaluate(model=lm)``.

Only ``generate_until`` is implemented. lm-eval hands a task's ``repeats`` as the same request repeated n times;
identical requests are grouped into one prompt with ``n`` samples, and prompt i's seed is
``stable_seed(seed, task, doc_id, sha(context))``, so a question's samples do not depend on batching, on
``limit`` or on which other tasks run, and two evaluations with the same seed are identical. Requests without
a task/doc id (direct calls) are keyed by their context alone.

The prompt is the profile's: each request's context (the task's question, ``questions``) goes into
``prompt.reasoner`` through ``varreason.prompts.reasoner_prompt``, the function that builds training prompts, so
training and evaluation cannot use different chat formats. Without a prompt config the context is sent as is.

Decoding: ``do_sample: false`` or ``temperature: 0`` becomes greedy (a one-token nucleus); output is cut at
the first ``until`` string (the sampler already stops on the stop tokens; the cut covers stops that a
tokenizer splits differently mid-text).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from lm_eval.api.model import LM

from varreason.backends.base import Sampler, SamplingParams, stable_seed
from varreason.config import PromptConfig
from varreason.faults import fault_point
from varreason.prompts import reasoner_prompt


def cut_at_stop(text: str, until: tuple[str, ...]) -> str:
    cuts = [text.index(s) for s in until if s and s in text]
    return text[: min(cuts)] if cuts else text


class VarReasonLM(LM):
    """lm-eval model over a ``Sampler``, prompting in ``prompt.reasoner``. ``max_new_tokens`` applies when a task
    sets no ``max_gen_toks``."""

    def __init__(self, sampler: Sampler, prompt: PromptConfig | None = None, seed: int = 0, max_new_tokens: int = 256,
                 engine: str = "hf"):
        super().__init__()
        self.sampler, self.seed, self.max_new_tokens, self.engine = sampler, seed, max_new_tokens, engine
        self.prompt = prompt
        self.n_generated = 0  # sampled tokens over all calls (cost accounting)

    def _params(self, gen_kwargs: dict, n: int) -> SamplingParams:
        kw = dict(gen_kwargs)
        until = kw.pop("until", None) or ()
        until = (until,) if isinstance(until, str) else tuple(until)
        temperature = float(kw.pop("temperature", 1.0))
        top_p = float(kw.pop("top_p", 1.0))
        if not kw.pop("do_sample", True) or temperature == 0.0:
            temperature, top_p = 1.0, 1e-9  # greedy: the nucleus keeps only the top token
        max_new = int(kw.pop("max_gen_toks", self.max_new_tokens))
        kw.pop("seed", None)
        if kw:
            raise ValueError(f"VarReasonLM does not support generation_kwargs {sorted(kw)}; "
                             "supported: until, temperature, top_p, do_sample, max_gen_toks")
        return SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new, stop=until)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        # group identical requests (lm-eval's repeats) -> one prompt with n samples
        groups: dict[tuple, list[int]] = defaultdict(list)
        for pos, req in enumerate(requests):
            context, gen_kwargs = req.args
            if self.prompt is not None:
                context = reasoner_prompt(self.prompt, context)
            key = (req.task_name, req.doc_id, context, repr(sorted(gen_kwargs.items())))
            groups[key].append(pos)
        # prompts sharing sampling params and n go to the sampler together
        batches: dict[SamplingParams, list[tuple]] = defaultdict(list)
        for key, positions in groups.items():
            params = self._params(requests[positions[0]].args[1], len(positions))
            batches[params].append(key)
        out: list[str | None] = [None] * len(requests)
        for params, keys in batches.items():
            prompts = [k[2] for k in keys]
            seeds = [stable_seed(self.seed, k[0], k[1], hashlib.sha256(k[2].encode()).hexdigest()[:16])
                     for k in keys]
            res = self.sampler.generate(prompts, params, seeds)
            fault_point("eval-generate")
            self.n_generated += res.n_generated
            for key, comps in zip(keys, res.completions):
                for pos, comp in zip(groups[key], comps):
                    out[pos] = cut_at_stop(comp.text, params.stop)
        return out  # type: ignore[return-value]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("VarReasonLM only generates (generate_until); loglikelihood tasks need "
                                  "lm-eval's own 'hf' model type: simple_evaluate(model='hf', ...)")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("VarReasonLM only generates (generate_until); perplexity tasks need "
                                  "lm-eval's own 'hf' model type: simple_evaluate(model='hf', ...)")
