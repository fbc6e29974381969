"""`egovlab serve`: the control API, its metrics and the web view, on loopback by default."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from egovlab.inventory.errors import EgovlabError

from .cli import cli, console


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False), default=None,
              help="Token file: one 'ROLE TOKEN' per line (roles: read-only, operator); "
                   "else $EGOVLAB_API_TOKENS='operator:TOKEN,read-only:TOKEN'.")
@click.option("--new-tokens", type=click.Path(dir_okay=False), default=None,
              help="Write a new token file (0600) with one token per role, then exit.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="/var/lib/egovlab/api", show_default=True,
              help="Uploaded scenarios and the jobs' logs and results.")
def serve(host: str, port: int, tokens_file: str | None, new_tokens: str | None, data_dir: str) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /docs), Prometheus /metrics and the web view (/)."""
    from egovlab.api import tokens

    if new_tokens:
        tokens.generate(Path(new_tokens))
        console.print(f"wrote {new_tokens} (0600): one read-only and one operator token")
        return
    loaded = tokens.load(tokens_file)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise EgovlabError(f"--host: expected an IP address, got '{host}'") from None
    if not loopback:
        click.echo(f"warning: listening on {host} beyond loopback, without TLS: put a TLS proxy in front", err=True)
    import uvicorn

    from egovlab.api.app import create_app

    app = create_app(loaded, Path(data_dir))
    console.print(f"egovlab API on http://{host if ':' not in host else f'[{host}]'}:{port}/ "
                  f"(web view /, OpenAPI /docs, metrics /metrics)")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
