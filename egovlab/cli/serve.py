"""`egovlab serve`: the control API, its metrics and the web view, on loopback by default."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from egovlab.inventory.errors import EgovlabError

from egovlab import params

from .common import console


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=params.PORT.click(integer=True), default=8765, show_default=True)
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False), default=None,
              help="Token file: one 'ROLE TOKEN' per line (roles: read-only, operator); "
                   "else $EGOVLAB_API_TOKENS='operator:TOKEN,read-only:TOKEN'.")
@click.option("--new-tokens", type=click.Path(dir_okay=False), default=None,
              help="Write a new token file (0600) with one token per role, then exit.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="/var/lib/egovlab/api", show_default=True,
              help="Uploaded scenarios and the jobs' logs and results.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None, help="Serve HTTPS with this PEM certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="The certificate's PEM private key.")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP on an address beyond loopback (tokens in clear).")
def serve(host: str, port: int, tokens_file: str | None, new_tokens: str | None, data_dir: str,
          tls_cert: str | None, tls_key: str | None, insecure: bool) -> None:
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
    if bool(tls_cert) != bool(tls_key):
        raise EgovlabError("--tls-cert and --tls-key go together")
    if tls_cert:
        _check_tls(tls_cert, tls_key)
    elif not loopback and not insecure:
        raise EgovlabError(f"--host {host}: beyond loopback the tokens would cross the network in clear; "
                           "give --tls-cert and --tls-key (or --insecure behind a TLS proxy)")
    elif not loopback:
        click.echo(f"warning: listening on {host} beyond loopback without TLS (--insecure)", err=True)
    import uvicorn

    from egovlab.api.app import create_app

    app = create_app(loaded, Path(data_dir))
    scheme = "https" if tls_cert else "http"
    console.print(f"egovlab API on {scheme}://{host if ':' not in host else f'[{host}]'}:{port}/ "
                  f"(web view /, OpenAPI /docs, metrics /metrics)")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5,
                ssl_certfile=tls_cert, ssl_keyfile=tls_key)


def _check_tls(cert: str, key: str) -> None:
    """A certificate and key that load together, checked before the server starts."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise EgovlabError(f"{exc.filename}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise EgovlabError(f"--tls-cert/--tls-key: cannot load {cert} with {key}: {exc.strerror or exc}") from None


COMMANDS = [serve]
