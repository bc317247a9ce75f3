"""``convlens serve``: the interactive explorer on a local web server."""

from __future__ import annotations

import ipaddress
import socket
import threading
import webbrowser
from typing import Annotated

import typer

from ..errors import ConfigError
from ._app import CONVOLUTION_COMMANDS, app, console, error_console
from .inspect import (
    MODEL,
    MODEL_DEFAULTS,
    ModelFlags,
    Output,
    open_model_for_cli,
    with_model_flags,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""The names a browser on this computer uses for a loopback server."""
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
NO_MODEL = "none"
"""``--model none``: start with no model (by default the bundled digits CNN is open)."""


@app.command(rich_help_panel=CONVOLUTION_COMMANDS)
@with_model_flags
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on. The default "
                                      "answers this computer only; `0.0.0.0` opens the page "
                                      "to your network (a warning is printed).")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 picks a free one).",
                                      min=0, max=65535)] = DEFAULT_PORT,
    model: Annotated[str | None, typer.Option("--model", help="A model for the model panel "
                     "(predictions, feature maps, learned filters, Grad-CAM): anything "
                     "`convlens inspect` opens: a convlens checkpoint, a TorchScript file, a "
                     "torch.export `.pt2` program, `package.module:factory` or a registry name "
                     "with --weights, `torchvision:NAME`. Default: the small digits CNN that "
                     "ships with convlens; `none` starts with no model.", rich_help_panel=MODEL,
                     show_default=False)] = None,
    flags: ModelFlags = MODEL_DEFAULTS,
    output: Output = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default "
                                               "web browser.")] = False,
    device: Annotated[str, typer.Option("--device", help="Where the stages are computed: "
                                        "`cpu` (steady latency), `auto`, `cuda`, `mps`.")] = "cpu",
) -> None:
    """Start the explorer: a page where you load a photo, edit kernels and watch every stage.

    Drag in a photo (or paste one, or pick a sample), edit any kernel cell and see conv,
    activation and pooling change as you type; hover or tap any output pixel to see the
    patch x kernel = products -> sum -> activation -> pooled cell that made it, the numbers
    `convlens explain` prints. Everything runs on this computer: the page makes no requests
    beyond this server. Stop the server with Ctrl+C.

    Only the page itself can change the server's state: every POST must come from the page's
    own origin and carry the random token in its HTML, and the server answers only requests
    addressed to the host it listens on, so no other web site, even one open in the same
    browser, can drive it. JSON requests are limited to 2 MiB, image uploads to 32 MiB, model
    uploads to 256 MiB. Model files that run code when loaded (TorchScript, pickles, `.pt2`
    files with pickled parts) are refused in the page's upload unless the server was started
    with --trust-code.

    Examples:

    * `convlens serve` (then open the address it prints)
    * `convlens serve --open --port 8000`
    * `convlens serve --model runs/digits/model.safetensors`
    * `convlens serve --model none` (start with no model; by default the digits CNN that ships
      with convlens is open)
    * `convlens serve --model mypackage.nets:build --weights net.safetensors`
    * `convlens serve --host 0.0.0.0` (reachable from other machines: only on a network you
      trust)
    """
    import uvicorn

    from ..images import bundled_model_path
    from ..serve import create_app

    loopback = is_loopback(host)
    if not loopback:
        error_console.print(
            f"warning: listening on {host}, so other machines on the network can open the "
            "page and send it files; use the default --host 127.0.0.1 unless you mean that",
            markup=False)
    port = _bind_check(host, port)
    if model is None:  # the digits CNN that ships with convlens: a real network, no set-up
        opened = open_model_for_cli(str(bundled_model_path()), MODEL_DEFAULTS, device)
    elif model.strip().lower() == NO_MODEL:
        opened = None
    else:
        opened = open_model_for_cli(model, flags, device, output=output)
    application = create_app(opened, device=device, allowed_hosts=allowed_hosts(host),
                             trust_code=flags.trust_code)
    shown_host = "127.0.0.1" if host == "localhost" else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{port}/"
    console.print(f"convlens explorer at [bold]{url}[/bold]  (Ctrl+C stops it)")
    if open_browser:  # once uvicorn listens, which takes a moment
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(application, host=host, port=port, log_level="warning")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine (127.0.0.0/8, ::1, ``localhost``)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """The names a request's Host header may carry for a server listening on ``host`` (any
    port): the address itself, the loopback names for a loopback or wildcard bind, and this
    computer's name for a non-loopback one. A wildcard bind (``0.0.0.0``, ``::``) also admits
    any IP address (see :class:`convlens.serve.guard.RequestGuard`)."""
    bound = host.strip().strip("[]").lower()
    names = {bound or "0.0.0.0"}
    if is_loopback(bound) or bound in WILDCARD_HOSTS:
        names.update(LOOPBACK_HOSTS)
    if not is_loopback(bound):
        machine = socket.gethostname().lower()
        names.update({machine, f"{machine}.local"} if machine else set())
    return sorted(names)


def _bind_check(host: str, port: int) -> int:
    """Fail with a clear message when the port is taken; turn port 0 into a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "pick another --port or stop what uses it"
            ) from None
        return probe.getsockname()[1]
