"""``python -m devconsole seed|ingest|serve`` — the dev console's command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def serve_command(args: argparse.Namespace) -> int:
    from devconsole.server import ServerConfig, run_server

    config = ServerConfig(
        data_dir=Path(args.data),
        port=args.port,
        app_url=args.app_url,
        manifest_path=Path(args.manifest),
        app_id=args.app_id,
        default_window_ms=int(args.default_window_minutes * 60_000),
        search_retention_seconds=args.search_retention,
        search_reuse_seconds=args.search_reuse,
        console_csp=args.csp == "on",
    )
    if not args.access_log:
        # One line per request drowns `make run` (the refresher polls searches); errors still show.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_server(config)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devconsole",
        description="A local stand-in for IBM QRadar (REST API, AQL, console pages).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    seed = commands.add_parser(
        "seed", help="write the scenario's raw records and ingest them into DIR/events.db"
    )
    seed.add_argument("--data", required=True, help="data directory")
    seed.add_argument("--events", type=int, default=None, help="number of events to generate")
    seed.add_argument("--seed", type=int, default=None, help="random seed (reproducible data)")
    seed.add_argument(
        "--receipt-delays",
        default="realistic",
        help="when QRadar receives each record (starttime): realistic (default: per-platform delays, "
        "Office 365 minutes to hours behind Entra), none, or a JSON file (devconsole/dsm/receipt.py)",
    )
    seed.add_argument(
        "--max-payload-bytes",
        type=int,
        default=None,
        help="payloads longer than this are stored cut (0: no limit; default 4096)",
    )

    ingest = commands.add_parser("ingest", help="ingest raw JSON records (JSON lines or a JSON array)")
    ingest.add_argument("--data", required=True, help="data directory")
    ingest.add_argument(
        "--receipt-delays",
        default="none",
        help="when QRadar receives each record (starttime): none (default: at the record's own time), "
        "realistic, or a JSON file of per-type ranges and per-record delays (devconsole/dsm/receipt.py)",
    )
    ingest.add_argument(
        "--max-payload-bytes",
        type=int,
        default=None,
        help="payloads longer than this are stored cut (0: no limit; default 4096)",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE")

    serve = commands.add_parser("serve", help="serve the REST API and console pages over HTTPS on 127.0.0.1")
    serve.add_argument("--data", required=True, help="data directory (events.db, ca.pem, tokens.json)")
    serve.add_argument("--port", type=int, default=8443, help="HTTPS port (0 = any free port; default 8443)")
    serve.add_argument("--app-url", default="http://127.0.0.1:5000", help="where the app listens (HTTP)")
    serve.add_argument("--manifest", default="manifest.json", help="the app's manifest.json")
    serve.add_argument(
        "--app-id", type=int, default=1101, help="the app id in /console/plugins/<id>/app_proxy"
    )
    serve.add_argument(
        "--default-window-minutes",
        type=float,
        default=5.0,
        help="window of a query without a time clause (AQL guide: 5; API 26.0: 1)",
    )
    serve.add_argument(
        "--search-retention", type=float, default=1800.0, help="seconds a finished, unsaved search is kept"
    )
    serve.add_argument(
        "--search-reuse",
        type=float,
        default=30.0,
        help="seconds within which an identical query by the same user returns the same search",
    )
    serve.add_argument(
        "--csp",
        choices=("on", "off"),
        default="on",
        help="console pages' Content-Security-Policy (off: see whether injected app HTML is safe without it)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request (werkzeug's access log)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "seed":
        from devconsole.scenario import seed_command

        return seed_command(args) or 0
    if args.command == "ingest":
        from devconsole.ingest import ingest_command

        return ingest_command(args) or 0
    return serve_command(args)


if __name__ == "__main__":
    sys.exit(main())
