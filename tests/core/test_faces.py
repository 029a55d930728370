import numpy as np
import pytest
import skimage.data
from PIL import Image

from core import faces


@pytest.fixture(scope="module")
def astronaut():
    return Image.fromarray(skimage.data.astronaut())


def test_detects_one_face_with_plausible_landmarks(astronaut):
    found = faces.detect_faces(astronaut)
    assert len(found) == 1
    face = found[0]
    x, y, w, h = face.box
    assert 150 < x < 220 and 40 < y < 100 and 60 < w < 130
    marks = face.landmarks
    assert marks["left_eye"][0] < marks["right_eye"][0]  # image-left eye first
    assert marks["left_eye"][1] < marks["mouth_left"][1] and marks["nose"][1] < marks["mouth_right"][1]
    for point in face.points():
        assert x <= point[0] <= x + w and y <= point[1] <= y + h


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_no_face_in_scenes_without_people(name):
    image = Image.fromarray(getattr(skimage.data, name)())
    assert faces.detect_faces(image) == []
    with pytest.raises(ValueError, match="No face was found"):
        faces.single_face(image)


def test_several_faces_are_reported(astronaut):
    pair = Image.new("RGB", (1024, 512))
    pair.paste(astronaut, (0, 0))
    pair.paste(astronaut, (512, 0))
    assert len(faces.detect_faces(pair)) == 2
    with pytest.raises(ValueError, match="2 faces"):
        faces.single_face(pair)


def test_ffhq_alignment_puts_eyes_level_and_centred(astronaut):
    face = faces.detect_faces(astronaut)[0]
    aligned = faces.align_face(astronaut, face, 256)
    assert aligned.image.size == (256, 256)
    points = np.c_[face.points(), np.ones(5)] @ aligned.matrix.T
    left_eye, right_eye = points[0], points[1]
    assert abs(left_eye[1] - right_eye[1]) < 3  # rotation removed
    assert abs((left_eye[0] + right_eye[0]) / 2 - 128) < 8  # centred
    assert 0.22 < (right_eye[0] - left_eye[0]) / 256 < 0.28  # FFHQ scale: the eyes are a quarter of the width apart
    again = faces.detect_faces(aligned.image)
    assert len(again) == 1


def test_template_alignment_matches_the_template(astronaut):
    face = faces.detect_faces(astronaut)[0]
    aligned = faces.align_face(astronaut, face, 64, template="celeba")
    points = np.c_[face.points(), np.ones(5)] @ aligned.matrix.T
    error = np.abs(points / 64 - faces.CELEBA_TEMPLATE).max()
    assert error < 0.05
    with pytest.raises(ValueError, match="Unknown alignment template"):
        faces.align_face(astronaut, face, 64, template="nope")


def test_paste_back_changes_only_the_face_region(astronaut):
    face = faces.detect_faces(astronaut)[0]
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


def test_round_trip_of_an_unedited_crop_is_close(astronaut):
    face = faces.detect_faces(astronaut)[0]
    aligned = faces.align_face(astronaut, face, 256)
    out = np.asarray(faces.paste_back(astronaut, aligned.image, aligned)).astype(float)
    changed = (out != np.asarray(astronaut)).any(-1)
    assert np.abs(out - np.asarray(astronaut))[changed].mean() < 6  # resampled twice, nothing else
