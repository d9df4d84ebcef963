"""The same per-case work as one process, on Ray actors that keep their models loaded.

`attnlens annotate --ray` and `attnlens evaluate --ray` hand their batches to `map_unordered`:
N actors (one CPU each) are built once with a worker class (it loads the subject model, and the
writer where there is LLM work, in its constructor), and each call goes to whichever actor is
free; results come back in the order they finish. Ray restarts an actor that dies and re-runs the
call it was given (`RayConfig.retries` times); a call that still fails comes back as its
exception, for the caller to record. Without `address` Ray starts on this machine with
`num_cpus = workers`; with one it joins that cluster (`ray start --head`, KubeRay, `ray up`).

Ray is an optional extra (`pip install 'attnlens[ray]'`): nothing here imports it until used.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from attnlens.errors import InputError


# Cases per batch: each batch's answers come from one generate call and its rationales from one LLM
# call per agent step. 16 over 8 (32 held-back cases, measured): drafts no dearer per line, and the
# rare third call (a refinement the critic asked for) joins its batch's; a kill loses one batch.
DEFAULT_BATCH_SIZE = 16
RAY_MISSING = "--ray needs Ray, which is not installed: pip install 'attnlens[ray]'"


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None  # an existing cluster ("auto", "ray://host:10001", "host:6379"); None: start one here
    workers: int = 2  # actors, one CPU each; each keeps its own copy of the models
    retries: int = 2  # restarts of a dead actor, and re-runs of the call it had

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError("--workers must be at least 1")


def prepare_worker() -> None:
    """What an actor's process needs before it loads a model: attnlens' process settings
    (telemetry off, quiet logs) and one torch thread, as it was given one CPU."""
    from attnlens import runtime

    runtime.apply_defaults()
    runtime.configure_logging()
    runtime.set_threads(1)


def require_ray():
    """The ray module, or a one-line InputError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(RAY_MISSING) from None
    return ray


@contextlib.contextmanager
def connect(config: RayConfig) -> Iterator[object]:
    """Ray for the length of a command: started here (or joined at `address`), shut down after."""
    ray = require_ray()
    if ray.is_initialized():  # the caller's own session: used as it is, left running
        yield ray
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False, "logging_level": logging.ERROR}
    try:
        if config.address:
            ray.init(address=config.address, **quiet)
        else:
            # Ray's default, token authentication, stays on; only its notice that it is on is quieted
            logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
            ray.init(num_cpus=config.workers, **quiet)
    except ConnectionError as exc:
        raise InputError(f"cannot reach the Ray cluster at {config.address}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def map_unordered(
    ray, worker_class: type, init_args: tuple, calls: Sequence[tuple], config: RayConfig
) -> Iterator[tuple[int, object]]:
    """(index into `calls`, worker.run(*call) or the exception it ended in), as each finishes.

    `worker_class(*init_args)` is built once per actor; it may define `close()`, called before the
    actor is let go.
    """
    if not calls:
        return
    actor_class = ray.remote(num_cpus=1, max_restarts=config.retries, max_task_retries=config.retries)(worker_class)

    def new_actor():
        return actor_class.remote(*init_args)

    actors = [new_actor() for _ in range(min(config.workers, len(calls)))]
    queue = list(enumerate(calls))
    idle = list(actors)
    running: dict = {}
    try:
        while queue or running:
            while idle and queue:
                index, call = queue.pop(0)
                actor = idle.pop()
                running[actor.run.remote(*call)] = (index, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                index, actor = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.ActorDiedError as exc:  # restarts used up: a fresh actor takes its place
                    result = exc
                    actors.remove(actor)
                    actor = new_actor()
                    actors.append(actor)
                except ray.exceptions.RayError as exc:
                    result = exc.as_instanceof_cause() if isinstance(exc, ray.exceptions.RayTaskError) else exc
                idle.append(actor)
                yield index, result
    finally:
        for actor in actors:
            if hasattr(worker_class, "close"):
                with contextlib.suppress(Exception):  # an actor that is already gone has nothing to close
                    ray.get(actor.close.remote(), timeout=60)
            ray.kill(actor)
