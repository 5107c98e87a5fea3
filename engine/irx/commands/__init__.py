"""The commands: one module per ``irx`` command, each with ``main(...) -> int``.

A command module is where printing and exit-code decisions live: it calls the concept modules (loader,
rules, plan, run, orchestrator, executors, timeline, report), which return values and raise ``IrxError``,
and turns what they return into output and an exit code. Concept modules print nothing and never import
a command; ``irx.cli`` only parses arguments and calls a command's ``main``.
"""
