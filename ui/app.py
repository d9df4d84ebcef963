"""The Gradio app (`attnlens serve`): chat with a bundled model, ask "why did you say this?", explore
the attention views, and rate the explanation (study mode). Also the `explain` API endpoint.

One `Explainer` per subject model is created on first use and shared by every session, and the
agent backend (the vLLM engine by default) is started once. The models are not thread-safe, so every
event that runs a model shares one concurrency group of size 1 in Gradio's queue (four sessions
asking at once queue up and each gets its own explanation); a lock also guards direct callers.
The last explanation of each session stays on the server (`gr.State`); views are rendered only
when shown, and one head's pattern only when its cell is clicked, so the browser gets kilobytes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr

from attnlens.agent.backends import DEFAULT_AGENT_MODEL, Backend, get_backend
from attnlens.clustering import ClusterConfig
from attnlens.errors import AttnlensError, InputError
from attnlens.extraction import BUNDLED, CaptureConfig, generate
from attnlens.extraction.models import cache_root
from attnlens.pipeline import views
from attnlens.pipeline.explainer import Explainer
from attnlens.pipeline.explanation import Explanation
from attnlens.pipeline.study import Rating, record, study_db
from attnlens.ui import render

log = logging.getLogger("attnlens.ui")

STAGES = ("generate", "extract", "cluster", "evaluate", "agent")
SOURCES = ("mean", "rollout", "answer", "layer")
WHY = re.compile(r"\s*why did you (say|answer|write) (this|that|it)\s*[?!.]*\s*", re.IGNORECASE)
USER_ERRORS = (AttnlensError, ValueError)  # shown to the user as they are; anything else is logged
MODEL_WORK = "models"  # the concurrency group of every event that runs a model
SESSIONS_KEPT = 200  # sessions whose state (their last explanation, a few MB each) the server keeps


def causal_models() -> list[str]:
    """The bundled models that answer (encoders give no answer to explain)."""
    return [name for name, spec in BUNDLED.items() if spec.kind == "causal" and spec.offered]


@dataclass(frozen=True)
class Settings:
    """The settings panel: they become the explainer's ClusterConfig (and CaptureConfig for "layer")."""

    threshold: float | None = None  # None: chosen by the modularity sweep
    resolution: float | None = None  # None: chosen by the sweep
    source: str = "mean"
    layer: int | None = None  # with source "layer"

    def cluster_config(self) -> ClusterConfig:
        if self.source not in SOURCES:
            raise ValueError(f"unknown attention source {self.source!r}; use one of {', '.join(SOURCES)}")
        layer = self.layer if self.source == "layer" else None
        return ClusterConfig(source=self.source, layer=layer, threshold=self.threshold, resolution=self.resolution)

    def capture_config(self) -> CaptureConfig:
        """Source "layer" needs that layer's head mean kept by the capture."""
        return CaptureConfig(keep_layers=(self.layer,)) if self.source == "layer" else CaptureConfig()

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


class Service:
    """The shared models: one Explainer per subject model and one agent backend, all made lazily."""

    def __init__(self, backend: Backend | None = None, *, backend_name: str = "auto",
                 agent_model: str = DEFAULT_AGENT_MODEL, server_url: str | None = None, max_llm_clusters: int = 4):
        self._backend = backend
        self._max_llm_clusters = max_llm_clusters
        self._owns_backend = backend is None
        self._backend_args = (backend_name, agent_model, server_url)
        self._explainers: dict[str, Explainer] = {}
        self._lock = threading.RLock()

    def explainer(self, model: str) -> Explainer:
        with self._lock:
            if model not in self._explainers:
                if self._backend is None:
                    name, agent_model, url = self._backend_args
                    self._backend = get_backend(name, model=agent_model, url=url)
                self._explainers[model] = Explainer(model, self._backend, max_llm_clusters=self._max_llm_clusters)
            return self._explainers[model]

    def answer(self, model: str, prompt: str, max_new_tokens: int) -> str:
        """The chat answer: greedy, so asking why later reproduces exactly this answer."""
        with self._lock:
            return generate(self.explainer(model).lm, prompt, max_new_tokens=max_new_tokens).answer

    def explain(self, model: str, prompt: str, settings: Settings, max_new_tokens: int,
                progress: Callable[[str], None] | None = None) -> Explanation:
        with self._lock:
            explainer = self.explainer(model)
            layers = explainer.lm.architecture.layers
            if settings.source == "layer" and not (settings.layer is not None and 0 <= settings.layer < layers):
                raise InputError(f"{model} has layers 0..{layers - 1}; layer {settings.layer} does not exist")
            explainer.cluster_config = settings.cluster_config()
            explainer.capture_config = settings.capture_config()
            return explainer.explain(prompt, max_new_tokens=max_new_tokens, progress=progress)

    def close(self) -> None:
        if self._owns_backend and self._backend is not None:
            self._backend.close()


