"""`Explanation`: everything one explanation rests on, the JSON contract, its views, save and load.

It bundles the attention record (with the generation), the clustering, the faithfulness report
and the agent's rationales with their audit trail. `to_dict()` is the `attnlens explain --json`
contract and `to_json()` its text; `show()` renders it in a terminal and `_repr_html_()` in a
notebook; `save()` writes the contract plus the full detail as one JSON document and the record's
arrays as one safetensors file, and `load()` reads them back into an equal object.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from attnlens.agent.facts import Rationale
from attnlens.agent.graph import AgentResult, AgentStep
from attnlens.clustering import Clustering
from attnlens.errors import InputError
from attnlens.evaluation.faithfulness import FaithfulnessReport
from attnlens.extraction.record import AttentionRecord, Generation
from attnlens.pipeline import views

SCHEMA_VERSION = 4  # 4: one-line rationales (an LLM sentence + the facts code states), word evidence


@dataclass(eq=False)
class Explanation:
    record: AttentionRecord
    clustering: Clustering
    faithfulness: FaithfulnessReport  # one entry per cluster, in the clustering's order (largest effect first)
    agent: AgentResult
    timings: dict[str, float]  # seconds per stage
    info: dict = field(default_factory=dict)  # every parameter: scored cluster, capture config, case, ...

    @property
    def generation(self) -> Generation:
        return self.record.generation

    def cluster_rows(self) -> list[dict]:
        """One row per cluster, largest measured effect first: words, tokens, rationale, its effect beside random sets."""
        rows = []
        for cluster, scores in zip(self.clustering.clusters, self.faithfulness.clusters):
            rationale = self.agent.rationales[cluster.id]
            rows.append(
                {
                    "id": cluster.id,
                    "token_indices": list(cluster.tokens),
                    "texts": list(cluster.texts),
                    "words": list(cluster.words),
                    "score": cluster.score,
                    "label": rationale.label,
                    "rationale": rationale.rationale,
                    "evidence_tokens": list(dict.fromkeys(rationale.evidence_tokens)),
                    "source": rationale.source,
                    "importance": cluster.importance,
                    "comprehensiveness": scores.comprehensiveness,
                    "random_comprehensiveness": scores.random_comprehensiveness,
                    "random_comprehensiveness_sd": scores.random_comprehensiveness_sd,
                    "sufficiency": scores.sufficiency,
                    "random_sufficiency": scores.random_sufficiency,
                    "removable_tokens": len(scores.tokens),
                }
            )
        return rows

    def scores(self) -> dict:
        """Faithfulness of cluster 0, the cluster whose deletion hurts the answer most (`cluster_id` is always 0)."""
        top = self.faithfulness.clusters[0] if self.faithfulness.clusters else None
        sent = [r for r in self.agent.rationales.values() if r.sent_to_llm]
        grounded = [r for r in sent if r.source == "llm" and not r.problems]
        return {
            "comprehensiveness": top.comprehensiveness if top else 0.0,
            "sufficiency": top.sufficiency if top else 0.0,
            "random_comprehensiveness": (top.random_comprehensiveness if top else None) or 0.0,
            "random_comprehensiveness_sd": (top.random_comprehensiveness_sd if top else None) or 0.0,
            "random_draws": self.faithfulness.random_draws,
            "grounding": len(grounded) / len(sent) if sent else 0.0,
            "answer_probability": self.faithfulness.answer_probability,
            "cluster_id": 0,
        }

    def to_dict(self) -> dict:
        """The JSON contract of `attnlens explain --json`, as a dict."""
        gen = self.generation
        graph = self.clustering.graph
        return {
            "schema_version": SCHEMA_VERSION,
            "model": gen.model,
            "prompt": gen.prompt,
            "answer": gen.answer,
            "tokens": [{"index": t.index, "text": t.text, "role": t.role, "segment": t.segment} for t in gen.tokens],
            "graph": {
                "threshold": float(self.clustering.threshold or 0.0),
                "resolution": float(self.clustering.resolution),
                "modularity": float(self.clustering.modularity),
                "edges": int(graph.edge_count),
                "sink_share": float(graph.sink_share),
                "source": graph.source,
            },
            "clusters": self.cluster_rows(),
            "scores": self.scores(),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "agent": {
                **self.agent.info,
                "llm_calls": self.agent.llm_calls,
                "generated_tokens": self.agent.generated_tokens,
                "prompt_versions": self.agent.prompt_versions,
            },
        }

    def to_json(self) -> str:
        """Exactly what `attnlens explain --json` prints: one JSON object."""
        return json.dumps(self.to_dict())

    def show(self, console: Console | None = None) -> None:
        """A readable view in a terminal (rich): the text with its clusters coloured, one line per cluster."""
        views.show(self.to_dict(), console)

    def _repr_html_(self) -> str:
        """A self-contained, escaped HTML view with the clusters highlighted (Jupyter calls this)."""
        return views.page_html(self.to_dict())

    # ------------------------------------------------------------------ save and load

    def _detail(self) -> dict:
        """Everything but the arrays, JSON-native and at full precision."""
        return {
            **self.to_dict(),
            "timings_s": dict(self.timings),
            "clustering": self.clustering.to_dict(),
            "agent_trace": {
                "rationales": {str(k): asdict(v) for k, v in self.agent.rationales.items()},
                "history": [asdict(step) for step in self.agent.history],
                "seconds": self.agent.seconds,
            },
            "faithfulness": self.faithfulness.to_dict(),
            "info": self.info,
        }

    def save(self, directory: str | Path) -> Path:
        """DIR/explanation.json (the contract plus every detail) and DIR/record/ (the attention record)."""
        directory = Path(directory)
        self.record.save(directory / "record")
        tmp = directory / "explanation.json.tmp"
        tmp.write_text(json.dumps(self._detail(), indent=1, default=str))
        tmp.replace(directory / "explanation.json")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Explanation:
        directory = Path(directory)
        try:
            detail = json.loads((directory / "explanation.json").read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read an explanation from {directory}: {exc}") from exc
        if detail.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"{directory} holds an explanation of schema version {detail.get('schema_version')}; "
                f"this attnlens reads {SCHEMA_VERSION}: explain it again"
            )
        trace = detail["agent_trace"]
        agent = AgentResult(
            rationales={int(k): Rationale(**v) for k, v in trace["rationales"].items()},
            history=[AgentStep.from_dict(step) for step in trace["history"]],
            prompt_versions=detail["agent"]["prompt_versions"],
            llm_calls=detail["agent"]["llm_calls"],
            generated_tokens=detail["agent"]["generated_tokens"],
            seconds=trace["seconds"],
            info={k: v for k, v in detail["agent"].items() if k not in ("llm_calls", "generated_tokens", "prompt_versions")},
        )
        return cls(
            record=AttentionRecord.load(directory / "record"),
            clustering=Clustering.from_dict(detail["clustering"]),
            faithfulness=FaithfulnessReport.from_dict(detail["faithfulness"]),
            agent=agent,
            timings=detail["timings_s"],
            info=detail["info"],
        )

    def __eq__(self, other: object) -> bool:
        """Equal when every saved detail and every array is the same (a save/load round trip is equal)."""
        if not isinstance(other, Explanation):
            return NotImplemented
        return _canonical(self._detail()) == _canonical(other._detail()) and self.record == other.record


def _canonical(detail: dict) -> str:
    """One JSON text per detail (NaN written as a string, so equal NaNs compare equal)."""

    def fix(value):
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, dict):
            return {str(k): fix(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [fix(v) for v in value]
        return value

    return json.dumps(fix(json.loads(json.dumps(detail, default=str))), sort_keys=True)
