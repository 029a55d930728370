"""What real users and scripts throw at the hub, through the real API of every app (one live hub).

Every case gets a clear message (never gradio's generic "upstream app has raised an exception")
or correct handling, and the server keeps serving the next request.
"""

from __future__ import annotations

import contextlib
import io
import threading

import numpy as np
import pytest
import skimage.data
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.support.servers import REPO_ROOT, serve_hub

GENERIC = "upstream Gradio app has raised an exception"
FACE_B = REPO_ROOT / "apps" / "glasses" / "examples" / "b_photo.jpg"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    with serve_hub() as url:
        clients = {}

        def client(app: str) -> Client:
            if app not in clients:
                clients[app] = Client(f"{url}/{app}/", verbose=False, analytics_enabled=False,
                                      download_files=str(downloads))
            return clients[app]

        client.url = url
        yield client
        for c in clients.values():
            c.close()


def hub_process(hub):
    """The hub's server process (the one listening on the test hub's port)."""
    import psutil

    port = int(hub.url.rsplit(":", 1)[1])
    pid = next(c.pid for c in psutil.net_connections("tcp")
               if c.laddr and c.laddr.port == port and c.status == "LISTEN")
    return psutil.Process(pid)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every awkward input, written once."""
    root = tmp_path_factory.mktemp("inputs")
    photo = Image.fromarray(skimage.data.astronaut())

    def save(name, image, **kwargs):
        path = root / name
        image.save(path, **kwargs)
        return path

    def raw(name, data: bytes):
        path = root / name
        path.write_bytes(data)
        return path

    png = io.BytesIO()
    photo.save(png, "PNG")
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees
    wide = photo.resize((512, 256))
    pair = Image.new("RGB", (1024, 512))
    pair.paste(photo, (0, 0))
    pair.paste(photo, (512, 0))
    sixteen = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    return {
        "not_an_image": raw("notes.png", b"these are my holiday notes, not a picture\n" * 20),
        "truncated_png": raw("truncated.png", png.getvalue()[: len(png.getvalue()) // 2]),
        "truncated_jpeg": raw("truncated.jpg", jpeg.getvalue()[: len(jpeg.getvalue()) // 3]),
        "zero_bytes": raw("empty.png", b""),
        "bomb": save("bomb.png", Image.new("1", (20000, 20000))),
        "huge": save("huge.png", Image.new("L", (10000, 10000), 128)),
        "one_pixel": save("one.png", Image.new("RGB", (1, 1), (200, 120, 90))),
        "very_wide": save("wide.png", photo.resize((2000, 10))),
        "very_tall": save("tall.png", photo.resize((10, 2000))),
        "grayscale": save("gray.png", photo.convert("L")),
        "rgba": save("rgba.png", photo.convert("RGBA")),
        "palette": save("palette.png", photo.convert("P")),
        "sixteen_bit": save("sixteen.png", Image.fromarray(sixteen, "I;16")),
        "cmyk": save("cmyk.jpg", photo.convert("CMYK"), quality=95),
        "exif_rotated": save("rotated.jpg", wide, exif=exif, quality=95),
        "photo": save("photo.png", photo),
        "no_face": save("coffee.png", Image.fromarray(skimage.data.coffee())),
        "two_faces": save("two_faces.png", pair),
        "mask_empty": save("mask_empty.png", Image.new("L", (512, 512), 0)),
        "mask_full": save("mask_full.png", Image.new("L", (512, 512), 255)),
        "mask_other_size": save("mask_small.png", Image.fromarray(
            np.pad(np.full((40, 40), 255, np.uint8), ((60, 156), (80, 136))))),  # 256x256 for a 512x512 photo
        "mask_wide": save("mask_wide.png", Image.new("L", (512, 128), 255)),
        "mask_square": save("mask_square.png", Image.fromarray(
            np.pad(np.full((64, 64), 255, np.uint8), ((200, 248), (200, 248))))),
    }


# app -> (api_name, builder(image path, files) -> (args, kwargs)): cheap settings, real models.
ENDPOINTS = {
    "season": ("/translate", lambda f, fs: ([handle_file(f)], {"model_id": "cyclegan.vintage", "mode": "resize"})),
    "sketch2photo": ("/photo_to_sketch", lambda f, fs: ([handle_file(f)], {})),
    "sketch2photo ": ("/sketch_to_photo", lambda f, fs: ([handle_file(f)], {"model_id": "pix2pix.edges2faces64",
                                                                             "variations": 1, "seed": 0})),
    "inpaint": ("/inpaint", lambda f, fs: ([handle_file(f), handle_file(fs["mask_square"])], {"method": "telea"})),
    # The other inpainting endpoints (the trailing spaces keep the keys apart; the app is "inpaint").
    "inpaint ": ("/remove_object", lambda f, fs: ([handle_file(f), "+0,0"], {"selector": "grabcut", "method": "telea"})),
    "inpaint  ": ("/select_mask", lambda f, fs: ([handle_file(f), "+0,0", "grabcut"], {})),
    "inpaint   ": ("/compare_methods", lambda f, fs: ([handle_file(f), handle_file(fs["mask_square"]), ["telea"]], {})),
    "inpaint    ": ("/extend_canvas", lambda f, fs: ([handle_file(f), 0, 0, 8, 0, "telea"], {})),
    "pulse": ("/upsample", lambda f, fs: ([handle_file(f)], {"generator": "dcgan.faces64", "size": 16, "steps": 10,
                                                              "samples": 1, "seed": 1})),
    "glasses": ("/swap", lambda f, fs: ([handle_file(f), handle_file(FACE_B)], {})),
    "latent": ("/invert", lambda f, fs: ([handle_file(f)], {"generator": "dcgan.faces64", "method": "encoder",
                                                             "steps": 10})),
}
FILE_ERRORS = {
    "not_an_image": "not an image",
    "truncated_png": "corrupt or truncated",
    "truncated_jpeg": "corrupt or truncated",
    "zero_bytes": "empty",
    "bomb": "too large",
    "huge": "too large",
}
ODD_BUT_VALID = ["one_pixel", "very_wide", "very_tall", "grayscale", "rgba", "palette", "sixteen_bit", "cmyk",
                 "exif_rotated"]


# The editors (gr.ImageEditor, gr.Sketchpad): the file as each part of their value. The
# 1-bit bomb PNG costs a few KB; decoded as the editor's RGBA it would take gigabytes.
EDITOR_ENDPOINTS = {
    "inpaint_editor background": ("inpaint", "/inpaint_editor", lambda f, fs: (
        [{"background": handle_file(f), "layers": [], "composite": None}, "telea"], {})),
    "inpaint_editor layer": ("inpaint", "/inpaint_editor", lambda f, fs: (
        [{"background": handle_file(fs["photo"]), "layers": [handle_file(f)], "composite": None}, "telea"], {})),
    "sketch_to_photo_pad composite": ("sketch2photo", "/sketch_to_photo_pad", lambda f, fs: (
        [{"background": None, "layers": [], "composite": handle_file(f)}], {"variations": 1})),
    "sketch_to_photo_pad background": ("sketch2photo", "/sketch_to_photo_pad", lambda f, fs: (
        [{"background": handle_file(f), "layers": [], "composite": None}], {"variations": 1})),
}


def call(hub, app: str, case_file, files):
    api_name, build = ENDPOINTS[app]
    args, kwargs = build(str(case_file), files)
    return hub(app.strip()).predict(*args, **kwargs, api_name=api_name)


def clear_error(fn) -> str:
    with pytest.raises(AppError) as err:
        fn()
    message = str(err.value)
    assert GENERIC not in message, "a raw exception reached the user"
    assert len(message) > 15
    return message


@pytest.mark.parametrize("case", FILE_ERRORS)
@pytest.mark.parametrize("app", ENDPOINTS)
def test_unreadable_files_get_a_clear_message(hub, files, app, case):
    message = clear_error(lambda: call(hub, app, files[case], files))
    assert FILE_ERRORS[case] in message.lower()


@pytest.mark.parametrize("case", FILE_ERRORS)
@pytest.mark.parametrize("part", EDITOR_ENDPOINTS)
def test_editor_uploads_get_the_same_clear_messages(hub, files, part, case):
    app, api_name, build = EDITOR_ENDPOINTS[part]
    args, kwargs = build(str(files[case]), files)
    message = clear_error(lambda: hub(app).predict(*args, **kwargs, api_name=api_name))
    assert FILE_ERRORS[case] in message.lower()  # (bench/attacks.py measures how fast)


def test_an_editor_bomb_is_refused_from_its_header(hub, tmp_path):
    """A 15000x15000 1-bit PNG (a few KB) in the editor: refused before gradio decodes it."""
    import psutil

    bomb = tmp_path / "bomb15k.png"
    Image.new("1", (15000, 15000)).save(bomb)
    server = hub_process(hub)
    before, peak, stop = server.memory_info().rss, [0], threading.Event()

    def sample():
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], server.memory_info().rss)
            stop.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        message = clear_error(lambda: hub("inpaint").predict(
            {"background": handle_file(str(bomb)), "layers": [], "composite": None}, "telea",
            api_name="/inpaint_editor"))
    finally:
        stop.set()
        sampler.join()
    assert "too large" in message.lower()
    assert peak[0] - before < 300 * 2**20, f"the server grew by {(peak[0] - before) / 2**20:.0f} MB"


TINY = ("one_pixel", "very_wide", "very_tall")
# The EXIF photo is the astronaut squeezed to 512x256, then turned upright: no face a detector accepts.
FACELESS = (*TINY, "exif_rotated")
# Valid images that an endpoint cannot use, and what it says; every other (endpoint, image) gives a result.
REFUSALS = {
    **{("sketch2photo", case): "no face was found in the photo" for case in FACELESS},  # /photo_to_sketch frames a face
    **{(app, "one_pixel"): "the mask covers the whole image" for app in ("inpaint", "inpaint   ")},
    **{(app, "very_wide"): "the mask is 512x512 but the photo is 2000x10" for app in ("inpaint", "inpaint   ")},
    **{(app, "very_tall"): "the mask is 512x512 but the photo is 10x2000" for app in ("inpaint", "inpaint   ")},
    **{(app, "exif_rotated"): "the mask is 512x512 but the photo is 256x512" for app in ("inpaint", "inpaint   ")},
    **{(app, "one_pixel"): "grabcut needs some background around the object" for app in ("inpaint ", "inpaint  ")},
    ("inpaint    ", "one_pixel"): "right: 8 px is more than twice the photo's longer side (1 px)",
    ("pulse", "very_wide"): "a 2000x10 image is too small to find a face in and not square",
    ("pulse", "very_tall"): "a 10x2000 image is too small to find a face in and not square",
    ("pulse", "exif_rotated"): "no face was found in the photo",
    **{("glasses", case): "no face was found in image a (the face wearing glasses)" for case in FACELESS},
    **{("latent", case): "no face was found in the photo" for case in FACELESS},
}


@pytest.mark.parametrize("case", ODD_BUT_VALID)
@pytest.mark.parametrize("app", ENDPOINTS)
def test_odd_but_valid_images_are_handled(hub, files, app, case):
    if (app, case) in REFUSALS:
        assert REFUSALS[app, case] in clear_error(lambda: call(hub, app, files[case], files)).lower()
    else:
        assert call(hub, app, files[case], files) is not None  # an AppError here fails the test


def test_exif_rotation_is_respected(hub, files):
    _, result, _ = call(hub, "season", files["exif_rotated"], files)
    assert Image.open(result).size == (256, 512)  # upright: the stored 512x256 photo turned 90 degrees


def test_inpaint_empty_mask_returns_the_photo(hub, files):
    result, _, _, notes = hub("inpaint").predict(handle_file(str(files["photo"])), handle_file(str(files["mask_empty"])),
                                                  method="telea", api_name="/inpaint")
    assert np.array_equal(np.asarray(Image.open(result).convert("RGB")), skimage.data.astronaut())
    assert "empty" in notes.lower() or "nothing" in notes.lower() or "blank" in notes.lower()


def test_inpaint_full_mask_is_refused(hub, files):
    message = clear_error(lambda: hub("inpaint").predict(handle_file(str(files["photo"])),
                                                         handle_file(str(files["mask_full"])), method="telea",
                                                         api_name="/inpaint"))
    assert "mask" in message.lower()


def test_inpaint_mask_of_another_size_is_scaled(hub, files):
    result, _, _, _ = hub("inpaint").predict(handle_file(str(files["photo"])), handle_file(str(files["mask_other_size"])),
                                              method="telea", api_name="/inpaint")
    out = np.asarray(Image.open(result).convert("RGB"))
    changed = (out != skimage.data.astronaut()).any(-1)
    ys, xs = np.nonzero(changed)
    assert out.shape == (512, 512, 3)
    assert 110 <= ys.min() and ys.max() <= 220 and 150 <= xs.min() and xs.max() <= 260  # the mask, scaled 2x


@pytest.mark.parametrize("app", ["pulse", "glasses", "latent"])
def test_no_face(hub, files, app):
    assert "no face" in clear_error(lambda: call(hub, app, files["no_face"], files)).lower()


def test_several_faces_in_glasses_are_reported(hub, files):
    assert "2 faces" in clear_error(lambda: call(hub, "glasses", files["two_faces"], files))


def test_several_faces_in_pulse_are_a_choice(hub, files):
    # "face" 0 (the default) asks which one; a number picks it.
    message = clear_error(lambda: call(hub, "pulse", files["two_faces"], files))
    assert "2 faces were found in the photo; choose one by its number, 1 to 2 (1 is the most confident)" in message
    best, faces, _, summary, details, _ = hub("pulse").predict(
        handle_file(str(files["two_faces"])), generator="dcgan.faces64", size=16, steps=10, samples=1, seed=1, face=2,
        api_name="/upsample")
    assert Image.open(best).size == (64, 64) and len(faces) == 1
    assert "Found 2 face(s); face 2 was aligned" in summary


@pytest.mark.parametrize("kwargs, expected", [
    ({"steps": -5}, "steps"),
    ({"steps": "many"}, "steps must be a number, got 'many'"),
    ({"size": 7}, "choices"),
    ({"samples": 1000}, "sample"),
    ({"eps": -1.0}, "eps"),
])
def test_pulse_bad_numbers(hub, files, kwargs, expected):
    base = {"generator": "dcgan.faces64", "size": 16, "steps": 10, "samples": 1, "seed": 1}
    message = clear_error(lambda: hub("pulse").predict(handle_file(str(files["photo"])), **{**base, **kwargs},
                                                       api_name="/upsample"))
    assert expected in message.lower()


@pytest.mark.parametrize("app, api_name, build, expected", [
    ("pulse", "/upsample", lambda fs: ([handle_file(str(fs["photo"]))], {"generator": "dcgan.faces64", "size": 16,
                                                                        "steps": 10, "samples": 1, "seed": 2**40}),
     "seed (-1 = random) must be between -1 and 4294967295"),
    ("sketch2photo", "/sketch_to_photo", lambda fs: ([handle_file(str(fs["photo"]))], {"seed": -3}),
     "seed must be between 0 and 4294967295"),
    ("text2image", "/generate", lambda fs: ([], {"model": "diffusers.sd_turbo", "prompt": "a bicycle",
                                                 "negative_prompt": "", "steps": 1, "guidance": 0.0, "width": 512,
                                                 "height": 512, "seed": 2**64, "num_images": 1}),
     "seed (-1 = random) must be between -1 and 4294967295"),
])
def test_seeds_are_bounded(hub, files, app, api_name, build, expected):
    args, kwargs = build(files)
    assert expected in clear_error(lambda: hub(app).predict(*args, **kwargs, api_name=api_name)).lower()


def test_pulse_work_is_capped_per_device(hub, files):
    message = clear_error(lambda: hub("pulse").predict(
        handle_file(str(files["photo"])), generator="stylegan2.ffhq1024", size=16, steps=500, samples=8, seed=1,
        api_name="/upsample"))
    assert "500 steps x 8 samples = 4000 is more than this server allows in one request (2000 on cpu" in message


def test_unknown_model_choice(hub, files):
    message = clear_error(lambda: hub("season").predict(handle_file(str(files["photo"])), model_id="cyclegan.nope",
                                                        mode="resize", api_name="/translate"))
    assert "cyclegan.nope is not in the list of choices: ['cyclegan.vintage'" in message


@pytest.mark.parametrize("kwargs, expected", [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "a cat " * 3000}, "prompt"),
    ({"steps": 0}, "steps"),
    ({"width": 13}, "width"),
    ({"height": 100000}, "height"),
    ({"num_images": 50}, "image"),
    ({"guidance": -3.0}, "guidance"),
    ({"seed": "lucky"}, "seed"),
])
def test_text2image_bad_arguments(hub, kwargs, expected):
    base = {"model": "diffusers.sd_turbo", "prompt": "a red bicycle", "negative_prompt": "", "steps": 1,
            "guidance": 0.0, "width": 512, "height": 512, "seed": 1, "num_images": 1}
    message = clear_error(lambda: hub("text2image").predict(**{**base, **kwargs}, api_name="/generate"))
    assert expected in message.lower()


@pytest.mark.parametrize("prompts, expected", [
    ("", "nothing is selected"),
    ("   ;  ", "nothing is selected"),
    ("-100,100", "exclude points alone"),
    ("box 400,400,700,700", "must lie inside the 512x512 photo"),
    ("box -20,10,100,100", "must lie inside"),
    ("+600,10", "outside the 512x512 photo"),
    ("box 300,300,200,400", "left < right"),
    ("remove the cup", "cannot read"),
    ('{"include": [[10, 20]', "json"),
])
@pytest.mark.parametrize("api_name", ["/select_mask", "/remove_object"])
def test_inpaint_bad_clicks_and_boxes(hub, files, prompts, expected, api_name):
    message = clear_error(lambda: hub("inpaint").predict(handle_file(str(files["photo"])), prompts, "grabcut",
                                                         api_name=api_name))
    assert expected in message.lower()


def test_inpaint_masks_of_another_size(hub, files):
    # The photo's proportions: scaled (nearest-neighbour), in every endpoint that takes a mask.
    gallery, _, used, _ = hub("inpaint").predict(handle_file(str(files["photo"])),
                                                 handle_file(str(files["mask_other_size"])), ["telea"], 0,
                                                 api_name="/compare_methods")
    hole = np.asarray(Image.open(used).convert("L")) > 127
    assert hole.shape == (512, 512) and hole[120:200, 160:240].all() and hole.sum() == 80 * 80
    # Other proportions: refused, in every endpoint, with the two sizes named.
    for api_name, args in [("/inpaint", ["telea"]), ("/compare_methods", [["telea"]])]:
        message = clear_error(lambda: hub("inpaint").predict(handle_file(str(files["photo"])),
                                                             handle_file(str(files["mask_wide"])), *args,
                                                             api_name=api_name))
        assert "512x128" in message and "512x512" in message
    message = clear_error(lambda: hub("inpaint").predict(handle_file(str(files["photo"])), "+256,300", "grabcut",
                                                         handle_file(str(files["mask_wide"])), "telea",
                                                         api_name="/remove_object"))
    assert "proportions" in message


@pytest.mark.parametrize("sides, expected", [
    ((0, 0, 0, 0), "at least one side"),
    ((-8, 0, 0, 0), "left"),
    ((0, 5000, 0, 0), "top"),
])
def test_inpaint_bad_canvas_extensions(hub, files, sides, expected):
    message = clear_error(lambda: hub("inpaint").predict(handle_file(str(files["photo"])), *sides, "telea",
                                                         api_name="/extend_canvas"))
    assert expected in message.lower()


def test_the_hub_still_serves_after_all_that(hub, files):
    sketch = hub("sketch2photo").predict(handle_file(str(files["photo"])), api_name="/photo_to_sketch")
    assert Image.open(sketch).size == (256, 256)  # the face, framed like the training crops


def test_huge_parameters_text_is_refused_at_once_and_others_are_served(hub, tmp_path):
    """An 8x8 PNG whose ``parameters`` text is 200,000 characters (PIL reads text chunks up to 1 MB)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a" * 200_000)
    png = tmp_path / "long_parameters.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    job = hub("text2image").submit(handle_file(str(png)), api_name="/read_parameters")
    other = Client(f"{hub.url}/sketch2photo/", verbose=False, analytics_enabled=False)  # connects meanwhile
    try:
        sketch = other.predict(handle_file(str(REPO_ROOT / "apps/sketch2photo/examples/astronaut.jpg")),
                               api_name="/photo_to_sketch")
        assert Image.open(sketch).size == (256, 256)
    finally:
        other.close()
    message = clear_error(lambda: job.result(timeout=10))
    assert "200,000 characters" in message and "limit" in message
