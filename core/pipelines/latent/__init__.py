"""The latent lab: one module per task (``sample``, ``walk``, ``direction``, ``mix``, ``invert``,
``edit``), each with one ``run(..., settings, *, model=None) -> Result``.

They share :mod:`~core.pipelines.latent.lab` (generators from the manifest, latents from a seed or a
file, output files) and the libraries ``space`` (latent spaces, interpolation, arithmetic, mixing),
``attributes`` (measured face attributes and their directions), ``files`` (latent files,
animations) and ``inversion`` (back to z).
"""
