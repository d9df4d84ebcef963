"""The whole pipeline: generate -> extract -> cluster -> evaluate -> agent, for one question or a batch.

`Explainer` keeps the subject model and the agent's LLM backend alive between questions (the
vLLM engine starts once per process), so the CLI, the batch annotator and the UI share it.
`explain()` is the one-call form: it builds an Explainer, explains, and closes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from attnlens.agent.backends import DEFAULT_AGENT_MODEL, Backend, get_backend
from attnlens.agent.facts import ClusterFacts, Rationale, build_facts, template
from attnlens.agent.graph import AgentResult, RationaleAgent
from attnlens.clustering import ClusterConfig, Clustering, cluster
from attnlens.errors import InputError
from attnlens.evaluation.faithfulness import FaithfulnessReport, verify_clusters
from attnlens.extraction import (
    AttentionRecord, CaptureConfig, Frame, Generation, capture, generate, generate_batch, load_model,
)
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.models import DEFAULT_MODEL, ModelSpec, resolve_model
from attnlens.extraction.words import user_words
from attnlens.pipeline.explanation import Explanation

# An answer with no text (the model stopped, or started a new turn, at once): a wrong answer with
# nothing to explain. Readers count such rows as incorrect (reports.findings' accuracy).
EMPTY_ANSWER = "the model's answer is empty: there is nothing to explain"


def rank_by_effect(clustering: Clustering, report: FaithfulnessReport) -> list[int]:
    """Cluster ids by measured deletion effect (comprehensiveness), largest first; scores break ties."""
    return sorted(
        range(len(clustering.clusters)),
        key=lambda i: (-report.clusters[i].comprehensiveness, -clustering.clusters[i].score, i),
    )


def verify(lm: LoadedModel, record: AttentionRecord, clustering: Clustering, random_draws: int = 8):
    """Delete each cluster's words (one batched pass), then order the clusters by that effect:
    cluster 0 is the one whose deletion hurts the answer most. Returns (clustering, report), both in that order."""
    words = user_words(record.generation)
    report = verify_clusters(lm, record.generation, words, clustering.word_members(words), random_draws=random_draws)
    order = rank_by_effect(clustering, report)
    report.clusters = [report.clusters[i] for i in order]
    return clustering.ranked(order), report


@dataclass
class _Prepared:
    """One case after its deterministic stages, waiting for the (batched) agent."""

    record: AttentionRecord
    clustering: Clustering
    report: FaithfulnessReport
    facts: list[ClusterFacts]
    timings: dict[str, float]


class Explainer:
    def __init__(
        self,
        model: str | ModelSpec = DEFAULT_MODEL,
        backend: str | Backend | None = "auto",  # None: templates only (max_llm_clusters=0)
        agent_model: str | ModelSpec = DEFAULT_AGENT_MODEL,
        max_llm_clusters: int = 4,
        max_rounds: int = 1,
        random_draws: int = 8,
        capture_config: CaptureConfig = CaptureConfig(),
        cluster_config: ClusterConfig = ClusterConfig(),
        trust_remote_code: bool = False,
        download: bool = False,
    ):
        if backend is None and max_llm_clusters > 0:
            raise ValueError("an agent backend is needed unless max_llm_clusters is 0 (template rationales only)")
        started = time.perf_counter()
        spec = resolve_model(model, download=download, with_code=trust_remote_code)
        if spec.kind != "causal":
            raise InputError(
                f"{spec.name} is an encoder: it gives no answer to explain; use `attnlens extract` for its attention"
            )
        self.lm: LoadedModel = load_model(spec, trust_remote_code=trust_remote_code)
        self._owns_backend = isinstance(backend, str)  # a backend passed in is the caller's to close
        self.backend = get_backend(backend, model=agent_model) if self._owns_backend else backend
        self.agent = RationaleAgent(self.backend, max_rounds=max_rounds)
        self.max_llm_clusters = max_llm_clusters
        self.random_draws = random_draws  # random same-size word sets each cluster's effect is shown beside
        self.capture_config, self.cluster_config = capture_config, cluster_config
        self.startup_seconds = time.perf_counter() - started

    def explain(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 32,
        seed: int | None = None,
        truncate: bool = False,
        frame: Frame = "auto",
        progress: Callable[[str], None] | None = None,
    ) -> Explanation:
        """Explain one answer: the batch of one. A failure raises (InputError for bad input)."""
        [result] = self.explain_batch(
            [prompt], max_new_tokens=max_new_tokens, seed=seed, truncate=truncate, frame=frame, progress=progress
        )
        if isinstance(result, Exception):
            raise result
        return result

    def explain_batch(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int = 32,
        seed: int | None = None,
        truncate: bool = False,
        frame: Frame = "auto",
        progress: Callable[[str], None] | None = None,
    ) -> list[Explanation | Exception]:
        """Explain many answers: their greedy answers in one batched call (sampled ones one by one),
        the other deterministic stages per prompt, then ONE agent run over the clusters of all of
        them (each LLM step is one backend call for the whole batch). A prompt that fails gives its
        exception in its place and the others go on. `timings["generate"]` and `timings["agent"]`
        are each case's share of the batched call and run. `frame`: how the prompt is put to the
        model (extraction.Frame: the chat template where there is one, or the plain Q/A frame)."""
        step = progress or (lambda stage: None)
        step("generate")
        started = time.perf_counter()
        if seed is None and len(prompts) > 1:  # greedy answers: one batched call
            generations = generate_batch(self.lm, prompts, max_new_tokens=max_new_tokens, truncate=truncate, frame=frame)
        else:
            generations = [self._generate(p, max_new_tokens, seed, truncate, frame) for p in prompts]
        generate_seconds = (time.perf_counter() - started) / len(prompts)
        prepared: list[_Prepared | Exception] = []
        for i, gen in enumerate(generations):
            if isinstance(gen, Exception):
                prepared.append(gen)
                continue
            where = "" if len(prompts) == 1 else f" {i + 1}/{len(prompts)}"
            try:
                prepared.append(self._prepare(gen, generate_seconds, lambda stage: step(stage + where)))
            except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
                prepared.append(exc)
        ready = [p for p in prepared if isinstance(p, _Prepared)]
        step("agent")
        results = iter(self.agent.run_batch([p.facts[: self.max_llm_clusters] for p in ready]))
        return [p if isinstance(p, Exception) else self._finish(p, next(results)) for p in prepared]

    def _generate(
        self, prompt: str, max_new_tokens: int, seed: int | None, truncate: bool, frame: Frame
    ) -> Generation | Exception:
        try:
            return generate(self.lm, prompt, max_new_tokens=max_new_tokens, seed=seed, truncate=truncate, frame=frame)
        except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
            return exc

    def _prepare(self, gen: Generation, generate_seconds: float, step: Callable[[str], None]) -> _Prepared:
        """The deterministic part after the answer: capture -> cluster -> verify (and rank) -> facts."""
        if not gen.answer.strip():
            raise InputError(EMPTY_ANSWER)
        timings: dict[str, float] = {"generate": generate_seconds}

        def timed(stage: str, fn):
            step(stage)
            started = time.perf_counter()
            result = fn()
            timings[stage] = time.perf_counter() - started
            return result

        record = timed("extract", lambda: capture(self.lm, gen, self.capture_config))
        clustering = timed("cluster", lambda: cluster(record, self.cluster_config))
        clustering, report = timed("evaluate", lambda: verify(self.lm, record, clustering, self.random_draws))
        facts = build_facts(record, clustering, report)
        return _Prepared(record, clustering, report, facts, timings)

    def _finish(self, prepared: _Prepared, result: AgentResult) -> Explanation:
        """Template rationales for the clusters the LLM did not see, then the Explanation."""
        for f in prepared.facts[self.max_llm_clusters :]:
            result.rationales[f.id] = Rationale.from_draft(f, template(f), source="template", sent_to_llm=False)
        info = {
            "capture": asdict(self.capture_config),
            "max_llm_clusters": self.max_llm_clusters,
            "ablation": prepared.report.ablation,
        }
        timings = {**prepared.timings, "agent": result.seconds}
        return Explanation(prepared.record, prepared.clustering, prepared.report, result, timings, info)

    def close(self) -> None:
        """Release the agent backend if this Explainer started it (the vLLM engine then stops)."""
        if self._owns_backend and self.backend is not None:
            self.backend.close()


def explain(
    prompt: str,
    model: str | ModelSpec = DEFAULT_MODEL,
    *,
    max_new_tokens: int = 32,
    seed: int | None = None,
    truncate: bool = False,
    **options,
) -> Explanation:
    """Explain one answer of `model` to `prompt` in one call (the models load, then are released).
    `options` go to `Explainer` (backend, agent_model, max_llm_clusters, capture_config, ...); keep
    an `Explainer` instead to explain several prompts without reloading."""
    explainer = Explainer(model, **options)
    try:
        return explainer.explain(prompt, max_new_tokens=max_new_tokens, seed=seed, truncate=truncate)
    finally:
        explainer.close()
