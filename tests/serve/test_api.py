"""``mammo-monai serve``'s API through FastAPI's test client: the rows predict makes, calibrated decisions,
overlays, refusals with a reason, the limits (size, count, queue, pixels), the token, and nothing identifying."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import numpy as np
import pandas as pd
import pydicom
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mammo_monai.inference.predict import predict
from mammo_monai.serve.app import ServeSettings, create_app
from mammo_monai.serve.queue import InferenceQueue, QueueFull
from tests.serve.conftest import PATIENT_ID, STUDY_UID


def _client(bundle, patch=None, **limits) -> TestClient:
    return TestClient(create_app(ServeSettings(str(bundle), str(patch) if patch else None, backend="eager", **limits)))


def _files(paths) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (p.name, p.read_bytes())) for p in paths]


def test_an_exam_gets_the_rows_predict_writes(whole_bundle, exam_dicoms, tmp_path):
    with _client(whole_bundle) as client:
        answer = client.post("/v1/predict", files=_files(exam_dicoms))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    table = predict(whole_bundle, [str(p) for p in exam_dicoms], tmp_path / "p.csv", progress=False, backend="eager")
    images = table[table["level"] == "image"]
    position = {str(p): n for n, p in enumerate(exam_dicoms, 1)}  # the answer's `file`: the upload's position
    expected = dict(zip(images["file"].map(position), images["probability"]))
    assert {i["file"]: i["probability"] for i in body["images"]} == pytest.approx(expected, abs=1e-5)
    breasts = table[table["level"] == "breast"].set_index("laterality")["probability"]
    assert {b["laterality"]: b["probability"] for b in body["breasts"]} == pytest.approx(breasts.to_dict(), abs=1e-5)
    assert len(body["exams"]) == 1 and body["exams"][0]["grouped_by"] == "dicom study"
    assert body["decision"]["kind"] == "none" and all(b["decisions"] == {} for b in body["breasts"])
    assert body["model"] == {"name": "whole_image_classifier", "version": body["model"]["version"]}
    assert body["timings"]["total_s"] >= body["timings"]["score_s"] > 0


def test_a_calibrated_bundle_answers_calibrated_probabilities_and_decisions_per_operating_point(
    calibrated_bundle, exam_dicoms, tmp_path
):
    with _client(calibrated_bundle) as client:
        body = client.post("/v1/predict", files=_files(exam_dicoms)).json()
        model = client.get("/v1/model").json()
    table = predict(
        calibrated_bundle, [str(p) for p in exam_dicoms], tmp_path / "p.csv", progress=False, backend="eager"
    )
    breasts = table[table["level"] == "breast"].set_index("laterality")
    for b in body["breasts"]:
        row = breasts.loc[b["laterality"]]
        assert b["probability_calibrated"] == pytest.approx(row["probability_calibrated"], abs=1e-5)
        assert b["decisions"] == {
            "balanced": row["decision@balanced"],
            "high_sensitivity": row["decision@high_sensitivity"],
        }
    assert body["decision"]["kind"] == "operating_points"
    assert [p["name"] for p in model["decision"]["operating_points"]] == ["balanced", "high_sensitivity"]
    assert model["calibration"]["method"] == "temperature" and model["inputs"]["size"] == [64, 48]


def test_overlays_are_two_pngs_of_one_size_per_view(whole_bundle, patch_bundle, exam_dicoms):
    with _client(whole_bundle, patch_bundle) as client:
        body = client.post("/v1/predict", files=_files(exam_dicoms[:2])).json()
        layers = [
            Image.open(io.BytesIO(client.get(image["overlay"][k]).content))
            for image in body["images"]
            for k in ("image", "heatmap")
        ]
        assert client.get("/v1/overlays/nosuch/0/image.png").status_code == 404
    assert len(layers) == 4 and [im.mode for im in layers] == ["L", "RGBA", "L", "RGBA"]
    assert layers[0].size == layers[1].size == (120, 160)  # (W, H) of the DICOM as stored, not the network's grid


def test_overlays_lie_on_the_stored_image_left_and_right(whole_bundle, patch_bundle, exam_dicoms):
    """Both layers are on the file's own grid: a right breast stays on the side it was stored on (the network saw
    it mirrored), and the heatmap covers the breast, not the empty side."""
    views = [exam_dicoms[0], exam_dicoms[2]]  # L CC, R CC
    with _client(whole_bundle, patch_bundle) as client:
        body = client.post("/v1/predict", files=_files(views)).json()
        layers = {
            image["laterality"]: [
                np.asarray(Image.open(io.BytesIO(client.get(image["overlay"][k]).content)))
                for k in ("image", "heatmap")
            ]
            for image in body["images"]
        }
    for side, path in zip("LR", views):
        stored = pydicom.dcmread(path).pixel_array.astype(float)
        grey, heat = layers[side]
        half = stored.shape[1] // 2
        stored_left = stored[:, :half].mean() > stored[:, half:].mean()
        assert (grey[:, :half].mean() > grey[:, half:].mean()) == stored_left == (side == "L")
        assert heat[..., 3].astype(float)[stored == 0].mean() <= heat[..., 3].astype(float)[stored > 0].mean()
    assert body["timings"]["heatmaps_s"] > 0


def test_a_text_file_is_refused_by_content_and_the_rest_is_scored(whole_bundle, exam_dicoms, png_view):
    notes = ("notes.dcm", b"patient notes, not an image\n" * 20)  # a DICOM name does not make it one
    with _client(whole_bundle) as client:
        body = client.post("/v1/predict", files=[*_files(exam_dicoms[:1]), ("files", notes)]).json()
        alone = client.post("/v1/predict", files=[("files", notes)])
        renamed = client.post("/v1/predict", files=[("files", ("scan.txt", png_view.read_bytes()))])
        assert client.get("/health").json() == {"status": "ok"}  # still serving
    assert len(body["images"]) == 1 and body["refused"] == [{"file": 2, "reason": body["refused"][0]["reason"]}]
    assert "not an image" in body["refused"][0]["reason"]
    assert alone.status_code == 422 and alone.json()["refused"][0]["file"] == 1
    assert renamed.status_code == 200 and renamed.json()["images"][0]["file"] == 1  # PNG by content


def test_a_broken_dicom_is_refused_naming_the_upload_not_the_private_path(whole_bundle, exam_dicoms):
    broken = ("broken.dcm", exam_dicoms[0].read_bytes()[:400])
    with _client(whole_bundle) as client:
        answer = client.post("/v1/predict", files=[("files", broken)])
        named = client.post("/v1/predict", params={"echo_names": "true"}, files=[("files", broken)])
    assert answer.status_code == named.status_code == 422
    refused = answer.json()["refused"][0]
    assert refused["file"] == 1 and "truncated" in refused["reason"]
    assert "mammo-serve-" not in refused["reason"] and "broken.dcm" not in answer.text
    assert named.json()["refused"] == [{"file": 1, "name": "broken.dcm", "reason": refused["reason"]}]


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(whole_bundle, png_view, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with _client(whole_bundle) as client:
        answer = client.post("/v1/predict", files=_files([png_view]))
    assert answer.status_code == 422 and "exceeds the pixel limit" in answer.json()["refused"][0]["reason"]


def test_too_many_files_are_413(whole_bundle, exam_dicoms):
    with _client(whole_bundle, max_files=2) as client:
        many = client.post("/v1/predict", files=_files(exam_dicoms[:3]))
    assert many.status_code == 413 and "3 files; at most 2" in many.json()["detail"]


def test_a_body_over_the_limit_is_413_declared_or_streamed(whole_bundle):
    boundary = "xyz"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.dcm"\r\n\r\n'.encode()
    chunks = [part, *[b"\0" * 20_000] * 4, f"\r\n--{boundary}--\r\n".encode()]
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    with _client(whole_bundle, max_upload_mb=0.05) as client:
        declared = client.post("/v1/predict", files=[("files", ("big.dcm", b"\0" * 60_000))])
        streamed = client.post("/v1/predict", content=iter(chunks), headers=headers)  # chunked: no length
        assert client.get("/health").status_code == 200
    assert declared.status_code == 413 and "upload limit of 52,428 bytes" in declared.json()["detail"]
    assert streamed.status_code == 413 and "upload limit" in streamed.json()["detail"]


def test_a_token_guards_the_api_but_not_health(whole_bundle):
    with _client(whole_bundle, token="s3cret", max_upload_mb=0.05) as client:
        assert client.get("/v1/model").status_code == 401
        assert client.get("/v1/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/ready").json()["ready"] is True
        # refused before its body is read: an over-limit upload without the token is a 401, not a 413
        unread = client.post("/v1/predict", files=[("files", ("big.dcm", b"\0" * 60_000))])
    assert unread.status_code == 401 and unread.headers["WWW-Authenticate"] == "Bearer"


def test_page_docs_and_schema_are_served_locally(whole_bundle):
    with _client(whole_bundle) as client:
        page = client.get("/").text
        schema = client.get("/openapi.json").json()
        assert client.get("/static/app.js").status_code == 200 and client.get("/docs").status_code == 200
    assert "/static/app.js" in page and "http" not in page.replace("http-equiv", "")  # no CDN
    assert {"/v1/predict", "/v1/model", "/health", "/ready"} <= set(schema["paths"])
    echo = [p for p in schema["paths"]["/v1/predict"]["post"]["parameters"] if p["name"] == "echo_names"]
    assert echo and echo[0]["in"] == "query" and "patient identifiers" in echo[0]["description"]


def test_nothing_identifying_reaches_the_answer_or_the_log(whole_bundle, exam_dicoms, caplog):
    """The files are named after the patient (``PID-CHARLIE-9917_LCC.dcm``): neither their names nor the DICOM
    identifiers reach the answer or the log; the names come back only to a client that asks for them."""
    caplog.set_level(logging.DEBUG)
    with _client(whole_bundle) as client:
        text = client.post("/v1/predict", files=_files(exam_dicoms)).text
        named = client.post("/v1/predict", params={"echo_names": True}, files=_files(exam_dicoms)).json()
    body = pd.read_json(io.StringIO(text), typ="series")
    keys = {b["exam"] for b in body["breasts"]}
    assert len(keys) == 1 and PATIENT_ID not in str(keys)
    assert sorted(i["file"] for i in body["images"]) == [1, 2, 3, 4] and all("name" not in i for i in body["images"])
    for identifier in (STUDY_UID, PATIENT_ID, PATIENT_ID.split("-")[1]):
        assert identifier not in text
        assert identifier not in caplog.text
    assert {i["file"]: i["name"] for i in named["images"]} == {n: p.name for n, p in enumerate(exam_dicoms, 1)}
    assert "predict: 4 files, 4 scored, 0 refused" in caplog.text


def test_a_failure_inside_the_model_is_one_500_line_and_the_service_keeps_serving(whole_bundle, exam_dicoms):
    with _client(whole_bundle) as client:
        session = client.app.state.session
        good = session.score
        session.score = lambda uploads: 1 / 0
        failed = client.post("/v1/predict", files=_files(exam_dicoms[:1]))
        session.score = good
        after = client.post("/v1/predict", files=_files(exam_dicoms[:1]))
    assert failed.status_code == 500 and "ZeroDivisionError" in failed.json()["detail"]
    assert after.status_code == 200


def test_a_full_queue_refuses_at_once_with_retry_after():
    queue = InferenceQueue(max_queue=1)
    release = threading.Event()

    async def main():
        running = asyncio.ensure_future(queue.run(release.wait))
        waiting = asyncio.ensure_future(queue.run(lambda: 1))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as full:
            await queue.run(lambda: 2)
        release.set()
        return full.value.retry_after, (await running)[0], (await waiting)[0]

    retry_after, first, second = asyncio.run(main())
    assert retry_after >= 1 and first is True and second == 1 and queue.depth == 0
    queue.close()
