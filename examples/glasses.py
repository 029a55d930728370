"""Eyeglasses transfer from a script. Start the app first: python apps/glasses/app.py"""

from gradio_client import handle_file

from _common import APPS, connect

examples = APPS / "glasses" / "examples"
client = connect()
b_with_glasses, a_without, crops, notes = client.predict(
    handle_file(str(examples / "a_photo_glasses.jpg")),  # A: wears the glasses to transfer
    handle_file(str(examples / "b_photo.jpg")),  # B: no glasses
    strength=1.0,
    api_name="/swap",
)
print("B with A's glasses:", b_with_glasses)
print("A without glasses:", a_without)
print(notes)
client.close()
