"""Inpainting from a script (image + mask, no editor). Start the app first: python apps/inpaint/app.py"""

from gradio_client import Client, handle_file

from _common import APPS, server_url

examples = APPS / "inpaint" / "examples"
client = Client(server_url())
result, before_after, mask_used, notes = client.predict(
    handle_file(str(examples / "coffee.jpg")),
    handle_file(str(examples / "coffee_mask.png")),  # white = hole
    method="auto",  # LaMa when downloaded, else OpenCV Telea
    dilation=4, strategy="crop", working_size=768, margin=128,
    api_name="/inpaint",
)
print("result PNG:", result)
print(notes)
client.close()
