from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from core import faces

REPO = Path(__file__).resolve().parents[2]
DETECTOR = pytest.mark.real_weights(*faces.detector_ids())
# Hand-placed landmarks (LANDMARK_NAMES order), read off 6x zoomed crops (bench/face_detectors.py).
HAND_LANDMARKS = {
    "astronaut": [[203, 101], [246, 103], [224, 125], [202, 140], [246, 140]],
    "apps/glasses/examples/a_photo_glasses.jpg": [[102, 51], [123, 52], [112, 62], [100, 70], [124, 70]],
}
FACE_PHOTOS = ["camera", "apps/glasses/examples/a_photo_glasses.jpg", "apps/glasses/examples/b_photo.jpg",
               "apps/glasses/examples/a_glasses.png", "apps/glasses/examples/b_face64.png",
               "apps/pulse/examples/astronaut_photo.jpg", "apps/pulse/examples/dcgan_face_16.png"]
# Photos without a person: skimage's, and the example photos inside the (pinned) gradio package.
OBJECT_PHOTOS = ["coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle_left", "motorcycle_right",
                 "gradio:media_assets/images/lion.jpg", "gradio:media_assets/images/cheetah1.jpg",
                 "gradio:test_data/cheetah2.jpg"]


def load_photo(name: str) -> Image.Image:
    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return Image.fromarray(left if name.endswith("left") else right)
    if name.startswith("gradio:"):
        import gradio

        return Image.open(Path(gradio.__file__).parent / name.removeprefix("gradio:")).convert("RGB")
    if "/" in name:
        return Image.open(REPO / name).convert("RGB")
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def astronaut():
    return Image.fromarray(skimage.data.astronaut())


@pytest.fixture(scope="module")
def astronaut_faces(astronaut):
    return faces.detect_faces(astronaut)


def assert_face_layout(face: faces.Face) -> None:
    x, y, w, h = face.box
    marks = face.landmarks
    assert 0.9 <= face.score <= 1.0
    assert marks["left_eye"][0] < marks["right_eye"][0] and marks["mouth_left"][0] < marks["mouth_right"][0]
    assert max(marks["left_eye"][1], marks["right_eye"][1]) < marks["nose"][1] \
        < min(marks["mouth_left"][1], marks["mouth_right"][1])
    for point in face.points():
        assert x - 0.05 * w <= point[0] <= x + 1.05 * w and y - 0.05 * h <= point[1] <= y + 1.05 * h


@DETECTOR
def test_detects_one_face_with_landmarks_where_a_person_puts_them(astronaut_faces):
    assert len(astronaut_faces) == 1
    face = astronaut_faces[0]
    x, y, w, h = face.box
    assert 150 < x < 220 and 40 < y < 100 and 60 < w < 130
    assert_face_layout(face)
    hand = np.asarray(HAND_LANDMARKS["astronaut"], float)
    error = np.hypot(*(face.points() - hand).T)
    assert error.max() < 0.15 * np.hypot(*(hand[1] - hand[0]))  # 6 px here; MTCNN is off by 4 px at most


@DETECTOR
@pytest.mark.parametrize("name", FACE_PHOTOS)
def test_faces_of_the_project_photos_are_found(name):
    found = faces.detect_faces(load_photo(name))
    assert len(found) == 1
    assert_face_layout(found[0])
    if name in HAND_LANDMARKS:
        hand = np.asarray(HAND_LANDMARKS[name], float)
        assert np.hypot(*(found[0].points() - hand).T).max() < 0.2 * np.hypot(*(hand[1] - hand[0]))


@DETECTOR
@pytest.mark.parametrize("name", OBJECT_PHOTOS)
def test_no_face_in_photos_without_people(name):
    image = load_photo(name)
    assert faces.detect_faces(image) == []
    with pytest.raises(ValueError, match="No face was found"):
        faces.single_face(image)


