"""The rationale agent: describe -> draft -> critique -> refine (at most twice) -> finalize.

A LangGraph StateGraph. Every LLM step is one batched call over all clusters it concerns.
The deterministic checks (agent.facts.check) drive the loop: a draft that fails them is
refined, and one that never passes gets a template rationale built from the evidence. The LLM
critic can only ask for a refinement of a draft the checks passed; it cannot veto one (the
135M model's own critique accepts nearly everything, so it must not be what keeps a draft).
The state records every draft, critique and prompt version, so an explanation can be audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

from agent.backends import Backend, StructuredRequest
from agent.facts import CRITIQUE_SCHEMA, ClusterFacts, check, draft_schema, template
from prompts import messages, versions

STEPS = ("draft", "critique", "refine")
# Enough for the longest object each schema allows (240-character rationale ~ 60 tokens, four
# cited tokens, the label and the JSON around them); a small model that loops stops here.
MAX_TOKENS = {"draft": 128, "refine": 128, "critique": 72}


class AgentState(TypedDict):
    evidence: dict[str, dict]  # cluster id -> the evidence the LLM saw
    pending: list[int]  # clusters whose latest draft must be (re)checked or refined
    round: int
    drafts: dict[str, dict | None]  # cluster id -> latest draft
    problems: dict[str, list[str]]  # cluster id -> what is wrong with its latest draft
    critic: dict[str, str]  # cluster id -> the LLM critic's unresolved objection
    history: list[dict]  # every step, in order
    final: dict[str, dict]


@dataclass
class AgentResult:
    rationales: dict[int, dict]  # cluster id -> label, rationale, evidence_tokens, source, problems, rounds
    history: list[dict]
    prompt_versions: dict[str, str]
    llm_calls: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


class RationaleAgent:
    """Writes one checked rationale per cluster with a schema-constrained LLM backend."""

    def __init__(self, backend: Backend, max_rounds: int = 2, temperature: float = 0.0, seed: int = 0):
        self.backend, self.max_rounds, self.temperature, self.seed = backend, max_rounds, temperature, seed
        self.calls = 0
        self.tokens = 0
        self.graph = self._build()

    def run(self, facts: list[ClusterFacts]) -> AgentResult:
        started = time.perf_counter()
        self.calls = self.tokens = 0
        self._facts = {f.id: f for f in facts}
        state = self.graph.invoke({"pending": [f.id for f in facts]}, {"recursion_limit": 10 + 3 * self.max_rounds})
        return AgentResult(
            rationales={int(k): v for k, v in state["final"].items()},
            history=state["history"],
            prompt_versions=versions(*STEPS),
            llm_calls=self.calls,
            generated_tokens=self.tokens,
            seconds=time.perf_counter() - started,
            info={"backend": self.backend.name, "model": self.backend.model, "max_rounds": self.max_rounds},
        )

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
        return {
            "evidence": {str(i): self._facts[i].evidence for i in state["pending"]},
            "round": 0, "drafts": {}, "problems": {}, "critic": {}, "history": [], "final": {},
        }

    def _generate(self, step: str, ids: list[int], schema_of, **extra_of) -> list:
        requests = [
            StructuredRequest(
                messages(step, evidence=self._facts[i].evidence, **{k: f(i) for k, f in extra_of.items()}),
                schema_of(i),
                max_tokens=MAX_TOKENS[step],
            )
            for i in ids
        ]
        results = self.backend.generate(requests, temperature=self.temperature, seed=self.seed) if requests else []
        self.calls += bool(requests)
        self.tokens += sum(r.tokens for r in results)
        return results

    def _record_drafts(self, step: str, state: AgentState, ids: list[int], results) -> dict:
        drafts, history = dict(state["drafts"]), list(state["history"])
        for i, result in zip(ids, results):
            drafts[str(i)] = result.data
            history.append(
                {"step": step, "round": state["round"], "cluster": i, "output": result.data or result.text, "error": result.error}
            )
        return {"drafts": drafts, "history": history, "pending": ids}

    def _draft(self, state: AgentState) -> dict:
        ids = state["pending"]
        results = self._generate("draft", ids, lambda i: draft_schema(self._facts[i]))
        return self._record_drafts("draft", state, ids, results)

    def _critique(self, state: AgentState) -> dict:
        problems, critic, history = dict(state["problems"]), dict(state["critic"]), list(state["history"])
        checked_ok = []
        for i in state["pending"]:
            found = check(self._facts[i], state["drafts"].get(str(i)))
            problems[str(i)] = found
            critic.pop(str(i), None)
            history.append({"step": "check", "round": state["round"], "cluster": i, "problems": found})
            if not found:
                checked_ok.append(i)
        # the LLM critic reviews only what the code could not fault
        results = self._generate(
            "critique", checked_ok, lambda i: CRITIQUE_SCHEMA, rationale=lambda i: state["drafts"][str(i)]
        )
        for i, result in zip(checked_ok, results):
            verdict = result.data or {"verdict": "accept", "problem": ""}
            history.append({"step": "critique", "round": state["round"], "cluster": i, "output": verdict, "error": result.error})
            if verdict["verdict"] == "revise" and verdict["problem"].strip():
                critic[str(i)] = verdict["problem"].strip()
        pending = [i for i in state["pending"] if problems[str(i)] or str(i) in critic]
        return {"problems": problems, "critic": critic, "history": history, "pending": pending}

    def _next(self, state: AgentState) -> str:
        return "refine" if state["pending"] and state["round"] < self.max_rounds else "finalize"

    def _refine(self, state: AgentState) -> dict:
        ids = state["pending"]
        state = {**state, "round": state["round"] + 1}
        results = self._generate(
            "refine", ids, lambda i: draft_schema(self._facts[i]),
            problems=lambda i: state["problems"][str(i)] + ([state["critic"][str(i)]] if str(i) in state["critic"] else []),
        )
        return {**self._record_drafts("refine", state, ids, results), "round": state["round"]}

    def _finalize(self, state: AgentState) -> dict:
        final = {}
        for key, facts in ((str(i), f) for i, f in self._facts.items()):
            draft, problems = state["drafts"].get(key), state["problems"].get(key, ["no draft"])
            if draft and not problems:
                final[key] = {**draft, "source": "llm", "problems": [], "rounds": state["round"]}
                if key in state["critic"]:
                    final[key]["unresolved_critique"] = state["critic"][key]
            else:
                final[key] = {**template(facts), "source": "template", "problems": problems, "rounds": state["round"]}
        return {"final": final}
