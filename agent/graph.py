"""The rationale agent: describe -> draft -> critique -> refine (at most twice) -> finalize.

A LangGraph StateGraph. Every LLM step is one batched call over all clusters it concerns.
The deterministic checks (agent.facts.check) drive the loop: a draft that fails them is
refined, and one that never passes gets a template rationale built from the evidence. The LLM
critic can only ask for a refinement of a draft the checks passed; it cannot veto one (the
135M model's own critique accepts nearly everything, so it must not be what keeps a draft).
The state records every draft, critique and prompt version, so an explanation can be audited.

`run_batch` runs the graph once over the clusters of many cases (the batch annotator): each LLM
step is then one backend call over every case's clusters, keyed "case:cluster" so that cluster
ids of different cases do not collide, and the results are split back per case. `run` is the
batch of one.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

from attnlens.agent.backends import Backend, StructuredRequest
from attnlens.agent.facts import CRITIQUE_SCHEMA, ClusterFacts, Draft, Rationale, check, draft_schema, template
from attnlens.prompts import messages, versions

STEPS = ("draft", "critique", "refine")
# Enough for the longest object each schema allows (240-character rationale ~ 60 tokens, four
# cited tokens, the label and the JSON around them); a small model that loops stops here.
MAX_TOKENS = {"draft": 128, "refine": 128, "critique": 72}


@dataclass(frozen=True)
class AgentStep:
    """One entry of the audit trail: a draft, a refinement, a check or the LLM critic's verdict."""

    step: str  # "draft" | "refine" | "check" | "critique"
    round: int
    cluster: int  # the cluster id (within its case)
    output: dict | str | None = None  # the LLM's parsed output, or its raw text when it did not parse
    error: str | None = None  # why the output did not parse
    problems: tuple[str, ...] = ()  # what the checks found ("check" steps)

    @classmethod
    def from_dict(cls, data: dict) -> "AgentStep":
        return cls(**{**data, "problems": tuple(data.get("problems", ()))})


class AgentState(TypedDict):
    # every key is "case:cluster" (see run_batch); LangGraph's state, internal to this module
    pending: list[str]  # keys whose latest draft must be (re)checked or refined
    round: int
    drafts: dict[str, Draft | None]  # key -> latest draft
    problems: dict[str, list[str]]  # key -> what is wrong with its latest draft
    critic: dict[str, str]  # key -> the LLM critic's unresolved objection
    history: list[tuple[str, AgentStep]]  # (key, step), in order
    final: dict[str, Rationale]


@dataclass
class AgentResult:
    rationales: dict[int, Rationale]  # cluster id -> its rationale
    history: list[AgentStep]
    prompt_versions: dict[str, str]
    llm_calls: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)  # backend, model, max_rounds, batch_cases