@DETECTOR
@pytest.mark.parametrize("name", ["motorcycle_left", "gradio:media_assets/images/lion.jpg"])
def test_the_mirror_and_layout_checks_reject_what_mtcnn_alone_calls_a_face(name):
    """MTCNN is sure of a face on the motorcycle's front wheel (0.93) and on the lion's paw (0.99)."""
    image = load_photo(name)
    unchecked = faces.detect_faces(image, checks=False)
    assert unchecked and unchecked[0].score >= faces.MIN_SCORE
    assert faces.detect_faces(image) == []


def template_face(size: float = 100.0) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    return faces.CELEBA_TEMPLATE * size, (0.0, 0.0, size, size)


def test_a_face_layout_is_plausible_at_any_roll():
    points, box = template_face()
    assert faces.plausible_landmarks(points, box)
    centre = points.mean(0)
    for degrees in (-40, 25):
        angle = np.radians(degrees)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        assert faces.plausible_landmarks((points - centre) @ rotation.T + centre, box)


@pytest.mark.parametrize("damage", ["upside_down", "nose_below_mouth", "nose_far_right", "mouth_corners_together",
                                    "eyes_tiny_in_box", "eyes_on_one_point"])
def test_jumbled_landmarks_are_not_a_face(damage):
    points, box = template_face()
    points = points.copy()
    if damage == "upside_down":
        points[:, 1] = 100 - points[:, 1]
    elif damage == "nose_below_mouth":
        points[2, 1] = 195
    elif damage == "nose_far_right":
        points[2, 0] = 200
    elif damage == "mouth_corners_together":
        points[3, 0] = points[4, 0] = 128
    elif damage == "eyes_tiny_in_box":
        box = (0.0, 0.0, 1000.0, 1000.0)
    else:
        points[1] = points[0]
    assert not faces.plausible_landmarks(points, box)


@DETECTOR
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_detection_on_cuda_matches_the_cpu(astronaut, astronaut_faces):
    [face] = faces.detect_faces(astronaut, device="cuda")
    [cpu] = astronaut_faces
    assert np.abs(face.points() - cpu.points()).max() < 0.5 and abs(face.score - cpu.score) < 1e-3
    assert np.abs(np.subtract(face.box, cpu.box)).max() < 0.5


@DETECTOR
def test_several_faces_are_reported(astronaut):
    pair = Image.new("RGB", (1024, 512))
    pair.paste(astronaut, (0, 0))
    pair.paste(astronaut, (512, 0))
    assert len(faces.detect_faces(pair)) == 2
    with pytest.raises(ValueError, match="2 faces"):
        faces.single_face(pair)


@DETECTOR
def test_ffhq_alignment_puts_eyes_level_and_centred(astronaut, astronaut_faces):
    face = astronaut_faces[0]
    aligned = faces.align_face(astronaut, face, 256)
    assert aligned.image.size == (256, 256)
    points = np.c_[face.points(), np.ones(5)] @ aligned.matrix.T
    left_eye, right_eye = points[0], points[1]
    assert abs(left_eye[1] - right_eye[1]) < 3  # rotation removed
    assert abs((left_eye[0] + right_eye[0]) / 2 - 128) < 8  # centred
    assert 0.22 < (right_eye[0] - left_eye[0]) / 256 < 0.28  # FFHQ scale: the eyes are a quarter of the width apart
    again = faces.detect_faces(aligned.image)
    assert len(again) == 1


@DETECTOR
def test_template_alignment_matches_the_template(astronaut, astronaut_faces):
    face = astronaut_faces[0]
    aligned = faces.align_face(astronaut, face, 64, template="celeba")
    points = np.c_[face.points(), np.ones(5)] @ aligned.matrix.T
    error = np.abs(points / 64 - faces.CELEBA_TEMPLATE).max()
    assert error < 0.05
    with pytest.raises(ValueError, match="Unknown alignment template"):
        faces.align_face(astronaut, face, 64, template="nope")


