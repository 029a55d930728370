"""Inpainting from a script: a mask file, "remove the thing at (x, y)", a method comparison and an
extended canvas. Start the app first: python apps/inpaint/app.py"""

from gradio_client import handle_file

from _common import APPS, connect

examples = APPS / "inpaint" / "examples"
photo = handle_file(str(examples / "coffee.jpg"))
client = connect()

# 1. A mask file (white = hole): MI-GAN if downloaded, else LaMa if downloaded, else OpenCV Telea.
result, before_after, mask_used, notes = client.predict(
    photo, handle_file(str(examples / "coffee_mask.png")),
    method="auto", dilation=4, strategy="crop", working_size=768, margin=128,
    api_name="/inpaint",
)
print("result PNG:", result, "| mask used (PNG, photo's size):", mask_used)
print(notes)

# 2. Remove the spoon by pointing at it: +x,y include, -x,y exclude, box left,top,right,bottom (or JSON).
removed, _, removed_mask, notes = client.predict(
    photo, "+365,280; box 315,60,430,340", selector="auto", mask=None, method="auto", dilation=6,
    api_name="/remove_object",
)
print("removed:", removed)
print(notes)

# 3. Only the selection, as a mask PNG to edit or reuse.
preview, selected_mask, notes = client.predict(photo, "box 315,60,430,340", "grabcut", 0, api_name="/select_mask")

# 4. The same mask with several methods, side by side.
gallery, (first, second), _, notes = client.predict(
    photo, handle_file(str(examples / "coffee_mask.png")), ["telea", "ns"], 4, api_name="/compare_methods")
print("compared:", [item["caption"] for item in gallery])

# 5. Extend the canvas by 64 px on the right (Telea offline: fine for narrow bands only).
extended, new_area, notes = client.predict(photo, 0, 0, 64, 0, "telea", api_name="/extend_canvas")
print("extended:", extended)
client.close()
