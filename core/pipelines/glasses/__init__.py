"""Eyeglasses transfer with GeneGAN: :func:`core.pipelines.glasses.swap.run` is the entry.

``layout`` holds the 64 px face layout the models were trained on, ``mask`` finds a photo's
frames, ``photo`` removes and adds glasses at a photo's own resolution.
"""
