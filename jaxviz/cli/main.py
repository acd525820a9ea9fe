"""The ``jaxviz`` command: one module per subcommand, shared options and error handling.

Every subcommand takes ``--out``, ``--seed``, ``--quick`` and ``--cache-dir``. Bad arguments and
missing files end with exit code 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from jaxviz.errors import JaxvizError

SUBCOMMANDS = ("tour", "train", "saliency", "inspect", "texture", "style", "doodle", "featureviz", "dream", "distill", "fast-style", "generate")


def common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--out", default="jaxviz-out", help="output folder (default: %(default)s)")
    parent.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parent.add_argument("--quick", action="store_true", help="small, fast settings (minutes on a CPU)")
    parent.add_argument("--cache-dir", default=None, help="checkpoints and trained models (default: $JAXVIZ_CACHE or ~/.cache/jaxviz)")
    parent.add_argument("--no-progress", action="store_true", help="no progress bars or log lines")
    return parent


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="jaxviz", description="Look inside neural networks and make images with them.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parent = common_options()
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"jaxviz.cli.{name.replace('-', '_')}")
        sub = subparsers.add_parser(name, parents=[parent], help=module.HELP, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (JaxvizError, FileNotFoundError) as e:
        print(f"jaxviz {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jaxviz {args.command}: interrupted; progress so far is checkpointed, run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
