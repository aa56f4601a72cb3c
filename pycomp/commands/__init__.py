"""The ``pycomp`` commands, one module each; :mod:`pycomp.cli` registers them on the app.

:mod:`~pycomp.commands.options` declares the options several commands share.
Modules here import heavy dependencies (torch, transformers) inside the command
functions, so ``pycomp solve --help`` stays fast and works without the LLM extra.
"""
