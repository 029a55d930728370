"""PULSE face upsampling from a script. Start the app first: python apps/pulse/app.py"""

from gradio_client import handle_file

from _common import APPS, connect

client = connect()
best, faces, downscaled, summary, details, seed = client.predict(
    handle_file(str(APPS / "pulse" / "examples" / "dcgan_face_16.png")),  # a tiny face is used as is
    generator="dcgan.faces64", size=16, steps=100, eps=2e-3, samples=4, seed=1, face=0,
    api_name="/upsample",
)
print(summary)
print("faces, best first:", [item["image"] for item in faces])
print("seed:", seed)
client.close()
