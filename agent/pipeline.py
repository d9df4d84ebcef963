"""The whole pipeline: generate -> extract -> cluster -> evaluate -> agent, one call per question.

`Explainer` keeps the subject model and the agent's LLM backend alive between questions (the
vLLM engine starts once per process), so the CLI, the batch annotator and the UI share it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

from agent.backends import Backend, get_backend
from agent.explanation import Explanation
from agent.facts import build_facts, template
from agent.graph import RationaleAgent
from clustering import ClusterConfig, cluster
from evaluation.faithfulness import cluster_faithfulness
from extraction import CaptureConfig, InputError, capture, generate, load_model
from extraction.loading import LoadedModel


class Explainer:
    def __init__(
        self,
        model: str = "smollm2-135m",
        backend: str | Backend = "auto",
        agent_model: str = "smollm2-135m",
        max_llm_clusters: int = 4,
        max_rounds: int = 2,
        capture_config: CaptureConfig = CaptureConfig(),
        cluster_config: ClusterConfig = ClusterConfig(),
        trust_remote_code: bool = False,
        download: bool = False,
    ):
        started = time.perf_counter()
        self.lm: LoadedModel = load_model(model, trust_remote_code=trust_remote_code, download=download)
        if self.lm.architecture.kind != "causal":
            raise InputError(
                f"{model} is an encoder: it gives no answer to explain; use `attnlens extract` for its attention"
            )
        self.backend = get_backend(backend, model=agent_model) if isinstance(backend, str) else backend
        self.agent = RationaleAgent(self.backend, max_rounds=max_rounds)
        self.max_llm_clusters = max_llm_clusters
        self.capture_config, self.cluster_config = capture_config, cluster_config
        self.startup_seconds = time.perf_counter() - started

    def explain(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 32,
        seed: int | None = None,
        truncate: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> Explanation:
        step = progress or (lambda stage: None)
        timings = {}

        def timed(stage: str, fn):
            step(stage)
            started = time.perf_counter()
            result = fn()
            timings[stage] = time.perf_counter() - started
            return result

        gen = timed("generate", lambda: generate(self.lm, prompt, max_new_tokens=max_new_tokens, seed=seed, truncate=truncate))
        if not gen.answer.strip():
            raise InputError("the model's answer is empty: there is nothing to explain")
        record = timed("extract", lambda: capture(self.lm, gen, self.capture_config))
        clustering = timed("cluster", lambda: cluster(record, self.cluster_config))
        # The random baseline is drawn at the size of the first cluster given: put first the most
        # important cluster that has prompt tokens to remove (the top one may be all template/answer).
        user = {t.index for t in gen.tokens if t.segment == "user"}
        ranked = [c for c in clustering.clusters if user & set(c.tokens)] or clustering.clusters[:1]
        order = [ranked[0].id] + [c.id for c in clustering.clusters if c.id != ranked[0].id]
        report = timed(
            "evaluate",
            lambda: cluster_faithfulness(self.lm, gen, [clustering.clusters[i].tokens for i in order]),
        )
        report.clusters = [report.clusters[order.index(c.id)] for c in clustering.clusters]
        f0 = report.answer_probability
        deletion = {c.id: (f0, f0 - s.comprehensiveness) for c, s in zip(clustering.clusters, report.clusters) if s.tokens}
        facts = build_facts(record, clustering, deletion)
        sent = facts[: self.max_llm_clusters]
        result = timed("agent", lambda: self.agent.run(sent))
        for f in facts[self.max_llm_clusters :]:
            result.rationales[f.id] = {
                **template(f), "source": "template", "problems": [], "rounds": 0, "sent_to_llm": False,
            }
        for f in sent:
            result.rationales[f.id]["sent_to_llm"] = True
        info = {
            "scored_cluster": ranked[0].id,
            "capture": asdict(self.capture_config),
            "max_llm_clusters": self.max_llm_clusters,
            "ablation": report.ablation,
        }
        return Explanation(record, clustering, result, report.to_dict(), timings, info)

    def close(self) -> None:
        self.backend.close()
