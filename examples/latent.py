"""Latent lab from a script: sample, walk, slide along a direction, invert a photo and edit it.
Start the app first: python apps/latent/app.py"""

from gradio_client import handle_file

from _common import APPS, connect

client = connect()
samples, latents, notes = client.predict("dcgan.faces64", 0, 4, 0.7, api_name="/sample")  # seeds 0-3
print(notes, "latent of seed 0:", latents[0])
animation, strip, smoothness, details = client.predict(
    "dcgan.faces64", 0, handle_file(latents[0]), 3, None,  # A: the downloaded latent; B: seed 3
    space="z", method="slerp", frames=8, psi=0.7, api_name="/interpolate")
print("walk:", animation, "\n" + smoothness)
slide, direction_notes = client.predict("dcgan.faces64", 1, None, attribute="eyeglasses", alpha=2.0, steps=5,
                                        space="z", psi=0.7, api_name="/direction")
print([frame["caption"] for frame in slide])
photo = handle_file(str(APPS / "latent" / "examples" / "photo.jpg"))
aligned, reconstruction, latent, invert_notes = client.predict(photo, "dcgan.faces64", method="hybrid", steps=100,
                                                               api_name="/invert")
print(invert_notes)
edited, steps, edit_notes = client.predict(photo, "dcgan.faces64", handle_file(latent), method="hybrid",
                                           attribute="eyeglasses", alpha=2.0, blend="residual", steps=100,
                                           api_name="/edit")
print("edited photo:", edited)
client.close()
