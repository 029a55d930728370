"""Text to image from a script. Start the app first: python apps/text2image/app.py
(the model's weights must be downloaded: python -m core.weights fetch diffusers.sd_turbo)"""


from _common import connect

client = connect()
images, seed, parameters = client.predict(
    model="diffusers.sd_turbo", prompt="a lighthouse on a cliff at sunset, oil painting", negative_prompt="",
    steps=1, guidance=0.0, width=512, height=512, seed=42, num_images=1, fast_decode=True,
    api_name="/generate",
)
print("images:", [item["image"] for item in images])
print("seed:", seed)
print(parameters)
client.close()
