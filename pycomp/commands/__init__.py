"""CLI command modules; each registers its commands on :data:`pycomp.cli_app.app`.

Modules here import heavy dependencies (torch, transformers) inside the command
functions, so ``pycomp solve --help`` stays fast and works without the LLM extra.
"""