class RationaleAgent:
    """Writes one checked rationale per cluster with a schema-constrained LLM backend."""

    def __init__(self, backend: Backend | None, max_rounds: int = 2, temperature: float = 0.0, seed: int = 0):
        """`backend` None: only cases with no clusters for the LLM can run (templates only)."""
        self.backend, self.max_rounds, self.temperature, self.seed = backend, max_rounds, temperature, seed
        self.calls = 0
        self.tokens = 0
        self.graph = self._build()

    def run(self, facts: list[ClusterFacts]) -> AgentResult:
        return self.run_batch([facts])[0]

    def run_batch(self, cases: list[list[ClusterFacts]]) -> list[AgentResult]:
        """One graph run over the clusters of every case; one AgentResult per case, in order.
        `llm_calls` and `generated_tokens` are the case's own (calls that carried one of its
        clusters); `seconds` is its share of the batch's wall time (batch seconds / cases)."""
        started = time.perf_counter()
        self.calls = self.tokens = 0
        self._facts = {_key(b, f.id): f for b, facts in enumerate(cases) for f in facts}
        self._case_calls = [0] * len(cases)
        self._case_tokens = [0] * len(cases)
        if self._facts:
            state = self.graph.invoke({"pending": list(self._facts)}, {"recursion_limit": 10 + 3 * self.max_rounds})
        else:  # nothing for the LLM (e.g. --max-llm-clusters 0): no backend is needed
            state = {"final": {}, "history": []}
        seconds = time.perf_counter() - started
        results = [
            AgentResult(
                rationales={}, history=[], prompt_versions=versions(*STEPS),
                llm_calls=self._case_calls[b], generated_tokens=self._case_tokens[b],
                seconds=seconds / max(1, len(cases)),
                info={
                    "backend": getattr(self.backend, "name", None), "model": getattr(self.backend, "model", None),
                    "max_rounds": self.max_rounds,
                    "batch_cases": len(cases),
                },
            )
            for b in range(len(cases))
        ]
        for key, rationale in state["final"].items():
            b, cluster = _split(key)
            results[b].rationales[cluster] = rationale
        for key, step in state["history"]:
            results[_split(key)[0]].history.append(step)
        return results

    # ------------------------------------------------------------------ nodes

    def _build(self):
        graph = StateGraph(AgentState)
        graph.add_node("describe", self._describe)
        graph.add_node("draft", self._draft)
        graph.add_node("critique", self._critique)
        graph.add_node("refine", self._refine)
        graph.add_node("finalize", self._finalize)
        graph.add_edge(START, "describe")
        graph.add_edge("describe", "draft")
        graph.add_edge("draft", "critique")
        graph.add_conditional_edges("critique", self._next, {"refine": "refine", "finalize": "finalize"})
        graph.add_edge("refine", "critique")
        graph.add_edge("finalize", END)
        return graph.compile()

    def _describe(self, state: AgentState) -> dict:
        return {"round": 0, "drafts": {}, "problems": {}, "critic": {}, "history": [], "final": {}}

    def _generate(self, step: str, ids: list[str], schema_of, **extra_of) -> list:
        requests = [
            StructuredRequest(
                messages(step, evidence=self._facts[i].evidence.to_dict(), **{k: f(i) for k, f in extra_of.items()}),
                schema_of(i),
                max_tokens=MAX_TOKENS[step],
            )
            for i in ids
        ]
        results = self.backend.generate(requests, temperature=self.temperature, seed=self.seed) if requests else []
        self.calls += bool(requests)
        self.tokens += sum(r.tokens for r in results)
        for b in {_split(i)[0] for i in ids}:
            self._case_calls[b] += 1
        for i, result in zip(ids, results):
            self._case_tokens[_split(i)[0]] += result.tokens
        return results

    def _record_drafts(self, step: str, state: AgentState, ids: list[str], results) -> dict:
        drafts, history = dict(state["drafts"]), list(state["history"])
        for i, result in zip(ids, results):
            drafts[i] = Draft.from_dict(result.data)
            history.append((i, AgentStep(step, state["round"], _split(i)[1], result.data or result.text, result.error)))
        return {"drafts": drafts, "history": history, "pending": ids}

    def _draft(self, state: AgentState) -> dict:
        ids = state["pending"]
        results = self._generate("draft", ids, lambda i: draft_schema(self._facts[i]))
        return self._record_drafts("draft", state, ids, results)

    def _critique(self, state: AgentState) -> dict:
        problems, critic, history = dict(state["problems"]), dict(state["critic"]), list(state["history"])
        checked_ok = []
        for i in state["pending"]:
            found = check(self._facts[i], state["drafts"].get(i))
            problems[i] = found
            critic.pop(i, None)
            history.append((i, AgentStep("check", state["round"], _split(i)[1], problems=tuple(found))))
            if not found:
                checked_ok.append(i)
        # the LLM critic reviews only what the code could not fault
        results = self._generate(
            "critique", checked_ok, lambda i: CRITIQUE_SCHEMA, rationale=lambda i: asdict(state["drafts"][i])
        )
        for i, result in zip(checked_ok, results):
            verdict = result.data or {"verdict": "accept", "problem": ""}
            history.append((i, AgentStep("critique", state["round"], _split(i)[1], verdict, result.error)))
            if verdict["verdict"] == "revise" and verdict["problem"].strip():
                critic[i] = verdict["problem"].strip()
        pending = [i for i in state["pending"] if problems[i] or i in critic]
        return {"problems": problems, "critic": critic, "history": history, "pending": pending}

    def _next(self, state: AgentState) -> str:
        return "refine" if state["pending"] and state["round"] < self.max_rounds else "finalize"

    def _refine(self, state: AgentState) -> dict:
        ids = state["pending"]
        state = {**state, "round": state["round"] + 1}
        results = self._generate(
            "refine", ids, lambda i: draft_schema(self._facts[i]),
            problems=lambda i: state["problems"][i] + ([state["critic"][i]] if i in state["critic"] else []),
        )
        return {**self._record_drafts("refine", state, ids, results), "round": state["round"]}

    def _finalize(self, state: AgentState) -> dict:
        final = {}
        for key, facts in self._facts.items():
            draft, problems = state["drafts"].get(key), state["problems"].get(key, ["no draft"])
            if draft is not None and not problems:
                final[key] = Rationale.from_draft(
                    draft, source="llm", rounds=state["round"], unresolved_critique=state["critic"].get(key)
                )
            else:
                final[key] = Rationale.from_draft(template(facts), source="template", problems=problems, rounds=state["round"])
        return {"final": final}


def _key(case: int, cluster: int) -> str:
    return f"{case}:{cluster}"


def _split(key: str) -> tuple[int, int]:
    case, cluster = key.split(":")
    return int(case), int(cluster)
