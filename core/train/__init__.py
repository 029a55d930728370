"""Training entry points: ``python -m core.train <name> [args]`` runs ``core.train.<name>.main(argv)``.

Each trainer is one module in this package (``pix2pix``, ``genegan``, ...) with a ``main(argv)``
that parses its own arguments. Trainers run on the CPU by default, write safetensors checkpoints
and can resume.
"""