@dataclass(frozen=True)
class Shown:
    """The explanation a session is looking at, kept on the server, and when it was shown."""

    explanation: Explanation
    shown_at: float  # time.monotonic() when the reply was sent: time on task starts here
    settings: str
    rated: bool = False


def user_message(exc: Exception) -> str:
    """One line for the chat or the API client; internal errors are logged with their traceback."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    log.exception("internal error")
    return f"internal error: {type(exc).__name__}: {exc}"


def _message(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def build_app(
    backend: Backend | None = None,
    *,
    models: list[str] | None = None,
    backend_name: str = "auto",
    agent_model: str = DEFAULT_AGENT_MODEL,
    server_url: str | None = None,
    data_dir: str | Path | None = None,
    max_new_tokens: int = 32,
    max_llm_clusters: int = 4,
) -> gr.Blocks:
    """The app. Pass an already-started agent `backend` to share it (tests share one vLLM engine);
    otherwise one is started (`backend_name`) on the first question. `max_llm_clusters`: clusters
    per explanation the LLM writes rationales for (the rest get template rationales)."""
    os.environ.setdefault("GRADIO_TEMP_DIR", str(cache_root() / "gradio"))
    models = models or causal_models()
    service = Service(backend, backend_name=backend_name, agent_model=agent_model, server_url=server_url,
                      max_llm_clusters=max_llm_clusters)
    db = study_db(data_dir)

    with gr.Blocks(title="attnlens: why did the model say this?") as demo:
        demo.service = service  # for the caller's shutdown (see launch)
        demo.study_db = db
        last = gr.State(None)  # the last question answered: {"model", "prompt"}
        current = gr.State(None)  # Shown: the session's last explanation
        view = gr.State("heatmap")  # the attention view on screen

        gr.Markdown(
            "# attnlens\nAsk the model a question, then ask **why did you say this?** The reply colours the "
            "clusters of tokens the answer attended to, with a checked rationale and faithfulness scores per "
            "cluster. Each question is answered on its own (no conversation history)."
        )
        with gr.Row():
            with gr.Column(scale=3):
                model = gr.Dropdown(models, value=models[0], label="subject model")
                chat = gr.Chatbot(label="chat", height=600, sanitize_html=True, elem_id="chat")
                with gr.Row():
                    box = gr.Textbox(placeholder="Ask a question, or type: why did you say this?", show_label=False,
                                     scale=5, elem_id="question")
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                    why = gr.Button("Why did you say this?", scale=2, elem_id="why")
            with gr.Column(scale=2):
                with gr.Accordion("Settings", open=False):
                    tokens = gr.Slider(1, 128, value=max_new_tokens, step=1, label="answer tokens (at most)")
                    auto_threshold = gr.Checkbox(True, label="threshold: automatic (modularity sweep)")
                    threshold = gr.Slider(0.0, 0.5, value=0.05, step=0.0005, label="threshold (manual)")
                    auto_resolution = gr.Checkbox(True, label="resolution: automatic (modularity sweep)")
                    resolution = gr.Slider(0.1, 3.0, value=1.0, step=0.05, label="resolution (manual)")
                    source = gr.Radio(list(SOURCES), value="mean", label="attention source",
                                      info="mean of layers and heads, rollout, the answer's co-attention, or one layer")
                    layer = gr.Number(0, precision=0, label="layer (with source: layer)")
                with gr.Group(visible=False, elem_id="study") as study:
                    gr.Markdown("**Study: rate this explanation** (1 = poor, 5 = excellent)")
                    clarity = gr.Radio([1, 2, 3, 4, 5], label="clarity", elem_id="clarity")
                    usefulness = gr.Radio([1, 2, 3, 4, 5], label="usefulness", elem_id="usefulness")
                    trust = gr.Radio([1, 2, 3, 4, 5], label="trust", elem_id="trust")
                    chosen = gr.Dropdown([], label="which cluster mattered most?", elem_id="chosen")
                    comment = gr.Textbox(label="comment", lines=2, elem_id="comment")
                    rate = gr.Button("Submit rating", elem_id="rate")
                study_note = gr.Markdown(elem_id="study-note")

        gr.Markdown("## Attention views (rendered when shown)")
        with gr.Tabs():
            with gr.Tab("Heatmap", elem_id="tab-heatmap") as tab_heatmap:
                gr.Markdown("How much each answer token (row) attended to each prompt token (column), over all "
                            "layers and heads, or through attention rollout.")
                heat_mode = gr.Radio(["aggregate", "rollout"], value="aggregate", label="attention")
                heat_plot = gr.Plot(elem_id="heatmap")
            with gr.Tab("Heads", elem_id="tab-heads") as tab_heads:
                gr.Markdown("Every layer (row) and head (column) by one statistic of its attention; "
                            "click a cell to see that head's pattern.")
                stat = gr.Radio(list(render.HEAD_STATS), value="entropy", label="statistic")
                stat_note = gr.Markdown(render.HEAD_STATS["entropy"][1])
                grid = gr.Dataframe(interactive=False, elem_id="head-grid", max_height=420)
                head_plot = gr.Plot(elem_id="head-pattern")
            with gr.Tab("Graph", elem_id="tab-graph") as tab_graph:
                gr.Markdown("The pruned token graph the clusters were found in, coloured by cluster "
                            "(the attention sink is left out).")
                graph_plot = gr.Plot(elem_id="graph")
            with gr.Tab("Sweep", elem_id="tab-sweep") as tab_sweep:
                gr.Markdown("Modularity for each pruning threshold and Leiden resolution tried; the ringed "
                            "cell was chosen (the most stable high-modularity cell that does not fragment the graph).")
                sweep_plot = gr.Plot(elem_id="sweep")

        view_outputs = [heat_plot, grid, head_plot, graph_plot, sweep_plot]

        def render_view(name: str, shown: Shown | None, mode: str, statistic: str):
            """Render only the view on screen; the others are left as they are (gr.skip). Without an
            explanation (a new question was asked) every view is cleared."""
            if shown is None:
                return [None] * len(view_outputs)
            updates = [gr.skip()] * len(view_outputs)
            explanation = shown.explanation
            try:
                if name == "heatmap":
                    updates[0] = render.answer_heatmap(explanation, mode)
                elif name == "heads":
                    updates[1] = render.head_grid(explanation.record, statistic)
                    updates[2] = None  # the previous head's pattern belongs to another grid
                elif name == "graph":
                    updates[3] = render.graph_figure(explanation)
                else:
                    updates[4] = render.sweep_figure(explanation)
            except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
                gr.Warning(user_message(exc))
            return updates

        def settings_of(auto_t: bool, t: float, auto_r: bool, r: float, src: str, lay: float | None) -> Settings:
            return Settings(
                threshold=None if auto_t else float(t),
                resolution=None if auto_r else float(r),
                source=src,
                layer=int(lay) if lay is not None else None,
            )

        def explain_turn(history: list, n_tokens: float, prev: dict | None, settings: Settings, progress: gr.Progress):
            """Append the explanation of the last answer (or an error) to the chat."""
            if prev is None:
                history.append(_message("assistant", render.error_html("Ask a question first; then I can say why.")))
                return history, None
            def bar(stage: str) -> None:
                """Per-stage progress; a stage name this app does not know still shows, without a fraction."""
                progress((STAGES.index(stage), len(STAGES)) if stage in STAGES else None, desc=f"{stage}...")

            try:
                explanation = service.explain(prev["model"], prev["prompt"], settings, int(n_tokens), bar)
            except Exception as exc:  # noqa: BLE001 - shown in the chat
                history.append(_message("assistant", render.error_html(user_message(exc))))
                return history, None
            history.append(_message("assistant", views.explanation_html(explanation.to_dict())))
            return history, Shown(explanation, time.monotonic(), settings.to_json())

        def after_explain(history: list, shown: Shown | None, prev: dict | None):
            """Outputs shared by both chat events: the study panel follows the explanation on screen."""
            if shown is None:
                return history, "", prev, None, gr.update(visible=False), gr.update(choices=[], value=None), "", *blank
            data = shown.explanation.to_dict()
            choices = [(f"{c['id']}: {c['label']}", c["id"]) for c in data["clusters"]]
            return (history, "", prev, shown, gr.update(visible=True), gr.update(choices=choices, value=None), "", *blank)

        def on_message(message: str, history: list, model_name: str, n_tokens: float, prev: dict | None,
                       auto_t, t, auto_r, r, src, lay, progress=gr.Progress()):
            history = list(history or [])
            if WHY.fullmatch(message or ""):
                history.append(_message("user", render.message_html(message)))
                history, shown = explain_turn(history, n_tokens, prev, settings_of(auto_t, t, auto_r, r, src, lay), progress)
                return after_explain(history, shown, prev)
            history.append(_message("user", render.message_html(message or "")))
            try:
                progress((0, 1), desc="generate...")
                answer = service.answer(model_name, message or "", int(n_tokens))
            except Exception as exc:  # noqa: BLE001 - shown in the chat
                history.append(_message("assistant", render.error_html(user_message(exc))))
                return after_explain(history, None, prev)
            history.append(_message("assistant", render.message_html(answer)))
            return after_explain(history, None, {"model": model_name, "prompt": message})

        def on_why(history: list, n_tokens: float, prev: dict | None, auto_t, t, auto_r, r, src, lay,
                   progress=gr.Progress()):
            """The button: explains the session's last answer (with the model that gave it)."""
            history = list(history or [])
            history.append(_message("user", render.message_html("Why did you say this?")))
            history, shown = explain_turn(history, n_tokens, prev, settings_of(auto_t, t, auto_r, r, src, lay), progress)
            return after_explain(history, shown, prev)

        settings_inputs = [auto_threshold, threshold, auto_resolution, resolution, source, layer]
        chat_outputs = [chat, box, last, current, study, chosen, study_note, clarity, usefulness, trust, comment]
        blank = (None, None, None, "")  # a new explanation starts with an empty rating form
        view_inputs = [view, current, heat_mode, stat]
        for trigger in (box.submit, send.click):
            trigger(
                on_message, [box, chat, model, tokens, last, *settings_inputs], chat_outputs,
                concurrency_limit=1, concurrency_id=MODEL_WORK, api_visibility="private",
            ).then(render_view, view_inputs, view_outputs, api_visibility="private")
        why.click(
            on_why, [chat, tokens, last, *settings_inputs], chat_outputs,
            concurrency_limit=1, concurrency_id=MODEL_WORK, api_visibility="private",
        ).then(render_view, view_inputs, view_outputs, api_visibility="private")

        for tab, name in ((tab_heatmap, "heatmap"), (tab_heads, "heads"), (tab_graph, "graph"), (tab_sweep, "sweep")):
            tab.select(lambda name=name: name, None, view, api_visibility="private").then(
                render_view, view_inputs, view_outputs, api_visibility="private"
            )
        heat_mode.change(render_view, [gr.State("heatmap"), current, heat_mode, stat], view_outputs, api_visibility="private")
        stat.change(lambda s: render.HEAD_STATS[s][1], stat, stat_note, api_visibility="private").then(
            render_view, [gr.State("heads"), current, heat_mode, stat], view_outputs, api_visibility="private"
        )

        def on_cell(shown: Shown | None, evt: gr.SelectData):
            """A click on the grid: that head's pattern, computed now (column 0 is the layer number)."""
            row, col = evt.index
            if shown is None or col == 0:
                return gr.skip()
            try:
                return render.head_pattern(shown.explanation.record, int(row), int(col) - 1)
            except Exception as exc:  # noqa: BLE001 - shown to the user
                gr.Warning(user_message(exc))
                return gr.skip()

        grid.select(on_cell, [current], head_plot, api_visibility="private")

        def on_rate(c, u, tr, cluster, text: str, shown: Shown | None, request: gr.Request):
            if shown is None or shown.rated:
                return gr.skip(), gr.skip(), "Rate an explanation after asking why."
            if None in (c, u, tr):
                return gr.skip(), gr.skip(), "Please rate clarity, usefulness and trust (1-5)."
            data = shown.explanation.to_dict()
            rating = Rating(
                session=request.session_hash or "", model=data["model"], prompt=data["prompt"], answer=data["answer"],
                clarity=int(c), usefulness=int(u), trust=int(tr),
                chosen_cluster=int(cluster) if cluster is not None else None,
                top_cluster=data["clusters"][0]["id"] if data["clusters"] else None,
                n_clusters=len(data["clusters"]), comment=text or "",
                time_on_task_s=round(time.monotonic() - shown.shown_at, 3), settings=shown.settings,
            )
            try:
                record(db, rating)
            except Exception as exc:  # noqa: BLE001 - shown to the user
                return gr.skip(), gr.skip(), f"Not saved: {user_message(exc)}"
            return (replace(shown, rated=True), gr.update(visible=False),
                    f"Thank you: rating saved (time on task {rating.time_on_task_s:.0f} s).")

        rate.click(on_rate, [clarity, usefulness, trust, chosen, comment, current], [current, study, study_note],
                   api_visibility="private")

        def explain(prompt: str, model: str = models[0], max_new_tokens: int = max_new_tokens,
                    threshold: float | None = None, resolution: float | None = None, source: str = "mean",
                    layer: int | None = None) -> dict:
            """Explain the model's answer to `prompt`: the `attnlens explain --json` object (docs/json.md).
            threshold/resolution None: chosen by the modularity sweep; source: mean|rollout|answer|layer."""
            try:
                settings = Settings(threshold=threshold, resolution=resolution, source=source, layer=layer)
                return service.explain(model, prompt, settings, int(max_new_tokens)).to_dict()
            except Exception as exc:  # noqa: BLE001 - the client gets one line
                raise gr.Error(user_message(exc)) from None

        gr.api(explain, api_name="explain", concurrency_limit=1, concurrency_id=MODEL_WORK)

    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, *, block: bool = True) -> None:
    """Serve on `host` (127.0.0.1 unless told otherwise). block=False returns at once (tests)."""
    demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, css=views.CSS,
        ssr_mode=False, show_error=False, quiet=not block, footer_links=["api"],
        state_session_capacity=SESSIONS_KEPT,
    )
