"""The rationale agent: draft -> check -> revise (critique and refine) -> check ... -> finalize.

A LangGraph StateGraph. The LLM writes one line per cluster, `<label>: <sentence>`, after
examples of good lines, one per role (prompts' examples.json); the
label is its choice among the roles that fit the words, and the whole line is grammar-constrained
(agent.grammar). Code checks the line (agent.checks). A line that passes goes to the LLM critic
once, while a refinement is still possible (a verdict nothing could act on is not asked for),
and the verdict is constrained to `accept` or one of a closed set of reasons; a line that fails
the checks, or that the critic objects to, is refined by the LLM, which is told exactly which check
failed and why (or the critic's reason); a refinement is checked again. The critic can only ask for
a better line: a line the checks passed stays the answer unless a refinement also passes. A cluster
whose lines never pass gets the template (`source: "template"`). Every call to the LLM is one
batched backend call: the drafts of all clusters together, then each revise round's critiques and
refinements together.

`run_batch` runs the graph once over the clusters of many cases (the batch annotator): each call
then carries every case's clusters, keyed "case:cluster", and the results are split back per case.
The state records every draft, check, verdict and prompt version, so an explanation can be audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from langgraph.graph import END, START, StateGraph

from attnlens.agent.backends import Backend, StructuredRequest
from attnlens.agent.checks import check
from attnlens.agent.facts import ClusterFacts, Draft, Rationale, prompt_kind, template
from attnlens.agent.grammar import critique_grammar, draft_grammar, parse_draft, parse_verdict
from attnlens.prompts import examples, messages, versions

STEPS = ("draft", "critique", "refine")
# Enough for the longest output each grammar allows (a label and a sentence of about 150
# characters, ~45 tokens; a verdict, ~6); a small model that loops stops here.
MAX_TOKENS = {"draft": 72, "refine": 72, "critique": 10}

# How code lays the prompt out from the templates: which examples, in what order, and what code adds
# to the data blocks. Recorded beside the templates' hashes; bump it when `_shots` or
# `ClusterFacts.slots` change what the LLM reads.
PROMPT_LAYOUT = (
    "3: one example per role, the prompt's kind last; the likely role in the words;"
    " critique and refine go on from the draft's conversation"
)

Todo = Literal["check", "critique", "refine", "done"]


@dataclass(frozen=True)
class AgentStep:
    """One entry of the audit trail: a draft or refinement, a check, or the LLM critic's verdict."""

    step: str  # "draft" | "refine" | "check" | "critique"
    round: int  # refinements of this cluster so far
    cluster: int  # the cluster id (within its case)
    output: str | None = None  # the LLM's output as it wrote it
    error: str | None = None  # why the output could not be used
    problems: tuple[str, ...] = ()  # what the checks found ("check" steps)
    failed: tuple[str, ...] = ()  # the names of the checks that failed ("check" steps)

    @classmethod
    def from_dict(cls, data: dict) -> "AgentStep":
        return cls(**{**data, "problems": tuple(data["problems"]), "failed": tuple(data["failed"])})


class AgentState(TypedDict):
    # every key is "case:cluster" (see run_batch); LangGraph's state, internal to this module
    todo: dict[str, Todo]
    rounds: dict[str, int]  # key -> refinements so far
    drafts: dict[str, Draft | None]  # key -> latest draft
    passed: dict[str, Draft]  # key -> the latest draft that passed every check
    problems: dict[str, list[str]]  # key -> what the checks found in its latest draft
    critic: dict[str, str]  # key -> the critic's objection to its passed draft
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
    info: dict = field(default_factory=dict)  # backend, model, max_rounds, critique, batch_cases


