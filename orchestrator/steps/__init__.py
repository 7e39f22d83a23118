"""The lifecycle's steps, one module each (Molecule's ``command/`` is the model).

Each step is a function over the typed :class:`~orchestrator.context.Context`: it reads
what the earlier steps left there, does its one job, and adds its part of the record.
:mod:`orchestrator.lifecycle` holds their order, runs them, and always tears down.
"""
