"""Season swap from a script. Start the app first: python apps/season/app.py"""

from gradio_client import handle_file

from _common import APPS, connect

client = connect()
before_after, result, notes = client.predict(
    handle_file(str(APPS / "season" / "examples" / "rocket.jpg")),
    model_id="cyclegan.vintage",  # or cyclegan.summer2winter / cyclegan.winter2summer when downloaded
    mode="tiled",  # full resolution over blended tiles; "resize" runs once at the model's size
    api_name="/translate",
)
print("result PNG:", result)
print(notes)
client.close()
