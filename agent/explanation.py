"""`Explanation`: everything one explanation rests on, the JSON contract, save and load.

It bundles the generation, the attention record, the clustering, the agent's rationales (with
their audit trail) and the faithfulness scores. `to_json()` is the `attnlens explain --json`
contract of DESIGN.md; `save()` writes that plus the full detail as one JSON document and the
record's arrays as one safetensors file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from agent.graph import AgentResult
from clustering import Clustering
from extraction.record import AttentionRecord

SCHEMA_VERSION = 1


@dataclass
class Explanation:
    record: AttentionRecord
    clustering: Clustering
    agent: AgentResult
    faithfulness: dict  # evaluation.faithfulness.FaithfulnessReport.to_dict()
    timings: dict[str, float]
    info: dict = field(default_factory=dict)

    @property
    def generation(self):
        return self.record.generation

    def cluster_rows(self) -> list[dict]:
        """One row per cluster, most important first: tokens, rationale, and its faithfulness."""
        per_cluster = self.faithfulness.get("clusters", [])
        rows = []
        for cluster, scores in zip(self.clustering.clusters, per_cluster):
            rationale = self.agent.rationales[cluster.id]
            rows.append(
                {
                    "id": cluster.id,
                    "token_indices": list(cluster.tokens),
                    "texts": list(cluster.texts),
                    "label": rationale["label"],
                    "rationale": rationale["rationale"],
                    "evidence_tokens": list(dict.fromkeys(rationale["evidence_tokens"])),
                    "source": rationale["source"],
                    "importance": cluster.importance,
                    "comprehensiveness": scores["comprehensiveness"],
                    "sufficiency": scores["sufficiency"],
                    "removable_tokens": len(scores["tokens"]),
                }
            )
        return rows

    def scores(self) -> dict:
        """Faithfulness of the most important cluster with prompt tokens to remove (`cluster_id`)."""
        clusters = self.faithfulness.get("clusters", [])
        scored = self.info.get("scored_cluster", 0)
        top = clusters[scored] if scored < len(clusters) else {}
        sent = [r for r in self.agent.rationales.values() if r.get("sent_to_llm", True)]
        grounded = [r for r in sent if r["source"] == "llm" and not r["problems"]]
        return {
            "comprehensiveness": top.get("comprehensiveness", 0.0),
            "sufficiency": top.get("sufficiency", 0.0),
            "random_comprehensiveness": top.get("random_comprehensiveness") or 0.0,
            "grounding": len(grounded) / len(sent) if sent else 0.0,
            "answer_probability": self.faithfulness.get("answer_probability", 0.0),
            "cluster_id": scored,
        }

    def to_json(self) -> dict:
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

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        self.record.save(directory / "record")
        detail = {
            **self.to_json(),
            "clustering": self.clustering.to_dict(),
            "agent_trace": {
                "rationales": {str(k): v for k, v in self.agent.rationales.items()},
                "history": self.agent.history,
                "seconds": self.agent.seconds,
            },
            "faithfulness": self.faithfulness,
            "info": self.info,
        }
        tmp = directory / "explanation.json.tmp"
        tmp.write_text(json.dumps(detail, indent=1, default=str))
        tmp.replace(directory / "explanation.json")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Explanation":
        directory = Path(directory)
        detail = json.loads((directory / "explanation.json").read_text())
        trace = detail["agent_trace"]
        agent = AgentResult(
            rationales={int(k): v for k, v in trace["rationales"].items()},
            history=trace["history"],
            prompt_versions=detail["agent"]["prompt_versions"],
            llm_calls=detail["agent"]["llm_calls"],
            generated_tokens=detail["agent"]["generated_tokens"],
            seconds=trace["seconds"],
            info={k: v for k, v in detail["agent"].items() if k not in ("llm_calls", "generated_tokens", "prompt_versions")},
        )
        return cls(
            record=AttentionRecord.load(directory / "record"),
            clustering=Clustering.from_dict(detail["clustering"]),
            agent=agent,
            faithfulness=detail["faithfulness"],
            timings=detail["timings_s"],
            info=detail["info"],
        )