class RationaleAgent:
    """Writes one checked rationale per cluster with a grammar-constrained LLM backend."""

    def __init__(self, backend: Backend | None, max_rounds: int = 1, critique: bool = True, temperature: float = 0.0, seed: int = 0):
        """`backend` None: only cases with no clusters for the LLM can run (templates only).
        `critique` False: drafts that pass the checks are kept without the LLM critic's verdict."""
        self.backend, self.max_rounds, self.critique = backend, max_rounds, critique
        self.temperature, self.seed = temperature, seed
        self.graph = self._build()

    @property
    def max_calls(self) -> int:
        """The most LLM calls one run can take: the drafts, each revise round, and one more for
        refinements the critic asks for in the last round (they need its verdict first)."""
        return 1 + self.max_rounds + (1 if self.critique and self.max_rounds else 0)

    def run(self, facts: list[ClusterFacts]) -> AgentResult:
        return self.run_batch([facts])[0]

    def run_batch(self, cases: list[list[ClusterFacts]]) -> list[AgentResult]:
        """One graph run over the clusters of every case; one AgentResult per case, in order.
        `llm_calls` and `generated_tokens` are the case's own (calls that carried one of its
        clusters); `seconds` is its share of the batch's wall time (batch seconds / cases)."""
        started = time.perf_counter()
        self._facts = {_key(b, f.id): f for b, facts in enumerate(cases) for f in facts}
        self._case_calls = [0] * len(cases)
        self._case_tokens = [0] * len(cases)
        if self._facts:
            state = self.graph.invoke({"todo": {}}, {"recursion_limit": 10 + 4 * self.max_rounds})
        else:  # nothing for the LLM (e.g. --max-llm-clusters 0): no backend is needed
            state = {"final": {}, "history": []}
        seconds = time.perf_counter() - started
        results = [
            AgentResult(
                rationales={}, history=[], prompt_versions=prompt_versions(),
                llm_calls=self._case_calls[b], generated_tokens=self._case_tokens[b],
                seconds=seconds / max(1, len(cases)),
                info={
                    "backend": getattr(self.backend, "name", None), "model": getattr(self.backend, "model", None),
                    "max_rounds": self.max_rounds, "critique": self.critique, "batch_cases": len(cases),
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

    # ------------------------------------------------------------------ the graph

    def _build(self):
        graph = StateGraph(AgentState)
        graph.add_node("draft", self._draft)
        graph.add_node("check", self._check)
        graph.add_node("revise", self._revise)
        graph.add_node("finalize", self._finalize)
        graph.add_edge(START, "draft")
        graph.add_edge("draft", "check")
        graph.add_conditional_edges("check", self._next, {"revise": "revise", "finalize": "finalize"})
        graph.add_edge("revise", "check")
        graph.add_edge("finalize", END)
        return graph.compile()

    def _draft(self, state: AgentState) -> dict:
        keys = list(self._facts)
        results = self._generate([("draft", k, {}) for k in keys])
        history, drafts = [], {}
        for key, result in zip(keys, results):
            drafts[key] = self._record_draft("draft", key, 0, result, history)
        return {
            "todo": {k: "check" for k in keys}, "rounds": {k: 0 for k in keys}, "drafts": drafts, "passed": {},
            "problems": {}, "critic": {}, "history": history, "final": {},
        }

    def _check(self, state: AgentState) -> dict:
        todo, passed, problems = dict(state["todo"]), dict(state["passed"]), dict(state["problems"])
        critic, history = dict(state["critic"]), list(state["history"])
        for key in [k for k, t in todo.items() if t == "check"]:
            found = check(self._facts[key], state["drafts"][key])
            problems[key] = [p.message for p in found]
            history.append((key, AgentStep(
                "check", state["rounds"][key], _split(key)[1],
                problems=tuple(problems[key]), failed=tuple(p.check for p in found),
            )))
            if not found:
                passed[key] = state["drafts"][key]
                critic.pop(key, None)
                # the critic reviews a line once, and only while its objection could still be acted on
                reviewed = any(k == key and s.step == "critique" for k, s in history)
                can_refine = state["rounds"][key] < self.max_rounds
                todo[key] = "critique" if self.critique and not reviewed and can_refine else "done"
            else:
                todo[key] = "refine" if state["rounds"][key] < self.max_rounds else "done"
        return {"todo": todo, "passed": passed, "problems": problems, "critic": critic, "history": history}

    def _next(self, state: AgentState) -> str:
        return "revise" if any(t in ("critique", "refine") for t in state["todo"].values()) else "finalize"

    def _revise(self, state: AgentState) -> dict:
        """One LLM call: the critic's verdict on every fresh passing draft, a refinement of every
        draft that failed the checks (or that the critic objected to in the last round)."""
        todo, rounds, drafts = dict(state["todo"]), dict(state["rounds"]), dict(state["drafts"])
        critic, history = dict(state["critic"]), list(state["history"])
        jobs = []
        for key, t in todo.items():
            if t == "critique":
                jobs.append(("critique", key, {"line": _line(state["passed"][key])}))
            elif t == "refine":
                wrong = [critic[key]] if key in critic else state["problems"].get(key) or []
                previous = _line(drafts[key]) if drafts[key] is not None else history_text(history, key)
                jobs.append(("refine", key, {"line": previous, "problems": wrong}))
        results = self._generate(jobs)
        for (step, key, _), result in zip(jobs, results):
            if step == "critique":
                verdict, reason = parse_verdict(result.data or "")
                history.append((key, AgentStep("critique", rounds[key], _split(key)[1], result.text, result.error)))
                if verdict == "revise":
                    critic[key] = reason
                todo[key] = "refine" if verdict == "revise" else "done"
            else:
                rounds[key] += 1
                drafts[key] = self._record_draft("refine", key, rounds[key], result, history)
                todo[key] = "check"
        return {"todo": todo, "rounds": rounds, "drafts": drafts, "critic": critic, "history": history}

    def _finalize(self, state: AgentState) -> dict:
        final = {}
        for key, facts in self._facts.items():
            rounds = state["rounds"][key]
            if key in state["passed"]:
                final[key] = Rationale.from_draft(
                    facts, state["passed"][key], source="llm", rounds=rounds, unresolved_critique=state["critic"].get(key)
                )
            else:
                problems = state["problems"].get(key) or ["no draft"]
                final[key] = Rationale.from_draft(facts, template(facts), source="template", problems=problems, rounds=rounds)
        return {"final": final}

    # ------------------------------------------------------------------ LLM calls

    def _generate(self, jobs: list[tuple[str, str, dict]]) -> list:
        """One backend call for every (step, key, step values) job. Every request opens with the
        examples for its kind of prompt, then the case, then its words, and a critique or refinement
        goes on with the line being judged (prompts' `messages`): an engine with prefix caching
        computes the opening once per case and each cluster's words and line once, and the critic
        sees what a good line looks like."""
        if not jobs:
            return []
        requests = []
        for step, key, values in jobs:
            facts = self._facts[key]
            chat = messages(step, facts.slots(), _shots(prompt_kind(facts.prompt)), **values)
            grammar = critique_grammar() if step == "critique" else draft_grammar(facts)
            requests.append(StructuredRequest(chat, grammar, MAX_TOKENS[step]))
        results = self.backend.generate(requests, temperature=self.temperature, seed=self.seed)
        for b in {_split(key)[0] for _, key, _ in jobs}:
            self._case_calls[b] += 1
        for (_, key, _), result in zip(jobs, results):
            self._case_tokens[_split(key)[0]] += result.tokens
        return results

    def _record_draft(self, step: str, key: str, round_: int, result, history: list) -> Draft | None:
        draft = parse_draft(result.data) if result.data is not None else None
        error = result.error or (None if draft is not None else "the output has no label and sentence")
        history.append((key, AgentStep(step, round_, _split(key)[1], result.text, error)))
        return draft


def prompt_versions() -> dict[str, str]:
    """What the LLM was shown: the templates' and examples' hashes, and the layout code applied."""
    return {**versions(*STEPS), "layout": PROMPT_LAYOUT}


def _line(draft: Draft) -> str:
    """A draft as the LLM wrote it: `<label>: <sentence>`."""
    return f"{draft.label}: {draft.sentence}"


def _shots(kind: str) -> list[tuple[dict, str]]:
    """One example of a good line per role, preferring prompts of this kind, those of this kind
    last, nearest the request (a small model follows the nearest example most). The same for every
    cluster of a case, so its requests share one opening up to their words: the engine's prefix
    cache computes the system text, the examples and the case once per case, not once per cluster
    (measured in one vLLM call: 8 requests with a shared 400-token opening 2.4 s, 8 distinct 12.8 s)."""
    by_role: dict[str, dict] = {}
    for e in examples().items:
        if e["label"] not in by_role or prompt_kind(e["facts"]["prompt"]) == kind != prompt_kind(by_role[e["label"]]["facts"]["prompt"]):
            by_role[e["label"]] = e
    items = sorted(by_role.values(), key=lambda e: prompt_kind(e["facts"]["prompt"]) == kind)
    return [(ClusterFacts.from_dict(e["facts"]).slots(), f"{e['label']}: {e['sentence']}") for e in items]


def history_text(history: list[tuple[str, AgentStep]], key: str) -> str:
    """The last raw output of a cluster (for refining an output that did not parse)."""
    outputs = [s.output for k, s in history if k == key and s.step in ("draft", "refine")]
    return (outputs[-1] if outputs else "") or ""


def _key(case: int, cluster: int) -> str:
    return f"{case}:{cluster}"


def _split(key: str) -> tuple[int, int]:
    case, cluster = key.split(":")
    return int(case), int(cluster)
