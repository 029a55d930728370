"""Sketch to photo from a script. Start the app first: python apps/sketch2photo/app.py"""

from gradio_client import handle_file

from _common import APPS, connect

client = connect()
sketch = client.predict(handle_file(str(APPS / "sketch2photo" / "examples" / "astronaut.jpg")), detail=0.4,
                        api_name="/photo_to_sketch")
print("edges drawn from the photo:", sketch)
photos, notes = client.predict(handle_file(sketch), model_id="pix2pix.edges2faces64", paper_mode=True,
                               variations=4, seed=0, api_name="/sketch_to_photo")
print("photos:", [item["image"] for item in photos])
print(notes)
client.close()
