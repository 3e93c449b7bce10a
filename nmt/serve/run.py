"""``nmt serve``: load the models, build the app, and serve it with uvicorn until SIGTERM or Ctrl-C, which stop
accepting connections, finish the requests in flight and exit with status 0."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from nmt.config.export import Backend
from nmt.data.load import resolve_path
from nmt.runtime.process import Runtime
from nmt.serve.app import create_app
from nmt.serve.auth import Guard, RedactKeys
from nmt.serve.config import ServeConfig
from nmt.serve.engine import load_models

log = logging.getLogger("nmt.serve")


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that after a graceful stop it exits normally instead of re-raising the signal."""

    def handle_exit(self, sig: int, frame: object) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(sc: ServeConfig) -> None:
    guard = Guard.from_config(sc)  # a bad key file fails before the models load
    # auto: one tuner for every model, told each search's time
    threads = Runtime.install(sc.threads, tune_memory=False, signals=False).threads
    executor = ThreadPoolExecutor(max_workers=sc.workers, thread_name_prefix="nmt-model")
    paths = [str(resolve_path(p)) for p in [sc.checkpoint, *sc.more]]
    models = load_models(paths, sc.quantize, sc.batch_wait_ms / 1000, executor, sc.workers, threads, sc.device,
                         sc.batch_linger_ms / 1000, sc.backend)
    app = create_app(models, sc, executor, guard)
    where = " in onnxruntime" if sc.backend == Backend.onnxruntime else ""
    names = ", ".join(f"{m.name} ({m.src_lang}->{m.tgt_lang}{where})" for m in models)
    keys = f"; {len(guard.keys)} API key{'s' * (len(guard.keys) > 1)}" if guard.keys else ""
    print(f"serving {names} at http://{sc.host}:{sc.port}/ (API schema at /docs{keys}); Ctrl-C stops", flush=True)
    server = GracefulServer(uvicorn.Config(app, host=sc.host, port=sc.port, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=30))
    logging.getLogger("uvicorn.access").addFilter(RedactKeys())  # the access log is off; if turned on, no keys
    server.run()
    print("stopped", flush=True)