@DETECTOR
def test_paste_back_changes_only_the_face_region(astronaut, astronaut_faces):
    face = astronaut_faces[0]
    aligned = faces.align_face(astronaut, face, 128)
    edited = Image.new("RGB", (128, 128), (255, 0, 0))
    region = np.zeros((128, 128), np.float32)
    region[40:70, 20:108] = 1  # an eye band
    out = np.asarray(faces.paste_back(astronaut, edited, aligned, region=region)).astype(int)
    original = np.asarray(astronaut).astype(int)
    changed = (out != original).any(-1)
    inverse = np.linalg.inv(np.vstack([aligned.matrix, [0, 0, 1]]))
    corners = np.array([[20, 40, 1], [108, 40, 1], [108, 70, 1], [20, 70, 1]]) @ inverse.T
    ys, xs = np.nonzero(changed)
    assert changed.any()
    assert xs.min() >= corners[:, 0].min() - 2 and xs.max() <= corners[:, 0].max() + 2
    assert ys.min() >= corners[:, 1].min() - 2 and ys.max() <= corners[:, 1].max() + 2
    centre = np.rint(np.array([64, 55, 1]) @ inverse.T).astype(int)
    assert out[centre[1], centre[0], 0] > 240 and out[centre[1], centre[0], 1] < 15  # fully replaced inside


@DETECTOR
def test_round_trip_of_an_unedited_crop_is_close(astronaut, astronaut_faces):
    face = astronaut_faces[0]
    aligned = faces.align_face(astronaut, face, 256)
    out = np.asarray(faces.paste_back(astronaut, aligned.image, aligned)).astype(float)
    changed = (out != np.asarray(astronaut)).any(-1)
    assert np.abs(out - np.asarray(astronaut))[changed].mean() < 6  # resampled twice, nothing else


def test_the_detector_is_named_by_the_manifest(write_manifest):
    from core.weights import get_entry

    assert [get_entry(m).arch for m in faces.detector_ids()] == ["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"]
    stage = {"title": "t", "license": "test", "config": {}, "sources": [{"kind": "local", "path": "x.safetensors"}]}
    write_manifest({f"det.{a}": {**stage, "arch": a} for a in ("mtcnn_onet", "mtcnn_rnet", "mtcnn_pnet")})
    assert faces.detector_ids() == ("det.mtcnn_pnet", "det.mtcnn_rnet", "det.mtcnn_onet"), "in the order they run"
    write_manifest({"det.mtcnn_pnet": {**stage, "arch": "mtcnn_pnet"}})
    with pytest.raises(ValueError, match="lists no face detector"):
        faces.detect_faces(Image.new("RGB", (200, 200)))


def test_feathered_ramps_smoothly_from_the_border_inwards():
    mask = np.zeros((40, 40), np.float32)
    mask[5:35, 5:35] = 1
    soft = faces.feathered(mask, 4.0)
    assert (soft[mask == 0] == 0).all() and soft[20, 20] == 1.0
    row = soft[20, 5:12]  # from the border inwards: rising, then flat at 1 beyond the radius
    assert 0 < row[0] < row[1] < row[2] < row[3] and (row[4:] == 1).all()


def test_paste_change_adds_the_change_inside_the_mask_only(astronaut, astronaut_faces):
    aligned = faces.align_face(astronaut, astronaut_faces[0], 64)
    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, 16:48] = 1
    out = np.asarray(faces.paste_change(astronaut, aligned, np.full((64, 64, 3), 20.0), alpha)).astype(int)
    before = np.asarray(astronaut).astype(int)
    changed = (out != before).any(-1)
    weight = cv2.warpAffine(alpha, cv2.invertAffineTransform(aligned.matrix), astronaut.size, borderValue=0)
    assert changed.any() and not changed[weight == 0].any()  # bit for bit outside the warped mask
    assert np.median((out - before)[(weight > 0.99) & (before.max(-1) < 200)]) == 20
